"""Masked classification loss: samples with `label == -1` are unlabelled (weak supervision)."""

import torch.nn.functional as F


def masked_mean(values, valid):
    """Mean of `values` over the entries where `valid` is true; 0 (with zero gradient) if none.

    Masked entries are multiplied by zero, so a NaN or Inf there would still leak: callers feed
    finite placeholders for missing labels (e.g. class 0 for label -1)."""
    valid = valid.to(values.dtype)
    return (values * valid).sum() / valid.sum().clamp(min=1.0)


def masked_cross_entropy(logits, labels, label_smoothing=0.0):
    """Per-sample cross-entropy averaged over labelled samples (`labels >= 0`)."""
    valid = labels >= 0
    per_sample = F.cross_entropy(logits, labels.clamp(min=0), reduction="none",
                                 label_smoothing=label_smoothing)
    return masked_mean(per_sample, valid)
