"""Unit tests of netem_bench.py's run list and summary (no root, no network):
the baselines run together (mpi, mpi-fp16, mpi-bf16), and every compared
row gets its speed-up over the float32 baseline and over mpi-bf16.
  python3 -m unittest perf/netem/test_netem_bench.py   (ctest netem_bench_summary)"""
import argparse
import json
import os
import sys
import tempfile
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netem_bench  # noqa: E402


def args(**kw):
    a = argparse.Namespace(baseline="mpi", half_baselines="mpi-fp16,mpi-bf16", method="qsgd",
                           bits="2", algos="allgather")
    for k, v in kw.items():
        setattr(a, k, v)
    return a


def row(method, size, time_us, ratio, bits=32):
    return {"size": size, "method": method, "bits": bits, "oop_time_us": time_us,
            "ip_time_us": time_us, "wire_bytes": int(size / ratio), "ratio": ratio,
            "relerr": 0.0}


def results(with_halves=True):
    """One rate, two sizes; times chosen so every speed-up is a round number."""
    first = [row("mpi", 1 << 20, 800.0, 1.0), row("mpi", 4 << 20, 3200.0, 1.0)]
    if with_halves:
        first += [row("mpi-fp16", 1 << 20, 500.0, 2.0, 16),
                  row("mpi-bf16", 1 << 20, 400.0, 2.0, 16),
                  row("mpi-fp16", 4 << 20, 2000.0, 2.0, 16),
                  row("mpi-bf16", 4 << 20, 1600.0, 2.0, 16)]
    qsgd = [row("qsgd", 1 << 20, 200.0, 8.0, 2), row("qsgd", 4 << 20, 400.0, 8.0, 2)]
    return [{"rate": "1gbit", "rate_gbit": 1.0,
             "runs": [{"label": "mpi", "rows": first},
                      {"label": "qsgd-2b-allgather", "rows": qsgd}]}]


class BenchRuns(unittest.TestCase):
    def test_baselines_run_together_first(self):
        runs = netem_bench.bench_runs(args())
        self.assertEqual(runs[0], ("mpi", ["-m", "mpi,mpi-fp16,mpi-bf16"]))
        self.assertEqual(runs[1][0], "qsgd-2b-allgather")

    def test_no_half_baselines(self):
        runs = netem_bench.bench_runs(args(half_baselines=""))
        self.assertEqual(runs[0], ("mpi", ["-m", "mpi"]))


class Summarize(unittest.TestCase):
    def test_speedups_vs_fp32_and_bf16(self):
        speedups, _ = netem_bench.summarize(args(), results(), 4)
        got = {(s["config"], s["size"]): s for s in speedups}
        self.assertEqual(sorted({c for c, _ in got}), ["mpi-bf16", "mpi-fp16",
                                                        "qsgd-2b-allgather"])
        q1 = got[("qsgd-2b-allgather", 1 << 20)]
        self.assertAlmostEqual(q1["speedup"], 4.0)  # 800 / 200
        self.assertAlmostEqual(q1["speedup_vs_bf16"], 2.0)  # 400 / 200
        q4 = got[("qsgd-2b-allgather", 4 << 20)]
        self.assertAlmostEqual(q4["speedup"], 8.0)  # 3200 / 400
        self.assertAlmostEqual(q4["speedup_vs_bf16"], 4.0)  # 1600 / 400
        fp16 = got[("mpi-fp16", 1 << 20)]
        self.assertAlmostEqual(fp16["speedup"], 1.6)  # 800 / 500
        self.assertAlmostEqual(fp16["speedup_vs_bf16"], 0.8)  # 400 / 500
        bf16 = got[("mpi-bf16", 4 << 20)]
        self.assertAlmostEqual(bf16["speedup"], 2.0)  # 3200 / 1600
        self.assertIsNone(bf16["speedup_vs_bf16"])

    def test_table_has_vs_bf16_column(self):
        speedups, crossovers = netem_bench.summarize(args(), results(), 4)
        table = netem_bench.speedup_table(speedups, crossovers)
        self.assertIn("vs_bf16", table)
        line = next(l for l in table.splitlines() if "qsgd-2b-allgather" in l and "1M" in l
                    and not l.startswith("#") and "4.00" in l)
        self.assertIn(" 2.00 ", line)

    def test_results_without_half_baselines(self):
        # Older results (one baseline row per size): speed-ups vs fp32 only.
        speedups, _ = netem_bench.summarize(args(half_baselines=""),
                                            results(with_halves=False), 4)
        self.assertEqual({s["config"] for s in speedups}, {"qsgd-2b-allgather"})
        self.assertTrue(all(s["speedup_vs_bf16"] is None for s in speedups))
        table = netem_bench.speedup_table(speedups, [])
        self.assertIn("       -", table)


class Report(unittest.TestCase):
    def test_report_reads_the_baselines_from_meta(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r")
            rates = results()
            meta = {"hosts": 4, "machine": "test", "baseline": "mpi",
                    "half_baselines": "mpi-fp16,mpi-bf16"}
            with open(out + ".json", "w") as f:
                json.dump({"meta": meta, "rates": rates}, f)
            with open(out + ".txt", "w") as f:
                f.write("# header\n")
            # The command line's defaults differ from what the results used.
            a = args(out=out, baseline="none", half_baselines="")
            with mock.patch.object(netem_bench, "plot"):  # no matplotlib needed
                self.assertEqual(netem_bench.report(a), 0)
            with open(out + ".json") as f:
                speedups = json.load(f)["speedups"]
        q = [s for s in speedups if s["config"] == "qsgd-2b-allgather" and s["size"] == 1 << 20]
        self.assertEqual(len(q), 1)
        self.assertAlmostEqual(q[0]["speedup_vs_bf16"], 2.0)


if __name__ == "__main__":
    unittest.main()
