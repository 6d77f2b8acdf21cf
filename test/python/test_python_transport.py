"""qccl.Communicator.from_transport with one-rank Python transports: the
protocol checks, optional methods left out, and Python exceptions turned
into qccl errors. Each process runs these on its own (no collective across
processes), so they pass under mpirun and without it.
"""
import numpy as np
import pytest

import qccl


class LocalTransport:
    """One rank: allgatherv copies this rank's bytes into place."""
    rank = 0
    size = 1

    def __init__(self):
        self.calls = []

    def allgatherv(self, send, recv, recv_bytes, recv_offsets):
        self.calls.append("allgatherv")
        out = np.frombuffer(recv, dtype=np.uint8)
        out[recv_offsets[0]:recv_offsets[0] + recv_bytes[0]] = np.frombuffer(send, dtype=np.uint8)


class WithPassthrough(LocalTransport):
    def allreduce_passthrough(self, buf, dtype):
        self.calls.append(f"allreduce_passthrough {dtype} {len(buf)}")


class Failing(LocalTransport):
    def allreduce_passthrough(self, buf, dtype):
        raise RuntimeError("the fabric is on fire")


def test_only_allgatherv_is_needed():
    t = LocalTransport()
    comm = qccl.Communicator.from_transport(t, method="none")
    assert (comm.rank(), comm.size()) == (0, 1)
    a = np.arange(10, dtype=np.float32)
    comm.allreduce(a)
    assert np.array_equal(a, np.arange(10, dtype=np.float32))
    assert "allgatherv" in t.calls  # configuration agreement and the fallback sum
    comm.close()


def test_optional_methods_are_used_when_present():
    t = WithPassthrough()
    comm = qccl.Communicator.from_transport(t, method="none")
    comm.allreduce(np.ones(8, dtype=np.float16))
    assert "allreduce_passthrough float16 16" in t.calls
    comm.close()


def test_python_exception_becomes_a_qccl_error_and_the_communicator_is_unusable():
    comm = qccl.Communicator.from_transport(Failing(), method="none")
    a = np.ones(4, dtype=np.float32)
    with pytest.raises(qccl.QcclError,
                       match="allreducePassthrough failed.*RuntimeError: the fabric is on fire"):
        comm.allreduce(a)
    with pytest.raises(qccl.QcclError, match="unusable"):
        comm.allreduce(a)
    comm.close()


def test_engine_without_duplicate_is_refused_clearly():
    comm = qccl.Communicator.from_transport(LocalTransport(), method="none")
    with pytest.raises(qccl.QcclError, match="duplicate is NULL"):
        comm.start_engine()
    comm.close()


class Duplicable(LocalTransport):
    def duplicate(self):
        return Duplicable()


def test_engine_runs_on_a_duplicate():
    comm = qccl.Communicator.from_transport(Duplicable(), method="none", cycle_time_ms=1)
    comm.start_engine()
    a = np.full(6, 3.0, dtype=np.float32)
    comm.enqueue_allreduce("a", a).wait()
    assert np.array_equal(a, np.full(6, 3.0, dtype=np.float32))
    comm.stop_engine()
    comm.close()


def test_close_with_the_engine_running_does_not_deadlock():
    # The engine's thread calls the transport (and so takes the GIL) every
    # cycle: close() must let go of the GIL while it stops the engine.
    comm = qccl.Communicator.from_transport(Duplicable(), method="none", cycle_time_ms=1)
    comm.start_engine()
    comm.close()


def test_bad_transports_raise_clear_exceptions():
    class NoGather:
        rank, size = 0, 1

    class StringRank(LocalTransport):
        rank = "0"

    class RankOutOfRange(LocalTransport):
        rank, size = 3, 2

    with pytest.raises(TypeError, match="no allgatherv"):
        qccl.Communicator.from_transport(NoGather())
    with pytest.raises(TypeError, match="`rank` must be an int, got str"):
        qccl.Communicator.from_transport(StringRank())
    with pytest.raises(TypeError, match="`rank` must be an int, got NoneType"):
        qccl.Communicator.from_transport(object())
    with pytest.raises(qccl.QcclError, match=r"ops->rank 3 is outside \[0, ops->nranks = 2\)"):
        qccl.Communicator.from_transport(RankOutOfRange())
    with pytest.raises(ValueError, match="unknown qccl option 'bitz'"):
        qccl.Communicator.from_transport(LocalTransport(), bitz=3)
    with pytest.raises(qccl.QcclError, match="QCCL_BITS"):
        qccl.Communicator.from_transport(LocalTransport(), bits=12)
