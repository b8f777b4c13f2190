"""Speed and memory of handmt, each figure a ratio of two things measured side by side in one run
(docs/design.md, "Benchmarks"): on a shared machine absolute times are noise, but A and B timed in
alternation see the same load.

    python benchmarks/perf.py [--quick] [--out DIR] [--threads N] [--compile]

1. ResNet-50 + ACTION vs plain TSN (ResNet-50): forward + backward of a training step, 8 frames,
   batch 1, 224 px (goal <= 1.10). Also measured: ACTION as implemented before its CPU
   optimizations ("before", kept in this file only), with --compile both models under
   torch.compile; and each one's top ops by self CPU time in one step (profile_*.txt).
2. SSA loss, forward + backward, with the Gram identity (ssa_loss's default) vs the direct d x d
   form (path="corr") at d = 8x28x28, C = 256, batch 2: peak memory (goal >= 20x; the most bytes
   of CPU tensors alive at once, from torch.profiler's allocation record) and time. Both paths
   must give the same values and gradients.
3. FPHADataset clips/s reading decoded frames from the HDF5 cache vs decoding JPEG/PNG and
   registering depth (goal >= 5x), on a synthetic FPHA-format set generated into a temp folder.
4. deploy() of ACTION + MSD vs the ACTION recognizer built without MSD, same weights: inference
   latency, eval mode, no grad (goal <= 1.02).
5. FLOP/s achieved by the training step of figure 1 (FLOPs counted by FlopCounterMode, with
   grouped convolutions' backward corrected; time from figure 1) vs a 2048 x 2048 float32
   matmul timed in the same loop (goal >= 0.5).
6. Throughput users can plan with (not a ratio): training and inference clips/s of each model
   family (TSN, ACTION + MSD, MTUT, collaborative, and the collaborative gesture sub-network on
   3D joints) at its CPU-size config (the config's batch) and paper-size config (batch 1; the
   skeleton model has one size), on batches of figure 3's synthetic set in the config's clip
   shape; each model's peak memory (a fresh process per model: peak RSS); at CPU size the data
   loader's clips/s beside the training step's, to show which one limits. With a CUDA device,
   the same figures on it too.

Every ratio is median(A) / median(B) over the rounds after warm-up; its spread is the quartiles
of the per-round ratios A_i / B_i. --quick (ResNet-18 at 112 px, d = 8x14x14, a smaller set,
fewer rounds, CPU sizes only in figure 6) runs in a few minutes. Writes results.md,
results.json and the profiles to --out (default benchmarks/results/perf, or
benchmarks/results/perf-quick with --quick).
"""

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import MethodType

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import DataLoader, RandomSampler
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from handmt.config import load_config  # noqa: E402
from handmt.data import FPHADataset, build_dataset, generate_fpha  # noqa: E402
from handmt.losses import ssa_loss  # noqa: E402
from handmt.models import build  # noqa: E402
from handmt.models.layers import Action  # noqa: E402

CLASSES = 45
GEMM_SIZE = 2048


def log(message):
    print(message, flush=True)


# --- timing -----------------------------------------------------------------------------------

def interleaved(fns, rounds, warmup=1):
    """Time each of {name: fn} once per round, for warmup + rounds rounds, reversing the order
    every round (A B, B A, ...) so that no variant always runs right after the same other one.
    -> {name: [seconds of each round after warm-up]}."""
    times = {name: [] for name in fns}
    names = list(fns)
    for index in range(warmup + rounds):
        this_round = {}
        for name in names if index % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            fns[name]()
            this_round[name] = time.perf_counter() - start
        if index >= warmup:
            for name, seconds in this_round.items():
                times[name].append(seconds)
        kind = "warm-up" if index < warmup else f"round {index - warmup + 1}/{rounds}"
        log(f"    {kind}: " + ", ".join(f"{name} {1e3 * this_round[name]:.0f} ms"
                                        for name in names))
    return times


def median(values):
    return statistics.median(values)


def spread(per_round):
    """Quartiles of per-round ratios (both ends equal with a single round)."""
    if len(per_round) < 2:
        return [per_round[0], per_round[0]]
    q1, _, q3 = statistics.quantiles(per_round, n=4, method="inclusive")
    return [q1, q3]


