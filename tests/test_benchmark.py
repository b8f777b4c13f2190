"""`python benchmarks/run.py fpha --quick` end to end, as a user runs it (a fresh cache)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from handmt.config import BenchOptions, load_config
from handmt.engine.checkpoint import save_checkpoint
from handmt.errors import ConfigError


def load_run_py():
    """benchmarks/run.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("bench_run", "benchmarks/run.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_quick_fpha_benchmark_writes_its_tables_and_plots(tmp_path):
    # two trainings at a time (--jobs 2), as on the 2-core CI machine
    out = tmp_path / "results"
    env = {**os.environ, "HANDMT_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "benchmarks/run.py", "fpha", "--quick", "--out",
                           str(out), "--no-progress", "--jobs", "2"], env=env,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["quick"] and results["suite"] == "fpha" and results["wall_seconds"] > 0
    assert "synthetic FPHA-format set" in results["data"] and "background=plain" in results["data"]
    assert set(results["tables"]) == {"gesture", "pose", "depth_supervision", "multimodal",
                                      "segmentation"}
    rows = {row["method"]: row for row in results["rows"]}
    # a floor is marked as one: a trivial baseline, not a trained model
    assert {name for name, row in rows.items() if row["floor"]} == {
        "floor: majority class", "floor: 1-NN on the ground-truth 2D joints",
        "floor: mean training pose", "floor: mean training mask"}
    tsn = rows["TSN"]
    # 6 classes x 3 subjects x 10 test sequences; top-1 is a count of those videos
    assert tsn["videos"] == 180 and len(tsn["top1"]) == 1
    assert round(tsn["top1_mean"] * 180, 6).is_integer()
    assert tsn["pose"] == [None]  # no pose head, no pose metrics
    # Every trained gesture row learns: at least 3x chance (1/6), and above both floors.
    assert results["chance"] == pytest.approx(1 / 6)
    floors = {name: rows[name]["top1_mean"] for name in (
        "floor: majority class", "floor: 1-NN on the ground-truth 2D joints")}
    assert floors["floor: majority class"] == pytest.approx(1 / 6)  # balanced classes
    gesture = {name: row["top1_mean"] for name, row in rows.items()
               if row["top1_mean"] is not None and not name.startswith("floor")}
    assert set(gesture) == {"TSN", "TSN + segmentation", "+ 2 iterations (full)", "ACTION + MSD",
                            "RGB with SSA from depth (MTUT)", "depth with SSA from RGB (MTUT)",
                            "fusion (MTUT)"}
    assert min(gesture.values()) >= 3 / 6, gesture
    # the collaborative model's 3D pose reaches PCK@20 50 % (issue 15) and beats the mean
    # training pose at the true wrist
    full, mean_pose = (rows[name]["pose"][0] for name in ("+ 2 iterations (full)",
                                                          "floor: mean training pose"))
    assert full["pck@20"] >= 0.5, full["pck@20"]
    assert full["pck@20"] > mean_pose["pck@20"] and full["mpjpe"] < mean_pose["mpjpe"]
    # a PCK curve rises with the threshold and its AUC is its normalized area
    assert full["pck"] == sorted(full["pck"]) and 0 < full["auc"] < 1
    assert full["frames"] == mean_pose["frames"] == 180 * 4
    # the MSD row tests the RGB recognizer alone; MTUT's rows read one training at each network
    assert rows["ACTION + MSD"]["pose"] == [None] and rows["ACTION + MSD"]["videos"] == 180
    mtut = {name: rows[name] for name in ("RGB with SSA from depth (MTUT)",
                                          "depth with SSA from RGB (MTUT)", "fusion (MTUT)")}
    assert [row["metric"] for row in mtut.values()] == ["top1_rgb", "top1_depth", "top1_fusion"]
    assert len({row["train_seconds"][0] for row in mtut.values()}) == 1  # trained once
    # segmentation: scored on every test frame; alone it has no top-1; the constant floor trains
    # nothing, and the segmentation head beats it
    masks = {name: rows[name]["segmentation"][0] for name in (
        "TSN + segmentation", "segmentation alone", "floor: mean training mask")}
    assert all(m["frames"] == 180 * 4 and 0 < m["iou"] < m["f1"] < 1 for m in masks.values())
    assert rows["segmentation alone"]["top1"] == [None] and tsn["segmentation"] == [None]
    assert rows["floor: mean training mask"]["train_seconds"] == [0.0]
    for name in ("TSN + segmentation", "segmentation alone"):
        assert masks[name]["iou"] > masks["floor: mean training mask"]["iou"] + 0.05, name
    table = (out / "results.md").read_text()
    for heading in ("## Gesture recognition", "## 3D hand pose",
                    "## Depth supervision of an RGB recognizer (MSD)",
                    "## One network per modality, coupled by SSA (MTUT)", "## Hand segmentation"):
        assert heading in table
    assert "| TSN | RGB |" in table and "chance = 16.7 %" in table
    # the change column: one seed, so a difference without a verdict; ACTION is not in --quick
    plus_seg = next(line for line in table.splitlines() if line.startswith("| TSN + segm"))
    assert " vs TSN |" in plus_seg and "noise" not in plus_seg
    assert "| ACTION + MSD | RGB (depth in training) |" in table
    assert next(line for line in table.splitlines() if line.startswith("| ACTION + MSD"))\
        .split(" | ")[-3] == "-"
    assert "wrist depth from the ground truth" in table  # the 3D protocol is stated
    assert "| TSN | RGB |" in proc.stdout
    for plot in ("confusion_tsn.png", "training_tsn.png", "pck_curves.png",
                 "confusion_2_iterations_full.png"):
        assert (out / plot).stat().st_size > 10_000, plot


def test_real_dataset_suite_runs_on_a_fixture_in_the_published_layout(tmp_path):
    """`benchmarks/run.py nvgesture --root DIR --quick`: the MSD and MTUT rows of a real-dataset
    suite train and evaluate end to end on NVGesture's layout (a fixture of three videos)."""
    from test_gesture_datasets import write_nvgesture
    root = write_nvgesture(tmp_path / "nvgesture")
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, "benchmarks/run.py", "nvgesture", "--root", str(root),
                           "--quick", "--out", str(out), "--no-progress"],
                          env={**os.environ, "HANDMT_CACHE": str(tmp_path / "cache")},
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["data"] == f"nvgesture at {root}"
    assert set(results["tables"]) == {"depth_supervision", "multimodal"}
    rows = {row["method"]: row for row in results["rows"]}
    assert {"TSM", "TSM + MSD", "TEA", "TEA + MSD", "ACTION", "ACTION + MSD",
            "ACTION + local decoder", "ACTION + global decoder", "RGB alone",
            "fusion (MTUT)"} <= set(rows)
    # one test video: every top-1 is 0 or 1, and chance is 1 in NVGesture's 25 classes
    assert all(row["videos"] == 1 and row["top1_mean"] in (0.0, 1.0) for row in rows.values())
    assert results["chance"] == pytest.approx(1 / 25)
    assert "3D pose" not in (out / "results.md").read_text()


