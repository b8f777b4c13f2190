"""A small temporal convolutional network: the gesture classifier on the level-3 hand features of
the multi-scale relation module (collaborative paper, section 3.3 and Fig. 3: "recognize gesture
class y at the Level-3 using TCN"; docs/design.md, "Collaborative pose and gesture").

The paper gives no architecture. Here: a 1x1 conv to `hidden` channels, then `layers` residual
blocks x + ReLU(BN(Conv1d_k(x))) with "same" padding (the clip keeps its length, the residual path
keeps the input), then the mean over time, dropout and a linear classifier.
"""

from einops import rearrange, reduce
from torch import nn


class TCN(nn.Module):
    """Hand features (B, T, C) -> class logits (B, num_classes)."""

    def __init__(self, in_channels, num_classes, hidden=128, layers=2, kernel_size=3,
                 dropout=0.5):
        super().__init__()
        self.project = nn.Conv1d(in_channels, hidden, kernel_size=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv1d(hidden, hidden, kernel_size, padding="same", bias=False),
                          nn.BatchNorm1d(hidden), nn.ReLU(inplace=True))
            for _ in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = self.project(rearrange(x, "b t c -> b c t"))
        for block in self.blocks:
            x = x + block(x)
        return self.fc(self.dropout(reduce(x, "b c t -> b c", "mean")))