def row(figure, name, measure, value, per_round, goal, note=""):
    """One line of the table; goal is (">=" or "<=", threshold) or None."""
    met = None
    if goal is not None:
        met = value >= goal[1] if goal[0] == ">=" else value <= goal[1]
    return {"figure": figure, "name": name, "measure": measure, "ratio": value,
            "spread": spread(per_round) if per_round else None,
            "goal": None if goal is None else f"{goal[0]} {goal[1]:g}", "met": met,
            "note": note}


def time_ratio(figure, name, times, a, b, goal=None, note=""):
    """median(a) / median(b) of interleaved times."""
    per_round = [x / y for x, y in zip(times[a], times[b], strict=True)]
    return row(figure, name, "time", median(times[a]) / median(times[b]), per_round, goal, note)


# --- figure 1 and 5: ACTION vs TSN, achieved FLOP/s --------------------------------------------

def reference_shift(self, x):
    """LearnableShift.forward before the optimization: a Conv1d over each pixel's frames."""
    height, width = x.shape[-2:]
    sequences = rearrange(x, "(b t) c h w -> (b h w) c t", t=self.segments())
    return rearrange(self.conv(sequences), "(b h w) c t -> (b t) c h w", h=height, w=width)


def reference_action(self, x):
    """Action.forward before the optimization (its shift patched to `reference_shift`)."""
    x = self.shift(x)
    return x * (3 + reference_spatiotemporal(self, x) + reference_channel(self, x)
                + reference_motion(self, x))


def reference_spatiotemporal(self, x):
    """Action.spatiotemporal_attention before the optimization: einops' channel mean."""
    pooled = reduce(x, "(b t) c h w -> b 1 t h w", "mean", t=self.segments())
    return rearrange(self.ste_conv(pooled), "b 1 t h w -> (b t) 1 h w").sigmoid()


def reference_channel(self, x):
    """Action.channel_attention as first implemented."""
    squeezed = self.ce_squeeze(reduce(x, "n c h w -> n c 1 1", "mean"))
    sequences = rearrange(squeezed, "(b t) r 1 1 -> b r t", t=self.segments())
    temporal = rearrange(F.relu(self.ce_temporal(sequences)), "b r t -> (b t) r 1 1")
    return self.ce_expand(temporal).sigmoid()


def reference_motion(self, x):
    """Action.motion_attention before the optimization: the full-resolution difference maps."""
    features = self.me_bn(self.me_squeeze(x))
    frames = rearrange(features, "(b t) r h w -> b t r h w", t=self.segments())
    transformed = rearrange(self.me_conv(features), "(b t) r h w -> b t r h w",
                            t=self.segments())
    motion = reduce(transformed[:, 1:] - frames[:, :-1], "b t r h w -> b t r", "mean")
    motion = F.pad(motion, (0, 0, 0, 1))
    return self.me_expand(rearrange(motion, "b t r -> (b t) r 1 1")).sigmoid()


def use_reference_action(model):
    """Run every ACTION module of `model` with the implementation before the optimization."""
    for module in model.modules():
        if isinstance(module, Action):
            module.forward = MethodType(reference_action, module)
            module.shift.forward = MethodType(reference_shift, module.shift)
    return model


def recognizer(arch, temporal):
    torch.manual_seed(0)
    return build({"model": {"backbone": {"name": "resnet_tsn", "arch": arch,
                                         "temporal": temporal},
                            "heads": {"gesture": {"name": "clip_classifier",
                                                  "num_classes": CLASSES}}}})


def training_step(model, batch):
    """Forward, losses and backward of one training batch (the optimizer step is not timed: it
    costs the same for any temporal module of the same parameter count)."""
    def step():
        losses = model.losses(model(batch), batch)
        model.zero_grad(set_to_none=True)
        losses["total"].backward()
    return step


def conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation,
                        transposed, _output_padding, _groups, output_mask, out_shape=None,
                        **kwargs):
    """A convolution's input gradient and its weight gradient each cost what its forward does.
    FlopCounterMode's own formula counts a grouped conv's weight gradient `groups` times over
    (torch 2.14), which made ACTION's depthwise shift look like 80 % more FLOPs than TSN."""
    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def count_flops(step):
    mapping = {torch.ops.aten.convolution_backward: conv_backward_flops}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        step()
    return counter.get_total_flops()


