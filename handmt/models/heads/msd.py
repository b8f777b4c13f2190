"""The Multi-Scale Decoder (MSD paper, sections III-C to III-E, Fig. 3; docs/design.md, "MSD").

Two removable decoders regress depth frames from the RGB recognizer's features, so that the
backbone learns where the hand is; `auxiliary = True`, so `HandModel.deploy()` drops them and the
inference graph is exactly the recognizer.
- local decoder: the stem after max-pool ('stem', 64 x 56 x 56 for a 224 input) -> 4x4 stride-2
  transposed convs 64 -> 32 -> 1 -> full input size (1 x 224 x 224); loss weight 1;
- global decoder: 'res5' (2048 x 7 x 7) -> 4x4 stride-2 transposed convs 2048 -> 256 -> 64 -> 1
  -> a quarter of the input size (1 x 56 x 56); loss weight 0.01.
Each transposed conv doubles the size; BatchNorm + ReLU sit between them (the paper does not say;
the usual decoder block). Hidden widths are arguments (defaults above; four global widths decode
res5 to full size, Table VII's five-layer variant); input channels come from `feature_info`, the
input size from the stride-4 'stem'. Outputs are linear (no sigmoid): the paper regresses the
depth frames directly with MSE (eq. 4-5) and names no output activation.

Parameters with ResNet-50: global 8,652,417 (2048*256*16 + 256*64*16 + 64*16 + 1 output bias,
BatchNorms 2*(256 + 64)), local 33,345 (64*32*16 + 32*16 + 1, BatchNorm 2*32): 8,685,762 in all.
The paper says 8.5M (section IV-C) but gives no hidden widths; with docs/design.md's 256 and 64 the
first global layer (2048 x 256 x 4 x 4) alone holds 8.39M and the total is 2% above that figure.
"""

from typing import Literal

from einops import rearrange
from torch import nn

from ...errors import ConfigError
from ...losses import depth_mse
from .base import HEADS, feature_spec

FEATURES = {"local": "stem", "global": "res5"}  # the paper's Res1 and Resblock5


def upsampler(in_channels, widths):
    """4x4 stride-2 transposed convs through `widths` to one channel, each doubling the size."""
    layers = []
    for width in widths:
        layers += [nn.ConvTranspose2d(in_channels, width, 4, stride=2, padding=1, bias=False),
                   nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        in_channels = width
    layers.append(nn.ConvTranspose2d(in_channels, 1, 4, stride=2, padding=1))
    return nn.Sequential(*layers)


@HEADS.register("msd")
class MSDDecoder(nn.Module):
    """Outputs `depth_local` (B, T, 1, H, W) and `depth_global` (B, T, 1, H/4, W/4) and their
    weighted MSE losses under the same names against `batch[target]` (Table VI's local-only and
    global-only ablations: `use_global: false`, `use_local: false`).

    `binarize_threshold` regresses Table VIII's binarised depth instead; `depth_encoding` says
    what the depth values are, so that the binarised target marks the near hand
    (`losses.depth.binarize`): "metric" (FPHA and the synthetic set: z / max_depth_mm, 0 = no
    reading) or "frames" (the 8-bit frames of EgoGesture, NVGesture and IsoGD as distributed,
    thresholded as the paper does).

    `predict` gives the depth of the local decoder (full input size), else of the global one
    (a quarter): `Prediction.depth` (B, T, h, w), what `handmt predict` draws."""

    auxiliary = True

    @staticmethod
    def requires(args):  # the data it reads (heads/base.py)
        return {args["target"]}

    def __init__(self, feature_info, use_local: bool = True, use_global: bool = True,
                 local_weight: float = 1.0, global_weight: float = 0.01,
                 binarize_threshold: float | None = None,
                 depth_encoding: Literal["metric", "frames"] = "metric", target: str = "depth",
                 local_widths: tuple[int, ...] = (32,),
                 global_widths: tuple[int, ...] = (256, 64)):
        super().__init__()
        if not (use_local or use_global):
            raise ConfigError("use_local", "the MSD needs the local or the global decoder")
        settings = {"local": (use_local, local_widths, local_weight),
                    "global": (use_global, global_widths, global_weight)}
        self.decoders, self.weights, self.output_strides = nn.ModuleDict(), {}, {}
        for scale, (used, widths, weight) in settings.items():
            if not used:
                continue
            spec = feature_spec(feature_info, FEATURES[scale])
            if spec.layout != "b t c h w":
                raise ConfigError("name", f"the MSD decodes per-frame features ('b t c h w'), "
                                  f"the backbone's {FEATURES[scale]!r} is {spec.layout!r}")
            upsampling = 2 ** (len(widths) + 1)
            if spec.stride % upsampling:
                raise ConfigError(f"{scale}_widths", f"{len(widths) + 1} transposed convs "
                                  f"upsample x{upsampling}, past the input size from "
                                  f"{FEATURES[scale]!r} (stride {spec.stride})")
            self.decoders[scale] = upsampler(spec.channels, widths)
            self.weights[scale] = weight
            self.output_strides[scale] = spec.stride // upsampling
        self.stem_stride = feature_spec(feature_info, "stem").stride
        self.binarize_threshold, self.depth_encoding = binarize_threshold, depth_encoding
        self.target = target

    def forward(self, features, batch):
        height, width = (size * self.stem_stride for size in features["stem"].shape[-2:])
        outputs = {}
        for scale, decoder in self.decoders.items():
            x = features[FEATURES[scale]]
            maps = decoder(rearrange(x, "b t c h w -> (b t) c h w"))
            # Stride-32 maps round up (a 112 input gives 4 x 4, decoded to 32 x 32 for 28 x 28):
            # the overhang is padding on the bottom/right, so crop it.
            stride = self.output_strides[scale]
            maps = maps[..., :height // stride, :width // stride]
            outputs[f"depth_{scale}"] = rearrange(maps, "(b t) 1 h w -> b t 1 h w", b=x.shape[0])
        return outputs

    def loss(self, outputs, batch):
        if self.target not in batch:
            raise KeyError(f"the MSD head regresses batch[{self.target!r}], which this batch "
                           f"lacks: add {self.target} to data.modalities")
        return {f"depth_{scale}": weight * depth_mse(outputs[f"depth_{scale}"],
                                                     batch[self.target], self.binarize_threshold,
                                                     self.depth_encoding)
                for scale, weight in self.weights.items()}

    def predict(self, outputs, batch):
        scale = "local" if "local" in self.decoders else "global"
        return {"depth": outputs[f"depth_{scale}"][:, :, 0]}
