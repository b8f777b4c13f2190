"""`python benchmarks/perf.py --quick` end to end: every figure's ratio is reported, finite and
positive, and the SSA loss's two paths agree."""

import json
import math
import subprocess
import sys


def test_quick_perf_reports_every_ratio(tmp_path):
    # one torch thread: on a busy machine (tests running alongside) two OpenMP threads stall
    # each other for seconds, which a smoke test does not need to see
    proc = subprocess.run([sys.executable, "benchmarks/perf.py", "--quick", "--threads", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["quick"] and results["machine"]["torch_threads"] == 1
    assert {"cpu", "cores", "torch"} <= set(results["machine"])

    rows = results["rows"]
    assert {row["figure"] for row in rows} == {"1", "2", "3", "4", "5"}
    for row in rows:
        assert math.isfinite(row["ratio"]) and row["ratio"] > 0, row
        if row["spread"] is not None:
            assert all(math.isfinite(v) and v > 0 for v in row["spread"]), row
    goals = {row["goal"] for row in rows}
    assert {"<= 1.1", ">= 20", ">= 5", "<= 1.02", ">= 0.5"} <= goals

    ssa = results["details"]["ssa"]
    assert ssa["values_agree"] and ssa["max_relative_value_difference"] < 1e-4
    assert ssa["max_gradient_difference_of_largest"] < 1e-3
    # the d x d path holds d x d matrices, the Gram path only C x C ones
    assert ssa["peak_mib"]["corr"] > ssa["peak_mib"]["gram"]

    table = (tmp_path / "results.md").read_text()
    assert "| 1 | resnet18 + ACTION vs TSN (112 px) | time |" in table
    assert "torch.compile not measured" in table  # --quick skips it, and says so