def top_ops(step, count=20):
    """torch.profiler's table of the `count` ops with the most self CPU time in one step."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=count)


def compile_works():
    """Whether torch.compile (inductor, which needs a C++ compiler on CPU) runs here."""
    try:
        torch.compile(lambda x: x.sin() + 1)(torch.ones(4))
        return True, ""
    except Exception as error:  # noqa: BLE001 (any failure means: not available here)
        return False, f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"


def action_vs_tsn(quick, rounds, use_compile):
    arch, size = ("resnet18", 112) if quick else ("resnet50", 224)
    log(f"[1, 5] {arch} + ACTION vs TSN, training step fwd+bwd, 8 frames x {size} px, batch 1")
    torch.manual_seed(0)
    batch = {"rgb": torch.randn(1, 8, 3, size, size), "label": torch.zeros(1, dtype=torch.long)}
    tsn, action = recognizer(arch, "none"), recognizer(arch, "action")
    with torch.no_grad():  # a shift away from its one-hot start, so that the check below bites
        for name, param in action.named_parameters():
            if name.endswith("shift.conv.weight"):
                param.add_(0.1 * torch.randn_like(param))
    before = use_reference_action(recognizer(arch, "action"))
    before.load_state_dict(action.state_dict())
    with torch.no_grad():  # the optimized module computes what the original did
        expected = before.eval()(batch)["logits"]
        torch.testing.assert_close(action.eval()(batch)["logits"], expected, rtol=0,
                                   atol=1e-5 * expected.abs().max())
    models = {"TSN": tsn.train(), "ACTION": action.train(), "ACTION before": before.train()}
    steps = {name: training_step(model, batch) for name, model in models.items()}
    flops = {name: count_flops(steps[name]) for name in ("TSN", "ACTION")}
    gemm = torch.randn(GEMM_SIZE, GEMM_SIZE), torch.randn(GEMM_SIZE, GEMM_SIZE)
    steps["GEMM"] = lambda: torch.mm(*gemm)
    gemm_flops = 2 * GEMM_SIZE ** 3

    notes = []
    if use_compile:
        works, reason = compile_works()
        if works:
            log("    compiling TSN and ACTION in the warm-up round (minutes on a small CPU)")
            for name in ("TSN", "ACTION"):
                steps[f"{name} compiled"] = training_step(torch.compile(models[name]), batch)
        else:
            notes.append(f"torch.compile not measured: unavailable here ({reason})")
    else:
        notes.append("torch.compile not measured (without --compile)")
    times = interleaved(steps, rounds, warmup=1 if quick else 2)
    profiles = {name: top_ops(steps[name]) for name in ("TSN", "ACTION", "ACTION before")}

    label = f"{arch} + ACTION vs TSN ({size} px)"
    rows = [time_ratio("1", label, times, "ACTION", "TSN", ("<=", 1.10)),
            time_ratio("1", f"{label}, before optimization", times, "ACTION before", "TSN",
                       note="ACTION as first implemented (this file's reference)"),
            time_ratio("1", "ACTION speed-up: before / after", times, "ACTION before",
                       "ACTION")]
    if "ACTION compiled" in times:
        rows += [time_ratio("1", f"{label}, both torch.compile'd", times, "ACTION compiled",
                            "TSN compiled", ("<=", 1.10)),
                 time_ratio("1", "ACTION speed-up: eager / torch.compile", times, "ACTION",
                            "ACTION compiled")]
    for name in ("TSN", "ACTION"):
        per_round = [(flops[name] / t) / (gemm_flops / g)
                     for t, g in zip(times[name], times["GEMM"], strict=True)]
        achieved = (flops[name] / median(times[name])) / (gemm_flops / median(times["GEMM"]))
        rows.append(row("5", f"{arch} {name} training step vs {GEMM_SIZE}^2 GEMM", "FLOP/s",
                        achieved, per_round, (">=", 0.5),
                        f"{flops[name] / 1e9:.1f} GFLOP per step (FlopCounterMode)"))
    details = {"medians_ms": {k: 1e3 * median(v) for k, v in times.items()},
               "gflop_per_step": {k: v / 1e9 for k, v in flops.items()},
               "gemm_gflops": gemm_flops / median(times["GEMM"]) / 1e9, "notes": notes,
               "profiles": profiles}
    return rows, details


# --- figure 2: SSA memory and time ------------------------------------------------------------

def peak_memory(fn):
    """Peak bytes of CPU tensors allocated by fn() and alive at once, from torch.profiler's
    record of every allocation and free by PyTorch's CPU allocator (tensors alive before fn are
    not counted). tracemalloc would not see these, and the process RSS mixes in the malloc
    arenas' reuse and the libraries' own buffers."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((event.start_ns(), event.nbytes())
                    for event in prof.profiler.kineto_results.events()
                    if event.name() == "[memory]"
                    and event.device_type() == torch.autograd.DeviceType.CPU)
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def ssa_paths(quick, rounds):
    frames, side, channels, batch = 8, 14 if quick else 28, 256, 2
    d = frames * side * side
    log(f"[2] SSA loss fwd+bwd, Gram identity vs direct d x d: d = {frames}x{side}x{side} = {d}, "
        f"C = {channels}, batch {batch}")
    torch.manual_seed(0)
    feat_m = torch.randn(batch, channels, frames, side, side, requires_grad=True)
    feat_n = torch.randn(batch, channels, frames, side, side)
    # network m has the higher classification loss, so rho > 0 and the loss has a gradient
    loss_m, loss_n = torch.full((batch,), 2.0), torch.ones(batch)

    def run(path):
        feat_m.grad = None
        value = ssa_loss(feat_m, feat_n, loss_m, loss_n, path=path)
        value.sum().backward()
        return value.detach(), feat_m.grad

    (gram_value, gram_grad), (corr_value, corr_grad) = run("gram"), run("corr")
    value_diff = ((gram_value - corr_value).abs() / corr_value.abs()).max().item()
    grad_diff = ((gram_grad - corr_grad).abs().max() / corr_grad.abs().max()).item()
    agree = value_diff < 1e-4 and grad_diff < 1e-3
    log(f"    paths {'agree' if agree else 'DISAGREE'}: values {gram_value.tolist()} (Gram) vs "
        f"{corr_value.tolist()} (d x d), max relative difference {value_diff:.1e}; gradients "
        f"differ by at most {grad_diff:.1e} of the largest")
    if not agree:
        raise AssertionError("the SSA loss's Gram and d x d paths disagree")

    def forward(path):
        with torch.no_grad():
            ssa_loss(feat_m, feat_n, loss_m, loss_n, path=path)

    memory = {path: peak_memory(lambda path=path: run(path)) for path in ("gram", "corr")}
    memory.update({f"{path} forward": peak_memory(lambda path=path: forward(path))
                   for path in ("gram", "corr")})
    log("    peak memory: " + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in memory.items()))
    times = interleaved({"gram": lambda: run("gram"), "corr": lambda: run("corr")}, rounds)
    label = f"SSA Gram identity vs d x d (d = {d}, C = {channels}, B = {batch})"
    rows = [row("2", label, "peak memory", memory["corr"] / memory["gram"], [], (">=", 20),
                "fwd+bwd: d x d peak / Gram peak (bytes of CPU tensors, torch.profiler)"),
            row("2", label, "peak memory", memory["corr forward"] / memory["gram forward"], [],
                None, "forward only, no grad"),
            time_ratio("2", label, times, "corr", "gram",
                       note="d x d time / Gram time (a speed-up)")]
    details = {"peak_mib": {k: v / 2**20 for k, v in memory.items()},
               "medians_ms": {k: 1e3 * median(v) for k, v in times.items()},
               "values_agree": agree, "max_relative_value_difference": value_diff,
               "max_gradient_difference_of_largest": grad_diff}
    return rows, details


