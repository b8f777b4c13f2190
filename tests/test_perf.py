"""`python benchmarks/perf.py --quick` end to end: every figure's ratio is reported, finite and
positive, the SSA loss's two paths agree, every model family's throughput is reported and the
profiles are written."""

import json
import math
import subprocess
import sys


def test_quick_perf_reports_every_ratio(tmp_path):
    # one torch thread: on a busy machine (tests running alongside) two OpenMP threads stall
    # each other for seconds, which a smoke test does not need to see
    proc = subprocess.run([sys.executable, "benchmarks/perf.py", "--quick", "--threads", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
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

    # figure 6 at CPU size only (--quick): every family, positive clips/s and memory
    throughput = results["throughput"]
    assert [(r["family"], r["size"]) for r in throughput if r["device"] == "cpu"] == [
        ("TSN", "CPU"), ("ACTION + MSD", "CPU"), ("MTUT (two I3D)", "CPU"),
        ("collaborative", "CPU"), ("collaborative gesture sub-network on 3D joints", "CPU")]
    for r in throughput:
        for key in ("train clips/s", "inference clips/s", "peak MiB", "loader clips/s"):
            assert math.isfinite(r[key]) and r[key] > 0, (key, r)
    cpu = [r for r in throughput if r["device"] == "cpu"]
    images, skeleton = cpu[:-1], cpu[-1]
    assert all(r["batch"] == 8 and r["clip"][:2] == [8, 3] for r in images)
    # fpha_skeleton.yaml's batches: 32 clips of 32 frames of 21 joints
    assert skeleton["batch"] == 32 and skeleton["clip"] == [32, 21, 3]

    table = (tmp_path / "results.md").read_text()
    assert "| 1 | resnet18 + ACTION vs TSN (112 px) | time |" in table
    assert "torch.compile not measured" in table  # only with --compile, and it says so
    assert "| ACTION + MSD | CPU | cpu_fpha_action_msd.yaml | cpu | 8 x 3 x 32 x 32 | 8 |" in table
    # the profiles: one step's ops by self time; ACTION runs as its autograd Function
    profiles = {name: (tmp_path / f"profile_{name}.txt").read_text()
                for name in ("tsn", "action", "action_before")}
    assert "ActionFunctionBackward" in profiles["action"]
    assert "ActionFunction" not in profiles["tsn"] + profiles["action_before"]
    assert all("Self CPU" in text for text in profiles.values())
