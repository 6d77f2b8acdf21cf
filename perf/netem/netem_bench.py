#!/usr/bin/env python3
"""End-to-end qccl allreduce speed-up on emulated bandwidth-limited links.

Creates N hosts as Linux network namespaces on this machine, joins them by
one switch, shapes every host's link, and runs qccl_allreduce_perf across
them with OpenMPI over TCP: mpirun runs in the first host's namespace and
starts the other ranks through rsh_agent.sh (`ip netns exec` into the
namespace owning the host address). Two link models (--link):
  veth       a veth pair per host into a Linux bridge, tbf on both ends
             (rate only; a latency needs sch_netem);
  delayline  a tap per host into qccl_delayline (delayline.c), a user-space
             switch that adds the one-way delay and limits each downlink,
             with tbf on the tap for the uplink (rate and latency, no
             sch_netem needed).
The default (auto) is veth without --delay-ms, else veth+netem where the
kernel has sch_netem and the delay line where it does not. Everything is
torn down on exit, on error and on Ctrl-C. Needs root; without it, or where
namespaces cannot be created, it says so and exits 0 (nothing measured).

  netem_bench.py run --bench build/perf/qccl_allreduce_perf --hosts 4 \
      --rates 1gbit,10gbit --sizes 1M:256M --out perf/results/DATE-netem-4hosts
  netem_bench.py run ... --rates 1gbit --delay-ms 0.5   # latency: delay line here
  netem_bench.py probe --hosts 2 --rates 1gbit     # plumbing/link check only
  netem_bench.py profile --bench ... --rates 10gbit --size 64M --method qsgd -q 2 -a sra
  netem_bench.py down                              # clean up after a kill -9

See docs/netem.md for the shaping model and how to read the results.
"""
import argparse
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT = os.path.join(HERE, "rsh_agent.sh")
PROBE_SRC = os.path.join(HERE, "netem_probe.c")
DELAYLINE_SRC = os.path.join(HERE, "delayline.c")
# Delay-line taps carry frames up to this size: 65000 keeps the packet rate
# (and the switch's per-frame cost) ~40x below MTU 1500's.
DELAYLINE_MTU = 65000
# SCHED_FIFO priority of the switch: it sleeps between deadlines, and must
# not wait behind busy-polling ranks to deliver a frame on time.
DELAYLINE_RT_PRIO = 10
SKIP = 0  # exit code when the machine cannot run this (not root, no netns)


def log(msg):
    print(f"netem: {msg}", file=sys.stderr, flush=True)


def sh(*args, check=True, capture=False):
    """Runs one command (a list, no shell); raises with its stderr on failure."""
    r = subprocess.run(args, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip() or r.returncode}")
    return r.stdout if capture else r.returncode


def parse_rate(text):
    """'10gbit', '2.5gbit', '500mbit' -> bits per second."""
    t = text.strip().lower()
    for suffix, mult in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)):
        if t.endswith(suffix):
            return float(t[: -len(suffix)]) * mult
    raise ValueError(f"rate {text!r}: expected e.g. 1gbit, 2.5gbit, 500mbit")


def parse_size(text):
    t = text.strip().upper()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    return int(float(t.rstrip("KMG")) * mult)


def fmt_size(n):
    for unit, mult in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= mult and n % mult == 0:
            return f"{n // mult}{unit}"
    return str(n)


def tbf_args(rate_bps):
    """tbf limiting to rate_bps. Burst: 2 ms at line rate, at least 256 KiB.
    Here N ranks share a few cores, so a sender is often off-CPU for a few
    ms; a smaller bucket loses that link time for good (64 KiB: 0.64 Gbit/s
    p2p on a 1 Gbit/s link with 4 hosts on 2 cores; 256 KiB: 0.955, see
    docs/netem.md). Only transfers shorter than the burst can beat the rate.
    Queue: 20 ms at line rate, deep enough that TCP sees no drops (tc -s
    showed none)."""
    burst = max(256 << 10, int(rate_bps / 8 * 2e-3))
    return ["tbf", "rate", f"{int(rate_bps)}bit", "burst", str(burst), "latency", "20ms"]