# --- figure 3: HDF5 cache vs decoding ---------------------------------------------------------

def cache_vs_decode(quick, rounds, workdir):
    classes, frames = (3, 16) if quick else (6, 32)
    log(f"[3] FPHADataset clips/s, HDF5 cache vs JPEG/PNG decode: synthetic set of {classes} "
        f"classes x 2 subjects x 2 sequences x {frames} frames (320 px colour)")
    root = generate_fpha(workdir / "fpha", classes=classes, subjects=2, seqs=2, frames=frames,
                         size=320, workers=1, progress=False)
    # the test split samples deterministically: both datasets read the same frames
    settings = {"split": "test", "num_frames": 8, "size": 112, "modalities": ["rgb", "depth"]}
    decoded = FPHADataset(str(root), **settings)
    cached = FPHADataset(str(root), cache_dir=str(workdir / "cache"), **settings)  # builds it
    first, again = decoded[0], cached[0]
    assert all(torch.equal(first[key], again[key]) for key in ("rgb", "depth")), \
        "cached clip differs from the decoded one"

    def read_all(dataset):
        return lambda: [dataset[i] for i in range(len(dataset))]

    times = interleaved({"decode": read_all(decoded), "cache": read_all(cached)}, rounds)
    clips = len(decoded)
    rows = [time_ratio("3", f"FPHADataset HDF5 cache vs decode ({clips} clips of 8 frames, "
                       "rgb + depth, 112 px)", times, "decode", "cache", (">=", 5),
                       "clips/s cached / clips/s decoded")]
    details = {"clips_per_s": {k: clips / median(v) for k, v in times.items()}}
    return rows, details


