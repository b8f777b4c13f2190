"""The pseudo-labels FixMatch would draw from a trained run: its model's predictions on the
training view (train mode, as `train.semi` runs it) of the training sequences whose gesture
label the run withheld, against their true labels, per confidence threshold and per number kept
for each class.

    python benchmarks/pseudo_labels.py RUN_DIR [--out FILE]

RUN_DIR: a run folder (config.yaml and checkpoint.pt), e.g. a row of
`python benchmarks/run.py fpha-skeleton --tables weak`. Prints a markdown table (and writes it to
--out): the fraction of withheld sequences a threshold (or a class-balanced selection) keeps,
how many of those are right and how many classes they cover.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handmt.config import load_config  # noqa: E402
from handmt.data import build_dataset  # noqa: E402
from handmt.engine.checkpoint import load_trained  # noqa: E402
from handmt.engine.trainer import CHECKPOINT, CONFIG  # noqa: E402

THRESHOLDS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)
PER_CLASS = (1, 2, 4)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    cfg = load_config(args.run / CONFIG)
    model = load_trained(cfg, args.run / CHECKPOINT).train()  # dropout on, as in training
    truth = build_dataset({**cfg["data"], "withhold": None}, "train")
    withheld = np.flatnonzero(build_dataset(cfg["data"], "train").labels < 0)
    torch.manual_seed(0)  # the training view's random augmentation
    with torch.no_grad():
        batch = {"joints": torch.stack([truth[i]["joints"] for i in withheld])}
        confidence, pseudo = model.predict(batch).logits.float().softmax(-1).max(-1)
    right = pseudo.numpy() == truth.labels[withheld]
    lines = [f"Pseudo-labels of {args.run} on its {len(withheld)} withheld training sequences "
             "(training view, train mode):", "",
             "| threshold | kept (%) | right among kept (%) | classes among kept |",
             "|---|---|---|---|"]
    for threshold in THRESHOLDS:
        kept = (confidence >= threshold).numpy()
        lines.append(f"| {threshold} | {100 * kept.mean():.1f} | "
                     f"{100 * right[kept].mean() if kept.any() else 0:.1f} | "
                     f"{len(set(pseudo.numpy()[kept]))} |")
    # Class-balanced selection (as in class-balanced self-training, Zou et al., ECCV 2018): per
    # class, the k most confident sequences predicted as it, so that no class is left out.
    lines += ["", "Class-balanced: per class, the k most confident sequences predicted as it:", "",
              "| k per class | kept (%) | right among kept (%) | classes among kept |",
              "|---|---|---|---|"]
    for k in PER_CLASS:
        kept = np.zeros(len(withheld), dtype=bool)
        for c in np.unique(pseudo.numpy()):
            members = np.flatnonzero(pseudo.numpy() == c)
            kept[members[np.argsort(-confidence.numpy()[members])[:k]]] = True
        lines.append(f"| {k} | {100 * kept.mean():.1f} | {100 * right[kept].mean():.1f} | "
                     f"{len(set(pseudo.numpy()[kept]))} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
