"""The `handmt` command: synth | train | eval | export | predict.

    handmt synth fpha --out DIR [--classes 45 --subjects 6 --seqs 2 --frames 32 --size 320 --seed 0
                                 --background clutter|plain]
    handmt synth fpha --video FILE.mp4 [--label K] [same options]   one sequence as a video
    handmt train CONFIG [--out DIR] [--resume [--force] | --overwrite] [key=value ...]
    torchrun --nproc_per_node N -m handmt.cli train ...   the same on N processes (DDP)
    handmt eval CONFIG CHECKPOINT [key=value ...]
    handmt export CONFIG CHECKPOINT [key=value ...] [--format onnx|torchscript] [--modality M]
                  [--out FILE]
    handmt predict CHECKPOINT [key=value ...] --video IN.mp4 --out OUT.mp4 [--json OUT.json]
                   [--window T] [--stride S] [--modality M]

Overrides come before the options (`argparse` reads positionals first).
"""

import argparse
import json
import sys
from pathlib import Path

from .config import ConfigError, load_config
from .data.synthetic.render import BACKGROUNDS


def synth(args):
    from .data.synthetic import generate_fpha, render_fpha, render_fpha_video
    if args.skeletons is not None:
        if args.out is None or args.video is not None:
            raise ValueError("--skeletons ROOT renders ROOT's sequences into --out DIR (and "
                             "takes no --video)")
        out = render_fpha(args.skeletons, args.out, max_frames=args.max_frames, size=args.size,
                          seed=args.seed, background=args.background, workers=args.workers)
        print(f"wrote {out}")
        return
    if args.out is None and args.video is None:
        raise ValueError("give --out DIR (a dataset), --video FILE (one sequence) or both")
    if args.out is not None:
        out = generate_fpha(args.out, classes=args.classes, subjects=args.subjects,
                            seqs=args.seqs, frames=args.frames, size=args.size, seed=args.seed,
                            background=args.background)
        print(f"wrote {out}")
    if args.video is not None:
        # sequence seqs + 1 of subject 1: the set does not hold it
        out = render_fpha_video(args.video, label=args.label, subject=1, seq=args.seqs + 1,
                                classes=args.classes, frames=args.frames, size=args.size,
                                seed=args.seed, background=args.background)
        print(f"wrote {out}")


def train(args):
    from .engine import distributed
    from .engine.trainer import train as run_training
    cfg = load_config(args.config, args.overrides)
    out = args.out or Path("runs") / Path(args.config).stem
    try:
        record = run_training(cfg, out, resume=args.resume, force=args.force,
                              overwrite=args.overwrite)
        if distributed.is_main():
            print(json.dumps(record))
    finally:
        distributed.cleanup()


def evaluate(args):
    import torch

    from .data import build_dataset
    from .engine import eval_options
    from .engine.checkpoint import load_trained
    from .engine.evaluate import evaluate as run_evaluation
    cfg = load_config(args.config, args.overrides)
    model = load_trained(cfg, args.checkpoint)
    opts = eval_options(cfg)
    dataset = build_dataset(cfg["data"], opts.split, clips=opts.clips,
                            crops=opts.crops, size=opts.size)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    metrics = run_evaluation(model.to(device), dataset, opts.batch_size, device=device)
    pose = {k: v for k, v in metrics.get("pose", {}).items() if k not in ("thresholds", "pck")}
    # top1 (absent for segmentation alone), a multimodal model's top1_{modality} and top1_fusion
    top1s = {k: v for k, v in metrics.items() if k == "top1" or k.startswith("top1_")}
    print(json.dumps({**top1s, "videos": metrics["videos"], **({"pose": pose} if pose else {}),
                      **({"segmentation": metrics["segmentation"]}
                         if "segmentation" in metrics else {})}))


def export(args):
    import torch

    from .engine.checkpoint import load_trained
    from .export import export as run_export
    from .models.backbones import MODALITY_CHANNELS
    cfg = load_config(args.config, args.overrides)
    model = load_trained(cfg, args.checkpoint)
    modality = args.modality or model.modalities[0]  # a multimodal model: its first network
    if modality not in MODALITY_CHANNELS:  # e.g. a skeleton model's joints
        raise ValueError(f"a model of {modality} cannot be exported: handmt export writes clip "
                         f"models ({', '.join(MODALITY_CHANNELS)})")
    data = cfg["data"]
    example = torch.randn(1, data.get("num_frames", 8), MODALITY_CHANNELS[modality],
                          data.get("size", 224), data.get("size", 224))
    suffix = ".onnx" if args.format == "onnx" else ".torchscript.pt"
    out = args.out or Path(args.checkpoint).with_suffix(suffix)
    try:
        path = run_export(model, out, format=args.format, example=example, modality=modality)
    except ImportError as err:
        raise ValueError(str(err)) from None
    print(f"wrote {path}")