def test_each_protocol_quick_run_and_table_subset_writes_to_its_own_folder():
    bench = load_run_py()

    def out(suite="fpha-skeleton", quick=False, protocol="1:1", tables=None):
        args = SimpleNamespace(suite=suite, quick=quick, protocol=protocol, tables=tables)
        return bench.default_out(args, tables.split(",") if tables else ["gesture"]).name

    assert out() == "fpha-skeleton"
    assert out(protocol="cross-subject") == "fpha-skeleton-cross-subject"
    assert out(tables="weak") == "fpha-skeleton-weak"
    assert out(quick=True, protocol="cross-subject") == "fpha-skeleton-quick-cross-subject"
    assert out(suite="fpha", quick=True) == "fpha-quick"


def test_a_real_dataset_suite_needs_its_root():
    proc = subprocess.run([sys.executable, "benchmarks/run.py", "viva", "--quick"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "viva is not embedded: give its folder with --root" in \
        proc.stderr


DEV = Path(__file__).resolve().parents[2] / "shared" / "fpha-dev"


@pytest.mark.skipif(not DEV.is_dir(), reason=f"the real FPHA skeletons are not at {DEV}")
def test_fpha_skeleton_runs_its_weak_table_on_request_only(tmp_path):
    bench = load_run_py()
    rows = bench.suite_rows("fpha-skeleton")
    assert "weak" in bench.suite_tables(rows)
    assert bench.default_tables("fpha-skeleton", rows) == ["gesture"]
    assert "weak" not in bench.default_tables("fpha", bench.suite_rows("fpha"))
    out = tmp_path / "results"
    # two of the four fractions: 10 % (FixMatch trains its own model) and 100 % (it shares one)
    proc = subprocess.run([sys.executable, "benchmarks/run.py", "fpha-skeleton", "--quick",
                           "--tables", "weak", "--rows", "*-10-*,*-100-*", "--out", str(out),
                           "--no-progress", "--jobs", "2"],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert list(results["tables"]) == ["weak"]
    times = {row["method"]: row["train_seconds"] for row in results["rows"]}
    # no sequence is unlabelled at 100 %: the FixMatch row shares the masked loss's training
    assert times["gesture labels 100%, + semi-supervised"] == \
        times["gesture labels 100%, masked loss only"]
    table = (out / "results.md").read_text()
    assert "| gesture labels | top-1 (%), masked loss only | top-1 (%), + semi-supervised |" \
        in table and "Published" not in table
    assert [f for f in ("10%", "25%", "50%", "100%") if f"\n| {f} | " in table] == ["10%", "100%"]
    assert (out / "weak_gesture.png").stat().st_size > 10_000


def test_a_jobs_worker_exits_when_run_py_is_gone():
    """--jobs workers watch run.py: killed, it must not leave trainings running into the run
    folders. A worker whose parent is not the one it was started for exits at once; one whose
    parent lives works on past its first 5-second check."""
    worker = ("import importlib.util, sys, time; "
              "spec = importlib.util.spec_from_file_location('bench_run', 'benchmarks/run.py'); "
              "bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench); "
              "bench.start_worker(1, int(sys.argv[1])); print('ready', flush=True); "
              "time.sleep(60)")
    orphan = subprocess.run([sys.executable, "-c", worker, "1"], capture_output=True, text=True,
                            timeout=60)  # pid 1: not its parent
    assert orphan.returncode == 1, orphan.stderr[-2000:]
    child = subprocess.Popen([sys.executable, "-c", worker, str(os.getpid())],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=6)
    finally:
        child.kill()


def test_the_i3d_probe_trains_its_variants_on_the_quick_synthetic_set():
    """benchmarks/i3d_rgb_probe.py builds every variant on run.py's synthetic set with --quick's
    classes (the probe explains MTUT's synthetic rows, so it must read the same set)."""
    bench = load_run_py()
    sys.path.insert(0, "benchmarks")
    try:
        spec = importlib.util.spec_from_file_location("probe", "benchmarks/i3d_rgb_probe.py")
        probe = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(probe)
    finally:
        sys.path.remove("benchmarks")
    synthetic = probe.synthetic_overrides(load_config(probe.TSN)["model"]["heads"], quick=True)
    for overrides in probe.VARIANTS.values():
        cfg = load_config(probe.TSN, [*synthetic, *overrides])
        assert cfg["data"]["synthetic"]["classes"] == bench.QUICK_CLASSES
        assert cfg["model"]["heads"]["gesture"]["num_classes"] == 6
        assert cfg["data"]["synthetic"]["background"] == "plain"


def test_a_row_is_judged_against_the_row_it_changes():
    """The change column: the difference of the means in points and, over seeds, "better" or
    "worse" beyond twice the standard error of that difference, else "within noise"."""
    bench = load_run_py()

    def runs(*values):
        return [{"top1": v} for v in values]

    def change(row_values, ref_values):
        results = {"A": runs(*ref_values), "B": runs(*row_values)}
        row = BenchOptions(name="B", tables=["gesture"], compare="A")
        return bench.change(row, results, lambda run: run["top1"])

    # stds 10 and 10 points over 3 seeds: standard error sqrt(100/3 + 100/3) = 8.16, so 2 SE = 16.3
    assert change((0.8, 0.9, 1.0), (0.5, 0.6, 0.7)) == "+30.0 vs A: better"
    assert change((0.5, 0.6, 0.7), (0.8, 0.9, 1.0)) == "-30.0 vs A: worse"
    assert change((0.65, 0.75, 0.85), (0.5, 0.6, 0.7)) == "+15.0 vs A: within noise"
    assert change((0.9,), (0.6,)) == "+30.0 vs A"  # one seed: no verdict
    row = BenchOptions(name="A", tables=["gesture"])
    assert bench.change(row, {"A": runs(0.5)}, lambda run: run["top1"]) == "-"
    # a reference that was not run (--rows) leaves the cell empty
    row = BenchOptions(name="B", tables=["gesture"], compare="A")
    assert bench.change(row, {"B": runs(0.5)}, lambda run: run["top1"]) == "-"


def test_a_row_that_changes_an_unknown_row_is_refused_with_its_file(tmp_path, monkeypatch):
    bench = load_run_py()
    suite = tmp_path / "suite"
    suite.mkdir()
    base = Path("configs/cpu_fpha_tsn.yaml").resolve()
    (suite / "00-a.yaml").write_text(f"base: {base}\nbench: {{name: Baseline, tables: "
                                     "[gesture]}\n")
    (suite / "01-b.yaml").write_text(f"base: {base}\nbench: {{name: B, tables: [gesture], "
                                     "compare: Baselin}\n")
    monkeypatch.setattr(bench, "BENCH", tmp_path)
    with pytest.raises(ConfigError, match=r"bench.compare.*no row of suite is named 'Baselin'"
                                          r".*did you mean 'Baseline'.*01-b.yaml"):
        bench.suite_rows("suite")


def test_resume_keeps_a_finished_run_whose_row_only_renamed_itself(tmp_path):
    """--resume compares what training reads: a changed `bench` (name, compare, ...) keeps the
    run; a changed training value or an unfinished run trains again."""
    bench = load_run_py()
    cfg = load_config("configs/benchmarks/fpha/00-tsn.yaml")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    save_checkpoint(tmp_path / bench.CHECKPOINT, {"epoch": cfg["train"]["epochs"]})
    assert bench.finished(tmp_path, cfg)
    renamed = {**cfg, "bench": {**cfg["bench"], "name": "TSN (renamed)", "compare": "ACTION"}}
    assert bench.finished(tmp_path, renamed)
    assert not bench.finished(tmp_path, {**cfg, "train": {**cfg["train"], "seed": 1}})
    save_checkpoint(tmp_path / bench.CHECKPOINT, {"epoch": cfg["train"]["epochs"] - 1})
    assert not bench.finished(tmp_path, cfg)


def test_predicted_crop_maps_mask_pixels_back_to_the_colour_frame(tmp_path):
    """benchmarks/predicted_crop.py: a localiser that predicts the true mask (an oracle) gets the
    box of the mask in the colour frame, though it saw the frame's square resized to 64 px."""
    from fixtures import MINI_CAMERA, render_frames, write_mini_fpha

    from handmt.data.fpha import crop_box
    from handmt.models.base import Prediction
    sys.path.insert(0, "benchmarks")
    try:
        spec = importlib.util.spec_from_file_location("predicted_crop",
                                                      "benchmarks/predicted_crop.py")
        predicted_crop = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(predicted_crop)
    finally:
        sys.path.remove("benchmarks")

    class Oracle:
        def predict(self, batch):
            return Prediction(mask=batch["mask"][:, :, 0].float())

    root = write_mini_fpha(tmp_path / "fpha")
    data = {"name": "fpha", "root": str(root), "modalities": ["rgb", "mask"], "crop": "frame",
            "size": 64, "num_frames": 2}
    boxes, ious = predicted_crop.predicted_boxes({"data": data}, Oracle())
    mask = render_frames(MINI_CAMERA)[2]  # every frame: the card, in colour pixels
    ys, xs = np.nonzero(mask)
    truth = crop_box(np.stack([xs, ys], axis=1), MINI_CAMERA.color_size, 0.25)
    assert boxes and set(boxes) == set(ious["train"]) | set(ious["test"])
    step = max(MINI_CAMERA.color_size) / 64  # colour pixels per input pixel
    for name, box in boxes.items():  # within one input pixel (the oracle's mask is resized)
        assert np.abs(np.subtract(box, truth)).max() <= step, (name, box, truth)
    assert predicted_crop.box_iou((0, 0, 10), (5, 0, 10)) == pytest.approx(50 / 150)


def test_jobs_start_the_longest_trainings_first(tmp_path):
    bench = load_run_py()
    (tmp_path / "results.json").write_text(json.dumps({"rows": [
        {"method": "short", "train_seconds": [10.0, 20.0]},
        {"method": "long", "train_seconds": [100.0]},
        {"method": "floor", "train_seconds": [0.0]}]}))
    expected = bench.expected_seconds(tmp_path / "results.json")
    assert expected == {"short": 15.0, "long": 100.0, "floor": 0.0}
    tasks = [(BenchOptions(name=name, tables=["gesture"]), 0, None) for name in
             ("short", "new", "long", "floor")]
    # a row the last results lack ("new") first, then by time; no results file: the given order
    assert bench.longest_first(tasks, expected) == [1, 2, 0, 3]
    assert bench.longest_first(tasks, bench.expected_seconds(tmp_path / "none.json")) == [
        0, 1, 2, 3]