class DelayLine:
    """The qccl_delayline process (delayline.c) switching the hosts' taps:
    adds the one-way delay and limits each host's downlink. Started afresh
    for every rate (its taps vanish with it); its CPU time is the link's
    emulation cost."""

    def __init__(self, exe):
        self.exe, self.proc, self.last_stderr = exe, None, ""

    def start(self, taps, rate_bps, delay_ms):
        self.stop()
        # Egress queue: 20 ms at line rate (the tbf queue of the veth model),
        # at least 1 MiB; tail drop beyond.
        queue = max(1 << 20, int(rate_bps / 8 * 20e-3))
        cmd = [self.exe, "-r", str(int(rate_bps)), "-d", f"{delay_ms * 1000:g}", "-q", str(queue),
               "-P", str(DELAYLINE_RT_PRIO), *taps]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"{' '.join(cmd)}: did not start: {self.last_stderr.strip()}")

    def cpu_s(self):
        """CPU seconds the switch has used so far (user + system)."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (AttributeError, OSError, IndexError, ValueError):
            return None

    def stop(self):
        """Stops the switch (its taps go with it); returns its counters summed
        over the ports ({} when it was not running)."""
        self.last_stderr = ""
        if self.proc is None:
            return {}
        proc, self.proc = self.proc, None
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                proc.send_signal(sig)
                _, self.last_stderr = proc.communicate(timeout=5)
                break
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                break
        stats, late_sum = {}, 0.0
        for line in self.last_stderr.splitlines():
            words = line.split()
            if line.startswith("qccl_delayline: port"):
                port = {key: float(value) for key, value in zip(words[3::2], words[4::2])}
                # Lateness: how far behind its schedule the switch delivered
                # (mean over all frames, max over ports); counters are summed.
                late_sum += port.pop("late_us_mean", 0) * port.get("tx_frames", 0)
                stats["late_us_max"] = max(stats.get("late_us_max", 0), port.pop("late_us_max", 0))
                for key, value in port.items():
                    stats[key] = stats.get(key, 0) + int(value)
                stats["late_us_mean"] = round(late_sum / max(1, stats.get("tx_frames", 0)), 1)
            elif line.startswith("qccl_delayline: cpu_s"):
                stats["cpu_s"], stats["wall_s"] = float(words[2]), float(words[4])
            elif line.strip():
                log(line.strip())  # e.g. a SCHED_FIFO warning
        return stats


class Hosts:
    """N namespaces <prefix>0..N-1 with address <subnet>.(i+1)/24, joined by
    one switch. link 'veth': eth0 in each namespace, peer <prefix>v<i> a port
    of bridge <prefix>br in the root namespace. link 'delayline': tap
    <prefix>t<i> in each namespace, the other side held by qccl_delayline.
    Link i is shaped in both directions (see shape())."""

    def __init__(self, n, prefix, subnet, link="veth", delayline_exe=None):
        if not 2 <= n <= 8:
            raise ValueError(f"--hosts must be 2..8, got {n}")
        if len(prefix) > 8:
            raise ValueError(f"--prefix {prefix!r}: at most 8 characters (interface names)")
        if link not in ("veth", "delayline"):
            raise ValueError(f"link model {link!r}: expected veth or delayline")
        self.n, self.prefix, self.subnet, self.link = n, prefix, subnet, link
        self.bridge = f"{prefix}br"
        self.ns = [f"{prefix}{i}" for i in range(n)]
        self.port = [f"{prefix}v{i}" for i in range(n)]  # root side of link i (veth)
        self.tap = [f"{prefix}t{i}" for i in range(n)]  # link i (delayline)
        self.addr = [f"{subnet}.{i + 1}" for i in range(n)]
        self.delayline = DelayLine(delayline_exe) if link == "delayline" else None

    def in_use(self):
        """True while another run (or a killed one's leftovers) holds our names."""
        existing = sh("ip", "netns", "list", capture=True, check=False) or ""
        names = {line.split()[0] for line in existing.splitlines() if line.strip()}
        return sh("ip", "link", "show", self.bridge, check=False) == 0 or bool(names & set(self.ns))

    def up(self):
        for ns in self.ns:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        if self.link == "delayline":
            return  # the taps come with the switch, in shape()
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "link", "set", self.bridge, "up")
        for i in range(self.n):
            ns, port, peer = self.ns[i], self.port[i], f"{self.prefix}e{i}"
            sh("ip", "link", "add", port, "type", "veth", "peer", "name", peer)
            sh("ip", "link", "set", peer, "netns", ns)
            sh("ip", "-n", ns, "link", "set", peer, "name", "eth0")
            sh("ip", "-n", ns, "addr", "add", f"{self.addr[i]}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "link", "set", port, "master", self.bridge)
            sh("ip", "link", "set", port, "up")

    def shape(self, rate_bps, delay_ms):
        """Shapes link i to rate_bps in each direction, like a full-duplex NIC
        into a non-blocking switch, with one-way host-to-host latency
        delay_ms. The host's uplink is always tbf on its device's egress.
        veth: tbf on its bridge port's egress limits what the switch delivers
        to it; the delay (needs sch_netem) is split half on each end, netem in
        front of each tbf. delayline: a fresh switch with this rate and delay
        (replacing the previous one and its taps); its taps are moved into
        the namespaces and configured here."""
        if self.delayline:
            self.delayline.start(self.tap, rate_bps, delay_ms)
            for i in range(self.n):
                ns, tap = self.ns[i], self.tap[i]
                sh("ip", "link", "set", tap, "netns", ns)
                sh("ip", "-n", ns, "link", "set", tap, "mtu", str(DELAYLINE_MTU))
                sh("ip", "-n", ns, "addr", "add", f"{self.addr[i]}/24", "dev", tap)
                sh("ip", "-n", ns, "link", "set", tap, "up")
                sh("ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", tap, "root",
                   *tbf_args(rate_bps))
            return
        tbf = tbf_args(rate_bps)
        for i in range(self.n):
            for netns, dev in ((self.ns[i], "eth0"), (None, self.port[i])):
                pre = ["ip", "netns", "exec", netns] if netns else []
                sh(*pre, "tc", "qdisc", "del", "dev", dev, "root", check=False)
                if delay_ms > 0:
                    sh(*pre, "tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "netem",
                       "delay", f"{delay_ms / 2 * 1000:.0f}us", "limit", "100000")
                    sh(*pre, "tc", "qdisc", "add", "dev", dev, "parent", "1:1", "handle", "10:",
                       *tbf)
                else:
                    sh(*pre, "tc", "qdisc", "add", "dev", dev, "root", *tbf)

    def link_cpu_s(self):
        """CPU seconds the link emulation has used so far: the delay line's
        (None for veth, whose shaping runs in the kernel's softirqs)."""
        return self.delayline.cpu_s() if self.delayline else None

    def unshape(self):
        """Ends the current rate's link; returns the delay line's counters
        (frames, drops, CPU) or {} for veth."""
        return self.delayline.stop() if self.delayline else {}

    def down(self):
        """Idempotent: ends processes left in our namespaces (ours: started by
        mpirun through the agent), then the delay line, then removes
        namespaces, links, bridge."""
        existing = sh("ip", "netns", "list", capture=True, check=False) or ""
        names = [line.split()[0] for line in existing.splitlines() if line.strip()]
        mine = [ns for ns in names if ns.startswith(self.prefix) and ns[len(self.prefix):].isdigit()]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = []
            for ns in mine:
                out = sh("ip", "netns", "pids", ns, capture=True, check=False) or ""
                pids += [int(p) for p in out.split()]
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            if pids and sig == signal.SIGTERM:
                time.sleep(1)
        # The switch runs in the root namespace; a killed script's switch
        # has already stopped (it exits when its parent dies).
        self.unshape()
        for ns in mine:
            sh("ip", "netns", "del", ns, check=False)
        for i in range(8):
            sh("ip", "link", "del", f"{self.prefix}v{i}", check=False)
        sh("ip", "link", "del", self.bridge, check=False)


def has_qdisc(kind):
    """Whether this kernel can add qdisc `kind` (e.g. netem), tried on the
    loopback of a scratch namespace."""
    name = f"qnq{os.getpid() % 100000}"
    if sh("ip", "netns", "add", name, check=False) != 0:
        return False
    try:
        return sh("ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", "lo", "root",
                  kind, check=False) == 0
    finally:
        sh("ip", "netns", "del", name, check=False)


def choose_link(args):
    """The link model to run: --link, or for auto: veth without a delay, and
    with one veth+netem where sch_netem exists, else the delay line."""
    if args.link == "veth" and args.delay_ms > 0 and not has_qdisc("netem"):
        raise RuntimeError("--link veth with --delay-ms needs sch_netem, which this kernel "
                           "lacks: use --link delayline (or auto)")
    if args.link != "auto":
        return args.link
    if args.delay_ms <= 0 or has_qdisc("netem"):
        return "veth"
    return "delayline"


def describe_link(link, delay_ms):
    if link == "delayline":
        return (f"delayline: tap per host into qccl_delayline (user-space switch, MTU "
                f"{DELAYLINE_MTU}); one-way delay {delay_ms:g} ms and downlink rate in the "
                "switch (egress queue 20 ms at line rate, tail drop), tbf on the host's tap "
                "egress for the uplink")
    text = ("veth: veth pair per host into one Linux bridge; tbf shaping on both ends (host "
            "egress and bridge-port egress)")
    return text + (f"; netem delay {delay_ms / 2:g} ms on each end" if delay_ms > 0 else
                   "; no added delay")


def find_delayline(args, workdir):
    """qccl_delayline: --delayline, else next to --bench (the CMake build puts
    both in perf/), else compiled here from delayline.c."""
    for exe in (args.delayline,
                args.bench and os.path.join(os.path.dirname(args.bench), "qccl_delayline")):
        if exe and os.access(exe, os.X_OK):
            return os.path.abspath(exe)
    if args.delayline:
        raise RuntimeError(f"--delayline {args.delayline!r} is not an executable")
    exe = os.path.join(workdir, "qccl_delayline")
    sh("cc", "-O2", "-o", exe, DELAYLINE_SRC)
    return exe


class Runner:
    """Runs MPI programs across the hosts; one mpirun at a time, killed
    (its own process group) on Ctrl-C or timeout."""

    def __init__(self, hosts, timeout_s, workdir, extra=()):
        self.hosts, self.timeout_s, self.extra = hosts, timeout_s, list(extra)
        self.hostfile = os.path.join(workdir, "hostfile")
        with open(self.hostfile, "w") as f:
            f.writelines(f"{a} slots=1\n" for a in hosts.addr)
        self.proc = None

    def mpirun(self, argv, np=None, env=None, wrap=()):
        """Runs once more after a failure or timeout: now and then an orted
        never comes up on one namespace host and mpirun waits for it forever
        (seen once in a 4-host delay-line sweep). The first failure is logged
        with its output, never hidden; a second one raises."""
        try:
            return self._mpirun_once(argv, np, env, wrap)
        except RuntimeError as e:
            log(f"mpirun failed, retrying once: {str(e)[-1500:]}")
            return self._mpirun_once(argv, np, env, wrap)

    def _mpirun_once(self, argv, np, env, wrap):
        h = self.hosts
        cidr = f"{h.subnet}.0/24"
        cmd = [*wrap, "ip", "netns", "exec", h.ns[0], "mpirun", "--allow-run-as-root",
               "-np", str(np or h.n), "--hostfile", self.hostfile, "--map-by", "node",
               "--bind-to", "none", "--mca", "plm_rsh_agent", AGENT,
               "--mca", "plm_rsh_no_tree_spawn", "1", "--mca", "btl", "self,tcp",
               "--mca", "btl_tcp_if_include", cidr, "--mca", "oob_tcp_if_include", cidr,
               "-x", "QCCL_NETEM_PREFIX", *self.extra, *argv]
        e = dict(os.environ, QCCL_NETEM_PREFIX=h.prefix, **(env or {}))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=e, start_new_session=True)
        try:
            out, _ = self.proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"mpirun timed out after {self.timeout_s}s: {' '.join(argv)}")
        rc, self.proc = self.proc.returncode, None
        if rc != 0:
            raise RuntimeError(f"mpirun exited {rc}: {' '.join(argv)}\n{out[-3000:]}")
        return out

    def kill(self):
        if self.proc and self.proc.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=3)
                    break
                except subprocess.TimeoutExpired:
                    pass