def predict(args):
    from .predict import predict as run_prediction
    record = run_prediction(args.checkpoint, args.video, args.out, json_path=args.json,
                            window=args.window, stride=args.stride, overrides=args.overrides,
                            modality=args.modality)
    print(f"wrote {args.out}" + (f" and {args.json}" if args.json else "")
          + f": {len(record['windows'])} windows of {record['window']} frames")


def parser():
    p = argparse.ArgumentParser(prog="handmt", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="generate a synthetic dataset in a published layout")
    s.add_argument("format", choices=["fpha"])
    s.add_argument("--out", help="folder to write (must not exist)")
    s.add_argument("--classes", type=int, default=45)
    s.add_argument("--subjects", type=int, default=6)
    s.add_argument("--seqs", type=int, default=2, help="sequences per subject and class")
    s.add_argument("--frames", type=int, default=32)
    s.add_argument("--size", type=int, default=320, help="colour image width in pixels")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--background", choices=BACKGROUNDS, default="clutter",
                   help="a cluttered desk, or a plain wall (the hand is all there is to see)")
    s.add_argument("--video", help="also (or, without --out, only) write one sequence of class "
                   "--label as an MP4 file, a sequence the set does not hold (handmt predict's "
                   "input)")
    s.add_argument("--label", type=int, default=0, help="class of the --video sequence")
    s.add_argument("--skeletons", metavar="ROOT", help="render the real motion of an FPHA "
                   "annotation tree (its split file's sequences) into --out, instead of "
                   "synthetic motion")
    s.add_argument("--max-frames", type=int, help="with --skeletons: subsample longer sequences "
                   "evenly to this many frames")
    s.add_argument("--workers", type=int, default=2, help="rendering processes")
    s.set_defaults(run=synth)

    t = sub.add_parser("train", help="train the model of a config")
    t.add_argument("config")
    t.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. train.epochs=3")
    t.add_argument("--out", help="run folder (default runs/<config name>)")
    run = t.add_mutually_exclusive_group()
    run.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt, "
                     "trained with the same config and overrides")
    run.add_argument("--overwrite", action="store_true", help="replace the run in OUT (without "
                     "--resume or --overwrite a folder that holds a run is refused)")
    t.add_argument("--force", action="store_true", help="with --resume: continue although the "
                   "config differs from the checkpoint's (the differences are listed)")
    t.set_defaults(run=train)

    e = sub.add_parser("eval", help="multi-view video accuracy of a checkpoint")
    e.add_argument("config")
    e.add_argument("checkpoint")
    e.add_argument("overrides", nargs="*")
    e.set_defaults(run=evaluate)

    x = sub.add_parser("export", help="a checkpoint as an ONNX or TorchScript file, clip -> "
                       "logits, checked against PyTorch before it is written")
    x.add_argument("config")
    x.add_argument("checkpoint")
    x.add_argument("overrides", nargs="*")
    x.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    x.add_argument("--modality", choices=["rgb", "depth", "flow"],
                   help="input clip modality, for a multimodal (MTUT) model the network to "
                   "export (default: the config's backbone modality, or its first modality)")
    x.add_argument("--out", help="file to write (default: the checkpoint's path with .onnx or "
                   ".torchscript.pt)")
    x.set_defaults(run=export)

    r = sub.add_parser("predict", help="run a checkpoint over a video: the video with the "
                       "predicted class, pose and depth drawn on, and JSON")
    r.add_argument("checkpoint", help="written by handmt train (holds its config)")
    r.add_argument("overrides", nargs="*", help="dotlist overrides of the checkpoint's config")
    r.add_argument("--video", required=True, help="input video (any file OpenCV reads)")
    r.add_argument("--out", required=True, help="MP4 file to write")
    r.add_argument("--json", help="also write the per-window predictions to this JSON file")
    r.add_argument("--window", type=int, help="frames per clip (default: data.num_frames)")
    r.add_argument("--stride", type=int, help="frames between clip starts (default: window // 2)")
    r.add_argument("--modality", choices=["rgb", "depth"],
                   help="the video's modality: the network a multi-modal model runs (default: "
                   "rgb); a single network must read it")
    r.set_defaults(run=predict)
    return p


def main(argv=None):
    # overrides may also follow options (`train CONFIG --out DIR train.epochs=3`), which a
    # positional list after an option cannot take in one argparse pass
    p = parser()
    args, extra = p.parse_known_args(argv)
    if extra and (not hasattr(args, "overrides") or any(a.startswith("-") for a in extra)):
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides += extra
    try:
        args.run(args)
    except (ConfigError, OSError, ValueError) as err:  # OSError: unreadable files, full disk
        print(f"handmt {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
