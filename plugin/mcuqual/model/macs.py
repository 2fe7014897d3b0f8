"""Multiply-accumulate counts from a Keras model's layers, so cards never carry hand sums."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


def layer_macs(layer: "keras.layers.Layer") -> int:
    """MACs of one inference through `layer` (0 for layers without multiplies by weights)."""
    kind = type(layer).__name__
    if kind not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense"):
        return 0
    out_shape = layer.output.shape
    in_channels = int(layer.input.shape[-1])
    if kind == "Dense":
        positions = math.prod(int(d) for d in out_shape[1:-1]) if len(out_shape) > 2 else 1
        return positions * in_channels * int(out_shape[-1])
    out_pixels = int(out_shape[1]) * int(out_shape[2])
    kh, kw = layer.kernel_size
    if kind == "Conv2D":
        groups = getattr(layer, "groups", 1)
        return out_pixels * kh * kw * (in_channels // groups) * layer.filters
    multiplier = layer.depth_multiplier
    depthwise = out_pixels * kh * kw * in_channels * multiplier
    if kind == "DepthwiseConv2D":
        return depthwise
    return depthwise + out_pixels * in_channels * multiplier * layer.filters


def model_macs(model: "keras.Model") -> int:
    return sum(layer_macs(layer) for layer in model.layers)