def can_run():
    """None when root with working network namespaces, else the reason."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth, tc); run it as root"
    for tool in ("ip", "tc", "mpirun"):
        if shutil.which(tool) is None:
            return f"'{tool}' not found (apt-get install iproute2 openmpi-bin)"
    name = f"qnchk{os.getpid() % 100000}"
    if sh("ip", "netns", "add", name, check=False) != 0:
        return "cannot create network namespaces here (container without CAP_SYS_ADMIN?)"
    sh("ip", "netns", "del", name, check=False)
    return None


def build_probe(workdir):
    exe = os.path.join(workdir, "netem_probe")
    sh("mpicc", "-O2", "-o", exe, PROBE_SRC)
    return exe


def probe(runner, exe, nbytes="16M"):
    """Link calibration: 2-rank RTT and p2p throughput, N-rank MPI_Allreduce."""
    out = runner.mpirun([exe, str(parse_size(nbytes)), "5"])
    result = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                result[parts[0]] = float(parts[1])
            except ValueError:
                pass
    namespaces = {line.split(" in ")[-1] for line in out.splitlines() if line.startswith("rank ")}
    result["distinct_namespaces"] = len(namespaces)
    return result


def half_baselines(args):
    """The half-precision MPI baselines (DDP's fp16/bf16 compress hooks) that
    run beside the uncompressed baseline: mpi-fp16, mpi-bf16 by default."""
    return [m for m in args.half_baselines.split(",") if m and m != args.baseline]


def bench_runs(args):
    """(label, extra argv) of each benchmark run at one rate: the baselines
    (--baseline and the half-precision ones, in one run labelled
    --baseline), then every bits x algo combination of the compression
    method."""
    runs = [(args.baseline, ["-m", ",".join([args.baseline, *half_baselines(args)])])]
    for bits in args.bits.split(","):
        for algo in args.algos.split(","):
            runs.append((f"{args.method}-{bits}b-{algo}",
                         ["-m", args.method, "-q", bits, "-a", algo]))
    return runs


def run_sweep(args, hosts, runner, workdir):
    lo, hi = args.sizes.split(":")
    common = ["-b", lo, "-e", hi, "-f", str(args.factor), "-n", str(args.iters),
              "-w", str(args.warmup), "-c", str(args.check)]
    probe_exe = build_probe(workdir) if args.calibrate else None
    results = []
    for rate_text in args.rates.split(","):
        rate = parse_rate(rate_text)
        hosts.shape(rate, args.delay_ms)
        entry = {"rate": rate_text, "rate_gbit": rate / 1e9, "runs": [], "tables": []}
        if probe_exe:
            entry["calibration"] = probe(runner, probe_exe)
            log(f"{rate_text}: calibration {entry['calibration']}")
        for label, extra in bench_runs(args):
            js = os.path.join(workdir, f"{rate_text}-{label}.json")
            t0, cpu0 = time.time(), hosts.link_cpu_s()
            out = runner.mpirun([args.bench, *common, *extra, "-J", js])
            wall, cpu1 = time.time() - t0, hosts.link_cpu_s()
            run = {"label": label, "argv": extra}
            note = ""
            if cpu0 is not None and cpu1 is not None:
                # Share of one core the delay line used during this run.
                run["link_cpu_percent"] = round(100 * (cpu1 - cpu0) / wall, 1)
                note = f", delay line {run['link_cpu_percent']:.0f}% of a core"
            log(f"{rate_text} {label}: {wall:.0f}s{note}")
            with open(js) as f:
                run["rows"] = json.load(f)["rows"]
            entry["runs"].append(run)
            entry["tables"].append(f"# rate {rate_text}, {label}\n{out.rstrip()}\n")
            if args.verbose:
                print(out, flush=True)
        stats = hosts.unshape()
        if stats:
            entry["delayline"] = stats
            log(f"{rate_text}: delay line {stats}")
        results.append(entry)
    return results


def row_time(row):
    # Out-of-place time: the buffer layout a framework's gradient hook uses.
    return row["oop_time_us"]


def rows_of(rows, method):
    """{size: row} of one method's rows."""
    return {r["size"]: r for r in rows if r["method"] == method}


def compared_rows(args, entry):
    """(config, row) of every row compared with the baseline: the half-
    precision baselines' rows of the first run, then every compressed run's."""
    halves = half_baselines(args)
    out = [(r["method"], r) for r in entry["runs"][0]["rows"] if r["method"] in halves]
    for run in entry["runs"][1:]:
        out += [(run["label"], r) for r in run["rows"]]
    return out


def summarize(args, results, nhosts):
    """Speed-up of every compressed row (and half-precision baseline row) over
    the baseline of the same size and rate and over mpi-bf16 where that ran,
    its ideal (the wire-byte ratio) and the fitted crossover."""
    speedups = []
    for entry in results:
        first = entry["runs"][0]["rows"]
        base, bf16 = rows_of(first, args.baseline), rows_of(first, "mpi-bf16")
        for config, r in compared_rows(args, entry):
            b = base.get(r["size"])
            if b is None:
                continue
            s = row_time(b) / row_time(r)
            # DDP's bf16 hook: the baseline a user trains with today.
            bb = bf16.get(r["size"]) if config != "mpi-bf16" else None
            # Time to move the wire bytes alone at line rate (lower bound).
            wire_us = r["wire_bytes"] * 8 / (entry["rate_gbit"] * 1e9) * 1e6
            speedups.append({
                "rate": entry["rate"], "rate_gbit": entry["rate_gbit"], "size": r["size"],
                "config": config, "bits": r["bits"], "baseline_us": row_time(b),
                "time_us": row_time(r), "speedup": s, "ideal": r["ratio"],
                "bf16_us": row_time(bb) if bb else None,
                "speedup_vs_bf16": row_time(bb) / row_time(r) if bb else None,
                "fraction_of_ideal": s / r["ratio"] if r["ratio"] else 0,
                "wire_bytes": r["wire_bytes"], "wire_time_us": wire_us,
                "relerr": r["relerr"]})
    # Crossover. Each time is fitted as t(R) = a + b/R over the measured rates
    # (a: rate-independent cost such as the codec, b: bytes on the wire);
    # compression pays for R < R* = (b_base - b_q) / (a_q - a_base).
    crossovers = []
    rates = sorted({s["rate_gbit"] for s in speedups})
    for size in sorted({s["size"] for s in speedups}):
        for config in dict.fromkeys(s["config"] for s in speedups):
            pts = sorted((s["rate_gbit"], s["baseline_us"], s["time_us"], s["speedup"])
                         for s in speedups if s["size"] == size and s["config"] == config)
            c = {"size": size, "config": config,
                 "pays_at_gbit": [p[0] for p in pts if p[3] > 1.0],
                 "loses_at_gbit": [p[0] for p in pts if p[3] <= 1.0]}
            if len(pts) >= 2 and len(rates) >= 2:
                fb, fq = fit([(p[0], p[1]) for p in pts]), fit([(p[0], p[2]) for p in pts])
                da, db = fq[0] - fb[0], fb[1] - fq[1]
                c["fit_baseline_us"] = {"a": fb[0], "b_us_gbit": fb[1]}
                c["fit_compressed_us"] = {"a": fq[0], "b_us_gbit": fq[1]}
                # Fitted R* only where both fits are link-bound in the same sense
                # (the baseline gains more from a faster link than qccl does).
                c["crossover_gbit"] = db / da if db > 0 and da > 0 else None
            crossovers.append(c)
    return speedups, crossovers


def fit(points):
    """Least squares t = a + b/R over (R, t) points; returns (a, b)."""
    xs = [1.0 / r for r, _ in points]
    ts = [t for _, t in points]
    n = len(xs)
    mx, mt = sum(xs) / n, sum(ts) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (t - mt) for x, t in zip(xs, ts)) / sxx if sxx else 0.0
    return mt - b * mx, b