# --- figure 4: deploy() vs the bare recognizer ------------------------------------------------

def deploy_vs_bare(rounds):
    log("[4] deploy() of ACTION + MSD vs the ACTION recognizer, inference, 8 frames x 112 px")
    torch.manual_seed(0)
    deployed = build(load_config(REPO / "configs/cpu_fpha_action_msd.yaml")).deploy()
    bare = build(load_config(REPO / "configs/cpu_fpha_action.yaml"))
    bare.load_state_dict(deployed.state_dict())  # strict: the same parameters, no more
    bare.eval()
    batch = {"rgb": torch.randn(1, 8, 3, 112, 112)}
    with torch.no_grad():
        assert torch.equal(deployed(batch)["logits"], bare(batch)["logits"])

    def infer(model):
        def run():
            with torch.no_grad():
                model(batch)
        return run

    times = interleaved({"deployed": infer(deployed), "bare": infer(bare)}, rounds, warmup=2)
    rows = [time_ratio("4", "deploy() of ResNet-18 ACTION + MSD vs bare ACTION recognizer",
                       times, "deployed", "bare", ("<=", 1.02), "identical logits")]
    return rows, {"medians_ms": {k: 1e3 * median(v) for k, v in times.items()}}


# --- figure 6: throughput users can plan with -------------------------------------------------

# each model family at its CPU size and at its paper size (configs/); the skeleton model has one
# size (the paper's gesture sub-network on 3D joints, which trains on a CPU as it is)
FAMILIES = {"TSN": ("cpu_fpha_tsn", "fpha_tsn"),
            "ACTION + MSD": ("cpu_fpha_action_msd", "egogesture_action_msd"),
            "MTUT (two I3D)": ("cpu_fpha_mtut", "nvgesture_mtut_i3d"),
            "collaborative": ("cpu_fpha_collab", "fpha_collab"),
            "collaborative gesture sub-network on 3D joints": ("fpha_skeleton", None)}


def stand_in_data(cfg, root, cache):
    """The config's data section on the synthetic FPHA-format set at `root`: the same clip
    shape, modalities and augmentation, so batches carry every target the heads need (labels,
    depth, joints) whatever dataset the config names."""
    data = cfg["data"]
    keep = ("num_frames", "size", "modalities", "augment", "joint_norm")
    return {"name": "fpha", "root": str(root), "cache": cache,
            **{key: data[key] for key in keep if key in data}}


