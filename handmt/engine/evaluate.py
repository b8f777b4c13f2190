"""Video-level evaluation with multi-clip, multi-crop testing.

The test dataset enumerates every view (clip x crop) of every video and tags it with `video`;
softmax probabilities are averaged over a video's views before the top-1 decision
(TSN's and the MSD paper's protocol)."""

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..metrics import confusion_matrix, top1, video_predictions


def to_device(batch, device):
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
            for k, v in batch.items()}


@torch.no_grad()
def predict(model, dataset, batch_size=8, workers=0, progress=True, device="cpu"):
    """Logits, labels and video ids of every view of `dataset`, in dataset order."""
    model.eval()
    # A private generator: evaluating must not advance the training RNG (resume determinism).
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    logits, labels, videos = [], [], []
    for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        outputs = model(to_device(batch, device))
        logits.append(outputs["logits"].float().cpu())
        labels.append(batch["label"])
        videos.append(batch["video"])
    return {"logits": torch.cat(logits), "label": torch.cat(labels), "video": torch.cat(videos)}


def evaluate(model, dataset, batch_size=8, workers=0, progress=True, device="cpu"):
    """Top-1 over videos after averaging softmax probabilities over their views, and the
    confusion matrix over videos (rows: true class)."""
    views = predict(model, dataset, batch_size, workers, progress, device)
    videos, probs, labels = video_predictions(views["logits"], views["label"], views["video"])
    return {"top1": top1(probs, labels), "videos": len(videos),
            "confusion": confusion_matrix(probs.argmax(1), labels, probs.shape[1])}
