"""The `handmt` command: synth | train | eval | export.

    handmt synth fpha --out DIR [--classes 45 --subjects 6 --seqs 2 --frames 32 --size 320 --seed 0]
    handmt train CONFIG [--out DIR] [--resume] [key=value ...]
    handmt eval CONFIG CHECKPOINT [key=value ...]
    handmt export CONFIG CHECKPOINT [key=value ...] [--format onnx|torchscript] [--modality M]
                  [--out FILE]
"""

import argparse
import json
import sys
from pathlib import Path

from .config import ConfigError, load_config


def synth(args):
    from .data.synthetic import generate_fpha
    out = generate_fpha(args.out, classes=args.classes, subjects=args.subjects, seqs=args.seqs,
                        frames=args.frames, size=args.size, seed=args.seed)
    print(f"wrote {out}")


def train(args):
    from .engine.trainer import train as run_training
    cfg = load_config(args.config, args.overrides)
    out = args.out or Path("runs") / Path(args.config).stem
    record = run_training(cfg, out, resume=args.resume)
    print(json.dumps(record))


def evaluate(args):
    import torch

    from .data import build_dataset
    from .engine import eval_options
    from .engine.checkpoint import load_checkpoint, load_model_state
    from .engine.evaluate import evaluate as run_evaluation
    from .models import build
    cfg = load_config(args.config, args.overrides)
    model = build(cfg)
    load_model_state(model, load_checkpoint(args.checkpoint), args.checkpoint)
    opts = eval_options(cfg)
    dataset = build_dataset(cfg["data"], "test", clips=opts.clips, crops=opts.crops)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    metrics = run_evaluation(model.to(device), dataset, opts.batch_size, device=device)
    pose = {k: v for k, v in metrics.get("pose", {}).items() if k not in ("thresholds", "pck")}
    print(json.dumps({"top1": metrics["top1"], "videos": metrics["videos"],
                      **({"pose": pose} if pose else {})}))


def export(args):
    import torch

    from .engine.checkpoint import load_checkpoint, load_model_state
    from .export import export as run_export
    from .models import build
    from .models.backbones import MODALITY_CHANNELS
    cfg = load_config(args.config, args.overrides)
    model = build(cfg)
    load_model_state(model, load_checkpoint(args.checkpoint), args.checkpoint)
    modality = args.modality or cfg["model"]["backbone"].get("modality", "rgb")
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


def parser():
    p = argparse.ArgumentParser(prog="handmt", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="generate a synthetic dataset in a published layout")
    s.add_argument("format", choices=["fpha"])
    s.add_argument("--out", required=True, help="folder to write (must not exist)")
    s.add_argument("--classes", type=int, default=45)
    s.add_argument("--subjects", type=int, default=6)
    s.add_argument("--seqs", type=int, default=2, help="sequences per subject and class")
    s.add_argument("--frames", type=int, default=32)
    s.add_argument("--size", type=int, default=320, help="colour image width in pixels")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(run=synth)

    t = sub.add_parser("train", help="train the model of a config")
    t.add_argument("config")
    t.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. train.epochs=3")
    t.add_argument("--out", help="run folder (default runs/<config name>)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
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
                   help="input clip modality (default: the config's backbone modality)")
    x.add_argument("--out", help="file to write (default: the checkpoint's path with .onnx or "
                   ".torchscript.pt)")
    x.set_defaults(run=export)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"handmt {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