def throughput_of(config, root, device, threads, rounds, batch_size=None):
    """Training and inference clips/s of `config`'s model at `batch_size` (default: the
    config's), its peak memory, and at the config's batch size on CPU the data loader's clips/s
    (the config's workers, and its HDF5 cache setting). Runs in a fresh process, so
    that ru_maxrss is this model's peak alone."""
    torch.set_num_threads(threads)
    os.environ["HANDMT_CACHE"] = str(root.parent / "cache-home")  # this run's clip cache
    cfg = load_config(REPO / "configs" / f"{config}.yaml")
    measure_loader = batch_size is None and device == "cpu"
    cache = measure_loader and cfg["data"].get("cache", False)
    dataset = build_dataset(stand_in_data(cfg, root, cache=cache), "train")
    batch_size = batch_size or cfg["train"]["batch_size"]
    # a full batch even where the stand-in set has fewer training clips: drawn with replacement
    sampler = RandomSampler(dataset, replacement=True, num_samples=batch_size,
                            generator=torch.Generator().manual_seed(0))
    batch = next(iter(DataLoader(dataset, batch_size=batch_size, sampler=sampler)))
    batch = {key: value.to(device) if torch.is_tensor(value) else value
             for key, value in batch.items()}
    torch.manual_seed(0)
    model = build(cfg).to(device)

    def synchronized(fn):
        def run():
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
        return run

    def infer():
        with torch.no_grad():
            model(batch)

    train_step = synchronized(training_step(model.train(), batch))
    times = interleaved({"train": train_step}, rounds)
    model.eval()
    times.update(interleaved({"inference": synchronized(infer)}, rounds))
    result = {"config": config, "device": device, "batch": batch_size,
              "clip": list(batch[cfg["data"]["modalities"][0]].shape[1:]),
              **{f"{kind} clips/s": batch_size / median(times[kind]) for kind in times}}
    result["peak MiB"] = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else
                          peak_rss_mib())
    if measure_loader:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True,
                            num_workers=cfg["train"].get("workers", 0))
        started, clips = time.perf_counter(), 0
        for _ in range(rounds):
            clips += sum(len(batch["label"]) for batch in loader)
        result["loader clips/s"] = clips / (time.perf_counter() - started)
    return result


def peak_rss_mib():
    """This process's peak resident set size (Linux's VmHWM; unlike ru_maxrss it starts anew at
    exec, so a spawned process does not report its parent's peak)."""
    with open("/proc/self/status") as file:
        kib = next(int(line.split()[1]) for line in file if line.startswith("VmHWM:"))
    return kib / 2**10


def throughput(quick, workdir, threads):
    """Figure 6 rows: each family at CPU size (the config's batch) and paper size (batch 1)."""
    log("[6] throughput: training and inference clips/s, peak memory, data loader clips/s")
    root = workdir / "fpha"  # figure 3's synthetic set
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    runs = [(family, config, size) for family, (cpu, paper) in FAMILIES.items()
            for config, size in ((cpu, "CPU"), (paper, "paper"))
            if config and (size == "CPU" or not quick)]
    results = []
    for device in devices:
        for family, config, size in runs:
            log(f"    {family}, {size} size ({config}.yaml) on {device}")
            # a fresh process per model: its own peak memory
            with ProcessPoolExecutor(1, multiprocessing.get_context("spawn")) as pool:
                result = pool.submit(throughput_of, config, root, device, threads,
                                     2 if quick or size == "paper" else 3,
                                     1 if size == "paper" else None).result()
            results.append({"family": family, "size": size, **result})
    return results


# --- report -----------------------------------------------------------------------------------

def machine_info():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as file:
            cpu = next(line.split(":", 1)[1].strip() for line in file
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "mkldnn": torch.backends.mkldnn.is_available(),
            "load_average_at_start": os.getloadavg()}


