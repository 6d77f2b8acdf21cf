#!/usr/bin/env python3
"""Runs one fault scenario of fault_rank under mpirun and checks it
(docs/collectives.md "Timeouts and broken communicators").

usage: run_fault.py <mpirun> <fault_rank> <np> <timeout_s> <scenario> <size> <path> [mpirun flags...]

Checks every surviving rank's result codes and messages, the job's exit
status, and a wall-time bound: a hang fails as a hang (the job is killed at
the bound). Exit status 0 when every check holds.
"""
import os
import re
import signal
import subprocess
import sys
import time

SUCCESS, INVALID_ARGUMENT, INVALID_USAGE, TIMEOUT = 0, 4, 5, 9
SLACK = 4.0  # seconds of scheduling slack on an oversubscribed 2-core machine


def main():
    mpirun, binary, np_, timeout, scenario, size, path = sys.argv[1:8]
    flags = sys.argv[8:]
    np_, timeout = int(np_), float(timeout)
    # The longest legitimate run: a stopped rank resumes after 2T + 1 s and
    # then needs a moment; creation and warm-up come before.
    bound = 3 * timeout + 20
    env = dict(os.environ, QCCL_TIMEOUT_S=str(timeout))
    cmd = [mpirun, "-n", str(np_)] + flags + [binary, scenario, size, path]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=bound)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        print(out)
        print(f"FAIL: the job did not end within {bound:.0f} s (a hang)")
        return 1
    wall = time.monotonic() - start
    print(out)
    results = {}
    for m in re.finditer(r"RESULT rank=(\d+) call=(\d+) code=(-?\d+) elapsed=([\d.]+) "
                         r"sum=(\w+) message=(.*)", out):
        rank, call = int(m.group(1)), int(m.group(2))
        results[(rank, call)] = (int(m.group(3)), float(m.group(4)), m.group(5), m.group(6))
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)

    def result(rank, call):
        r = results.get((rank, call))
        check(r is not None, f"rank {rank} printed no result for call {call}")
        return r if r is not None else (None, 0.0, "", "")

    def expect(rank, call, codes, fragment=None, within=None):
        code, elapsed, _, message = result(rank, call)
        if code is None:
            return
        codes = codes if isinstance(codes, (list, tuple)) else [codes]
        check(code in codes, f"rank {rank} call {call}: code {code}, expected one of {codes} "
              f"({message})")
        if fragment is not None:
            check(fragment in message,
                  f"rank {rank} call {call}: message lacks '{fragment}': {message}")
        if within is not None:
            check(elapsed <= within, f"rank {rank} call {call} took {elapsed:.1f} s > {within} s")

    def same_result_everywhere(call):
        for r in range(np_):
            expect(r, call, SUCCESS)
        sums = {results.get((r, call), (0, 0, None, ""))[2] for r in range(np_)}
        check(len(sums) == 1, f"call {call}: ranks disagree on the result ({sums})")

    others = [r for r in range(np_) if r != 1]
    engine = path == "engine"
    if scenario == "stop":
        for r in others:
            expect(r, 1, TIMEOUT, "QCCL_TIMEOUT_S", within=timeout + SLACK)
            expect(r, 2, [INVALID_USAGE, TIMEOUT], "QCCL_TIMEOUT_S", within=1.0 if not engine else SLACK)
        # The resumed rank learns of the timeout at once, never another call's data.
        expect(1, 1, [TIMEOUT, INVALID_USAGE], "QCCL_TIMEOUT_S")
        expect(1, 2, [INVALID_USAGE, TIMEOUT], "QCCL_TIMEOUT_S", within=1.0 if not engine else SLACK)
        check(proc.returncode == 0, f"mpirun exit status {proc.returncode}, expected 0")
    elif scenario == "exit":
        # Timeout, or (engine) the early rank's qcclEngineStop timed out
        # first and told the others, whose calls are then refused.
        for r in others:
            expect(r, 1, [TIMEOUT, INVALID_USAGE], "QCCL_TIMEOUT_S", within=timeout + SLACK)
            expect(r, 2, [INVALID_USAGE, TIMEOUT], "QCCL_TIMEOUT_S", within=1.0 if not engine else SLACK)
        check(proc.returncode == 0, f"mpirun exit status {proc.returncode}, expected 0")
    elif scenario == "kill":
        # mpirun ends the job when a rank dies; no rank may be left waiting,
        # and a survivor that reports must report an error.
        check(proc.returncode != 0, "mpirun exited 0 although a rank was killed")
        check(wall <= timeout + 2 * SLACK + 10, f"the job took {wall:.1f} s to end")
        for r in others:
            if (r, 1) in results:
                expect(r, 1, [TIMEOUT, INVALID_USAGE])
    elif scenario == "no_stop":
        same_result_everywhere(2)
        for r in others:
            expect(r, 3, [TIMEOUT, INVALID_USAGE], "ranks [1] did not call qcclEngineStop",
                   within=timeout + SLACK)
        check(proc.returncode == 0, f"mpirun exit status {proc.returncode}, expected 0")
    elif scenario == "abort":
        # QCCL_ON_TIMEOUT=abort: the first rank to time out prints the stall
        # report and MPI_Aborts the job, well before rank 1 wakes up.
        check(proc.returncode != 0, "mpirun exited 0 although QCCL_ON_TIMEOUT=abort")
        check(re.search(r"QCCL_ON_TIMEOUT=abort: .*QCCL_TIMEOUT_S=", out) is not None,
              "no stall report in the output")
        check(wall <= timeout + 2 * SLACK + 10, f"the job took {wall:.1f} s to end")
    elif scenario == "different":
        expect(1, 1, INVALID_USAGE, "collective differs", within=timeout)
        for r in others:
            expect(r, 1, INVALID_USAGE, "collective differs", within=timeout)
        same_result_everywhere(2)
    elif scenario == "reject":
        expect(1, 1, INVALID_ARGUMENT, "sendbuff is NULL", within=timeout)
        for r in others:
            expect(r, 1, INVALID_USAGE, "rank 1 rejected its arguments", within=timeout)
        same_result_everywhere(2)
    elif scenario == "engine_start":
        for r in range(np_):
            expect(r, 1, INVALID_USAGE, "qcclEngineStart", within=timeout)
        same_result_everywhere(2)
    elif scenario == "init_mismatch":
        expect(0, 0, SUCCESS)
        for r in range(1, np_):
            expect(r, 0, TIMEOUT, "MPI_Comm_idup", within=timeout + SLACK)
    elif scenario == "after_finalize":
        expect(0, 0, INVALID_USAGE, "MPI_Finalize")
        check(proc.returncode == 0, f"mpirun exit status {proc.returncode}, expected 0")
    elif scenario == "destroy_engine":
        same_result_everywhere(2)
        for r in range(np_):
            expect(r, 4, INVALID_USAGE, "qcclEngineStop")
        check(proc.returncode == 0, f"mpirun exit status {proc.returncode} (a crash in MPI_Finalize?)")
    else:
        failures.append(f"unknown scenario {scenario}")
    check(wall <= bound, f"the job took {wall:.1f} s")
    print(f"wall time {wall:.1f} s, mpirun exit status {proc.returncode}")
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("PASS", scenario, size, path)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