def write_outputs(args, meta, results, speedups, crossovers):
    os.makedirs(os.path.dirname(os.path.abspath(args.out)) or ".", exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump({"meta": meta, "rates": [{k: v for k, v in e.items() if k != "tables"}
                                           for e in results],
                   "speedups": speedups, "crossovers": crossovers}, f, indent=1,
                  default=lambda x: None)
    with open(args.out + ".txt", "w") as f:
        for key, value in meta.items():
            f.write(f"# {key}: {value}\n")
        for e in results:
            f.write(f"\n## link {e['rate']} per host each way")
            if "calibration" in e:
                c = e["calibration"]
                f.write(f" (measured: p2p {c.get('p2p_gbit', 0):.3f} Gbit/s, "
                        f"rtt MPI {c.get('rtt_us', 0):.0f} us / TCP "
                        f"{c.get('tcp_rtt_us', 0):.0f} us, MPI_Allreduce 16M busbw "
                        f"{c.get('allreduce_busbw_gbit', 0):.3f} Gbit/s)")
            if "delayline" in e:
                d = e["delayline"]
                f.write(f"\n# delay line: {d.get('cpu_s', 0):.1f} s CPU over "
                        f"{d.get('wall_s', 0):.0f} s, {d.get('tx_frames', 0)} frames delivered, "
                        f"{d.get('queue_drops', 0)} queue drops, delivered "
                        f"{d.get('late_us_mean', 0):.0f} us late on average (max "
                        f"{d.get('late_us_max', 0):.0f})")
            f.write("\n")
            for table in e["tables"]:
                f.write(table)
        f.write("\n" + speedup_table(speedups, crossovers))
    print(speedup_table(speedups, crossovers))
    try:
        plot(args.out + ".png", speedups, meta)
    except ImportError:
        log("python3-matplotlib missing: no plot (apt-get install python3-matplotlib)")


def speedup_table(speedups, crossovers):
    lines = ["# speed-up = baseline time / qccl time (out-of-place); ideal = wire-byte ratio;",
             "# vs_bf16 = mpi-bf16 time (DDP's bf16 compress hook) / qccl time ('-': not run)",
             f"# {'rate':>7} {'size':>6} {'config':>22} {'base(us)':>11} {'qccl(us)':>11} "
             f"{'speedup':>8} {'vs_bf16':>8} {'ideal':>7} {'of-ideal':>8} {'wire(us)':>10}"]
    for s in speedups:
        vs_bf16 = s.get("speedup_vs_bf16")
        vs_bf16 = "-" if vs_bf16 is None else f"{vs_bf16:.2f}"
        lines.append(f"  {s['rate']:>7} {fmt_size(s['size']):>6} {s['config']:>22} "
                     f"{s['baseline_us']:11.0f} {s['time_us']:11.0f} {s['speedup']:8.2f} "
                     f"{vs_bf16:>8} {s['ideal']:7.2f} {s['fraction_of_ideal']:8.2f} "
                     f"{s['wire_time_us']:10.0f}")
    lines.append("")
    lines.append("# crossover: link rate below which compression pays. measured: the measured")
    lines.append("# rates it won / lost at; fitted: R* from t = a + b/R fitted to each config's")
    lines.append("# times over the rates ('-' where the baseline is not link-bound)")
    lines.append(f"# {'size':>6} {'config':>22} {'wins at (Gbit/s)':>17} {'loses at':>12} "
                 f"{'fitted R*':>10}")
    for c in crossovers:
        x = c.get("crossover_gbit")
        won = ",".join(f"{r:g}" for r in c["pays_at_gbit"]) or "-"
        lost = ",".join(f"{r:g}" for r in c["loses_at_gbit"]) or "-"
        xs = "-" if x is None else f"{x:.2f}"
        lines.append(f"  {fmt_size(c['size']):>6} {c['config']:>22} {won:>17} {lost:>12} {xs:>10}")
    return "\n".join(lines) + "\n"


def plot(path, speedups, meta):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = sorted({s["rate_gbit"] for s in speedups})
    configs = list(dict.fromkeys(s["config"] for s in speedups))
    sizes = sorted({s["size"] for s in speedups})
    fig, axes = plt.subplots(1, len(rates) + 1, figsize=(5 * (len(rates) + 1), 4.2), squeeze=False)
    axes = axes[0]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, rate in enumerate(rates):
        ax = axes[k]
        for j, config in enumerate(configs):
            pts = sorted((s["size"], s["speedup"], s["ideal"]) for s in speedups
                         if s["rate_gbit"] == rate and s["config"] == config)
            if not pts:
                continue
            c = colors[j % len(colors)]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=c, label=config)
            ax.plot([p[0] for p in pts], [p[2] for p in pts], ":", color=c, alpha=0.6)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xticks(sizes, [fmt_size(s) for s in sizes])
        ax.set_xlabel("buffer size (B)")
        ax.set_ylabel("speed-up vs MPI_Allreduce")
        ax.set_title(f"{rate:g} Gbit/s links (dotted: ideal = wire ratio)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    ax = axes[-1]
    for j, config in enumerate(configs):
        for i, size in enumerate(sizes):
            pts = sorted((s["rate_gbit"], s["speedup"]) for s in speedups
                         if s["size"] == size and s["config"] == config)
            if len(pts) < 2 or i not in (0, len(sizes) - 1):
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-" if i else "s--",
                    color=colors[j % len(colors)],
                    label=f"{config} {fmt_size(size)}" if True else None)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log", base=2)
    ax.set_xlabel("link rate per host (Gbit/s)")
    ax.set_ylabel("speed-up")
    ax.set_title("speed-up vs link rate (smallest, largest size)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    fig.suptitle(f"qccl allreduce, {meta['hosts']} hosts, {meta['machine']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    log(f"wrote {path}")


def profile(args, hosts, runner):
    """Samples the whole machine (perf record -a) while one compressed config
    runs at one rate, then reports the benchmark processes' hottest symbols.
    (perf record wrapped around mpirun hangs the rsh launch, so -a it is.)"""
    if shutil.which("perf") is None:
        raise RuntimeError("perf not found (apt-get install linux-perf)")
    rate = args.rates.split(",")[0]
    hosts.shape(parse_rate(rate), args.delay_ms)
    data = os.path.abspath(args.out + ".perf.data")
    argv = [args.bench, "-b", args.size, "-e", args.size, "-n", str(args.iters),
            "-w", str(args.warmup), "-c", "0", "-m", args.method, "-q", args.bits.split(",")[0],
            "-a", args.algos.split(",")[0]]
    perf = subprocess.Popen(["perf", "record", "-a", "-g", "-F", "499", "-o", data],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        time.sleep(1)
        print(runner.mpirun(argv))
    finally:
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=60)
    comm = os.path.basename(args.bench)[:15]  # the kernel's comm is 15 characters
    report = subprocess.run(["perf", "report", "-i", data, "--comms", comm, "--percentage", "relative", "--no-children",
                             "--sort", "dso,symbol", "--stdio", "-g", "none",
                             "--percent-limit", "0.5"], capture_output=True, text=True).stdout
    lines = [l for l in report.splitlines() if l.strip() and not l.startswith("#")]
    print("\n".join(lines[:40]))
    with open(args.out + ".perf.txt", "w") as f:
        f.write(f"# perf record -a -g -F 499 during: {' '.join(argv)} on {hosts.n} hosts at "
                f"{rate}\n# perf report --comms {comm} --no-children --sort dso,symbol "
                f"(% of the benchmark's samples)\n")
        f.write("\n".join(lines[:60]) + "\n")


def report(args):
    """Recomputes speed-ups, crossovers, the summary of <out>.txt and the plot
    from <out>.json (no measurement, no root)."""
    with open(args.out + ".json") as f:
        d = json.load(f)
    # The baselines the results were measured with (older results: no half-
    # precision rows, so no vs_bf16).
    args.baseline = d["meta"].get("baseline", args.baseline)
    args.half_baselines = d["meta"].get("half_baselines", "")
    speedups, crossovers = summarize(args, d["rates"], d["meta"]["hosts"])
    d["speedups"], d["crossovers"] = speedups, crossovers
    with open(args.out + ".json", "w") as f:
        json.dump(d, f, indent=1)
    with open(args.out + ".txt") as f:
        text = f.read()
    head = text.split("\n# speed-up = ")[0]
    with open(args.out + ".txt", "w") as f:
        f.write(head + "\n" + speedup_table(speedups, crossovers))
    print(speedup_table(speedups, crossovers))
    try:
        plot(args.out + ".png", speedups, d["meta"])
    except ImportError:
        log("python3-matplotlib missing: no plot")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=["run", "probe", "profile", "report", "up", "down"])
    p.add_argument("--bench", help="qccl_allreduce_perf binary")
    p.add_argument("--hosts", type=int, default=4)
    p.add_argument("--rates", default="1gbit,10gbit", help="link rates, comma separated")
    p.add_argument("--delay-ms", type=float, default=0.0,
                   help="one-way host-to-host latency (netem with --link veth, else the "
                   "delay line)")
    p.add_argument("--link", choices=["auto", "veth", "delayline"], default="auto",
                   help="link model (see above); auto: veth without a delay, else veth+netem "
                   "where the kernel has sch_netem, else delayline")
    p.add_argument("--delayline", help="qccl_delayline binary (default: next to --bench, "
                   "else compiled from delayline.c)")
    p.add_argument("--sizes", default="1M:256M", help="min:max buffer bytes (-b/-e)")
    p.add_argument("--factor", type=float, default=4, help="size step factor (-f)")
    p.add_argument("--size", default="64M", help="profile: the one size")
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--check", type=int, default=0, help="-c: 1 also measures the error")
    p.add_argument("--baseline", default="mpi", help="uncompressed method: mpi or none")
    p.add_argument("--half-baselines", default="mpi-fp16,mpi-bf16",
                   help="half-precision MPI baselines run with --baseline (DDP's fp16/bf16 "
                   "compress hooks; '' for none); speed-ups are also given vs mpi-bf16")
    p.add_argument("--method", default="qsgd", help="compression method")
    p.add_argument("--bits", "-q", default="2,3,4")
    p.add_argument("--algos", "-a", default="allgather,sra")
    p.add_argument("--out", default="netem-results", help="output path without extension")
    p.add_argument("--prefix", default="qnet", help="namespace/interface name prefix")
    p.add_argument("--subnet", default="10.77.0", help="first three octets of the /24")
    p.add_argument("--timeout", type=int, default=300, help="seconds per mpirun (tries twice)")
    p.add_argument("--mpi-args", default="", help="extra mpirun arguments, one string")
    p.add_argument("--no-calibrate", dest="calibrate", action="store_false")
    p.add_argument("--machine", default="2-core x86-64 container, no GPU; all ranks share "
                   "its 2 cores")
    p.add_argument("--date", default=time.strftime("%Y-%m-%d"))
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()

    if args.action in ("run", "profile") and not (args.bench and os.access(args.bench, os.X_OK)):
        p.error(f"--bench {args.bench!r} is not an executable (build qccl_allreduce_perf)")
    if args.bench:
        args.bench = os.path.abspath(args.bench)
    if args.action == "report":
        return report(args)
    reason = can_run()
    if reason:
        print(f"netem: skipped: {reason}", flush=True)
        return SKIP
    if args.action == "down":
        Hosts(args.hosts, args.prefix, args.subnet).down()
        return 0
    if args.delay_ms < 0:
        p.error(f"--delay-ms {args.delay_ms}: must be >= 0")
    try:
        link = choose_link(args)
    except RuntimeError as e:
        log(f"error: {e}")
        return 1
    hosts = Hosts(args.hosts, args.prefix, args.subnet, link)
    log(f"link model: {describe_link(link, args.delay_ms)}")

    # Ctrl-C / SIGTERM become exceptions so the finally below always tears down.
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    if hosts.in_use():
        log(f"error: bridge {hosts.bridge} or namespace {hosts.ns[0]} exists: another run is "
            f"active, or a killed one left it behind (clean up with: {sys.argv[0]} down "
            f"--prefix {args.prefix})")
        return 1
    workdir = tempfile.mkdtemp(prefix="qccl-netem-")
    runner = None
    try:
        if hosts.delayline:
            hosts.delayline.exe = find_delayline(args, workdir)
        hosts.up()
        if args.action == "up":
            log(f"hosts up: {', '.join(f'{n}={a}' for n, a in zip(hosts.ns, hosts.addr))}; "
                f"remove with: {sys.argv[0]} down --prefix {args.prefix}")
            return 0
        runner = Runner(hosts, args.timeout, workdir, args.mpi_args.split())
        if args.action == "probe":
            exe = build_probe(workdir)
            for rate_text in args.rates.split(","):
                hosts.shape(parse_rate(rate_text), args.delay_ms)
                r = probe(runner, exe)
                r.update({f"delayline_{k}": v for k, v in hosts.unshape().items()})
                print(f"{rate_text}: {json.dumps(r)}", flush=True)
                if r["distinct_namespaces"] != hosts.n:
                    raise RuntimeError(f"ranks ran in {r['distinct_namespaces']} namespaces, "
                                       f"expected {hosts.n}")
            return 0
        if args.action == "profile":
            profile(args, hosts, runner)
            return 0
        t0 = time.time()
        results = run_sweep(args, hosts, runner, workdir)
        meta = {"date": args.date, "machine": args.machine, "hosts": args.hosts,
                "ranks_per_host": 1, "link_model": link, "link": describe_link(link, args.delay_ms),
                "delay_ms_one_way": args.delay_ms, "transport": "Open MPI btl tcp",
                "sizes": args.sizes, "factor": args.factor, "iters": args.iters,
                "warmup": args.warmup, "method": args.method, "baseline": args.baseline,
                "half_baselines": args.half_baselines,
                "command": " ".join(sys.argv), "wall_s": round(time.time() - t0)}
        speedups, crossovers = summarize(args, results, args.hosts)
        write_outputs(args, meta, results, speedups, crossovers)
        return 0
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); tearing down")
        return 130
    except RuntimeError as e:
        log(f"error: {e}")
        return 1
    finally:
        if runner:
            runner.kill()
        if args.action != "up":
            hosts.down()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