def markdown(results):
    machine = results["machine"]
    lines = ["# handmt performance ratios", "",
             f"`python benchmarks/perf.py{' --quick' if results['quick'] else ''}`: every "
             "time ratio is median(A) / median(B) of A and B run in alternation in one process; "
             "spread: quartiles of the per-round ratios A_i / B_i.", "",
             f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['torch_threads']} "
             f"torch threads, torch {machine['torch']}, python {machine['python']}; load average "
             f"{machine['load_average_at_start'][0]:.1f} at start, "
             f"{machine['load_average_at_end'][0]:.1f} at end; {results['seconds']:.0f} s.", ""]
    # this run's own threads make a load of about torch_threads
    load = max(machine["load_average_at_start"][0], machine["load_average_at_end"][0])
    if load > machine["torch_threads"] + 0.5:
        lines += ["The machine was shared with other jobs while this ran (the load averages "
                  "above): every time is slower than on an idle machine and noisier, and the "
                  "ratios hold only as far as both sides saw the same load.", ""]
    lines += ["| # | comparison | measure | ratio | spread | goal | met | note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        spread_text = "" if r["spread"] is None else f"{r['spread'][0]:.3g}–{r['spread'][1]:.3g}"
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        lines.append(f"| {r['figure']} | {r['name']} | {r['measure']} | {r['ratio']:.3g} | "
                     f"{spread_text} | {r['goal'] or ''} | {met} | {r['note']} |")
    notes = [note for details in results["details"].values() for note in details.get("notes", [])]
    lines += [""] + [f"- {note}" for note in notes]
    if results["throughput"]:
        lines += ["", "## 6. Throughput (clips/s; batch 1 at paper size, the config's batch at CPU "
                  "size)", "",
                  "Data loader: the config's batch size, workers and cache setting on the "
                  "synthetic FPHA-format set of figure 3 (image configs: the HDF5 cache; "
                  "skeletons are held in memory); it limits training where its clips/s is below "
                  "the training step's. Peak memory: the process's peak RSS (CPU), "
                  "torch.cuda.max_memory_allocated (GPU).", "",
                  "| family | size | config | device | clip (T, C, H, W; joints: T, J, 3) | "
                  "batch | train | inference | peak MiB | data loader | limited by |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in results["throughput"]:
            loader = r.get("loader clips/s")
            limit = "" if loader is None else (
                "data loader" if loader < r["train clips/s"] else "model")
            lines.append(f"| {r['family']} | {r['size']} | {r['config']}.yaml | {r['device']} | "
                         f"{' x '.join(map(str, r['clip']))} | {r['batch']} | "
                         f"{r['train clips/s']:.3g} | {r['inference clips/s']:.3g} | "
                         f"{r['peak MiB']:.0f} | {'' if loader is None else f'{loader:.3g}'} | "
                         f"{limit} |")
    lines += ["", "Top ops by self CPU time of one training step (TSN, ACTION, ACTION before "
              "its optimizations): profile_*.txt next to this file."]
    lines += [
        "", "Measurements behind the ratios (medians):", "", "```",
        json.dumps(results["details"], indent=1), "```", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--out", type=Path, help="default benchmarks/results/perf[-quick]")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                        help="also time torch.compile'd models (minutes of compiling)")
    args = parser.parse_args(argv)
    out = args.out or REPO / "benchmarks/results" / ("perf-quick" if args.quick else "perf")
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    results = {"quick": args.quick, "machine": machine_info(), "rows": [], "details": {}}
    load, cores = results["machine"]["load_average_at_start"][0], os.cpu_count()
    if load > 0.5 * cores:
        # other processes preempt torch's threads, and every multi-threaded op then waits for
        # the preempted one: small ops slow down far more than large ones, so ratios move too
        log(f"warning: load average {load:.1f} on {cores} cores; times will be noisy "
            "(--threads 1 suffers least)")
    with tempfile.TemporaryDirectory(prefix="handmt-perf-") as workdir:
        figures = {
            "action_vs_tsn": lambda: action_vs_tsn(args.quick, 3 if args.quick else 10,
                                                   args.compile),
            "ssa": lambda: ssa_paths(args.quick, 3 if args.quick else 5),
            "cache": lambda: cache_vs_decode(args.quick, 3 if args.quick else 5, Path(workdir)),
            "deploy": lambda: deploy_vs_bare(5 if args.quick else 20)}
        for key, figure in figures.items():
            figure_started = time.time()
            rows, details = figure()
            results["rows"] += rows
            results["details"][key] = details
            log(f"    ({time.time() - figure_started:.0f} s)")
        figure_started = time.time()
        results["throughput"] = throughput(args.quick, Path(workdir), torch.get_num_threads())
        log(f"    ({time.time() - figure_started:.0f} s)")
    profiles = results["details"]["action_vs_tsn"].pop("profiles")
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["seconds"] = time.time() - started
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    for name, table in profiles.items():
        (out / f"profile_{name.lower().replace(' ', '_')}.txt").write_text(table + "\n")
    table = markdown(results)
    (out / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
