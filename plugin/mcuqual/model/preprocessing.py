"""A model's input preprocessing, as its owner declares it, and the int8 input it implies.

The suite cannot know how someone else's model was trained: a published CIFAR-10
ResNet-8 takes the raw pixel, the zoo's models take pixel / 255, others standardize
per channel or expect BGR. So the float preprocessing is *declared* (in the model
card's `[input]` table or with `--preprocessing`), parsed as data, never evaluated,
and the int8 input follows from it and the `.tflite`'s own input scale and zero
point:

    q = clip(round(f(pixel) / scale) + zero_point, -128, 127)

`check_inputs` and `check_predictions` catch a declaration that cannot be right
(inputs that collapse onto a few int8 codes or saturate; one class taking most
predictions) before any accuracy is reported.

Accepted forms (spaces and case do not matter):

    preprocessing = "pixel / 255"            # float in [0, 1]
    preprocessing = "pixel"                  # the raw 0-255 value
    preprocessing = "pixel / 127.5 - 1"      # float in [-1, 1]
    preprocessing = "(pixel - mean) / std"   # mean, std in pixel units (0-255)
    preprocessing = "(pixel / 255 - mean) / std"   # mean, std on the 0-1 scale
    mean = [125.3, 123.0, 113.9]             # one value, or one per channel, in input order
    std = [63.0, 62.1, 66.7]
    channel_order = "RGB"                    # or "BGR"; default RGB
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from mcuqual.common.errors import McuqualError

CHANNEL_ORDERS = ("RGB", "BGR")

# canonical spelling (lower case, no spaces) -> kind
_FORMS = {
    "pixel/255": "unit",
    "pixel": "raw",
    "pixel/127.5-1": "symmetric",
    "(pixel-mean)/std": "standardize",
    "(pixel/255-mean)/std": "standardize_unit",
}
DECLARATION_HELP = (
    "declare it in the model card's [input] table, e.g. preprocessing = \"pixel / 255\" "
    "(float in [0, 1]), \"pixel\" (raw 0-255), \"pixel / 127.5 - 1\", \"(pixel - mean) / std\" "
    "with mean = [...] and std = [...] in pixel units, or \"(pixel / 255 - mean) / std\" with "
    "mean and std on the 0-1 scale; channel_order = \"RGB\" or \"BGR\" (default RGB)")

# A declaration whose int8 inputs use fewer codes than this, or saturate more than this
# share of pixels, cannot be the one the model was quantized with (CIFAR-10 images cover
# nearly all 256 pixel values; any sane input scale maps them onto well over 16 codes).
MIN_DISTINCT_CODES = 16
MAX_SATURATED_SHARE = 0.25
# CIFAR-10's test set has 1,000 images per class: a model putting half of them in one
# class is not a model with a poor accuracy figure but a model fed the wrong inputs.
MAX_CLASS_SHARE = 0.5


class PreprocessingError(McuqualError):
    """The declared preprocessing is missing, malformed, or implausible for this model."""


@dataclass(frozen=True)
class Preprocessing:
    """How a float model input follows from an 8-bit RGB pixel (declared, not assumed)."""

    form: str                          # a key of _FORMS, canonical (no spaces)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    channel_order: str = "RGB"

    def describe(self) -> str:
        text = {"unit": "pixel / 255", "raw": "pixel", "symmetric": "pixel / 127.5 - 1",
                "standardize": "(pixel - mean) / std",
                "standardize_unit": "(pixel / 255 - mean) / std"}[_FORMS[self.form]]
        if _FORMS[self.form].startswith("standardize"):
            text += f", mean {list(self.mean)}, std {list(self.std)}"
        return f"{text}, {self.channel_order}"

    def to_float(self, images: np.ndarray, dtype: type = np.float64) -> np.ndarray:
        """uint8 RGB pixels [N, H, W, 3] -> the float input the model was trained on,
        computed in `dtype` (float32 where a float model is fed, as it was in training)."""
        pixels = np.asarray(images).astype(dtype)
        if self.channel_order == "BGR":
            pixels = pixels[..., ::-1]
        kind = _FORMS[self.form]
        mean = np.asarray(self.mean, dtype=dtype)       # in the model's channel order
        std = np.asarray(self.std, dtype=dtype)
        if kind == "unit":
            return pixels / dtype(255.0)
        if kind == "raw":
            return pixels
        if kind == "symmetric":
            return pixels / dtype(127.5) - dtype(1.0)
        if kind == "standardize":
            return (pixels - mean) / std
        return (pixels / dtype(255.0) - mean) / std

    def quantize(self, images: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
        """uint8 RGB pixels -> int8 model input, with the model's input scale and zero point."""
        q = np.round(self.to_float(images) / scale) + zero_point
        return np.clip(q, -128, 127).astype(np.int8)


# What the zoo's training and the suite's quantization of a float model apply.
PIXEL_OVER_255 = Preprocessing("pixel/255")


def _triple(value: Any, key: str, where: str) -> tuple[float, float, float]:
    values = value if isinstance(value, (list, tuple)) else [value]
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError):
        raise PreprocessingError(f"{where}: {key} must be a number or a list of 3 numbers, "
                                 f"not {value!r}.") from None
    if len(floats) == 1:
        floats *= 3
    if len(floats) != 3:
        raise PreprocessingError(f"{where}: {key} needs 1 or 3 values (one per channel), "
                                 f"got {len(floats)}.")
    return (floats[0], floats[1], floats[2])


def parse(text: Any, mean: Any = None, std: Any = None, channel_order: Any = None,
          where: str = "model card") -> Preprocessing:
    """A declaration -> Preprocessing, or a PreprocessingError that says how to write it."""
    if text is None:
        raise PreprocessingError(f"{where}: the input preprocessing is not declared; "
                                 f"{DECLARATION_HELP}.")
    if not isinstance(text, str):
        raise PreprocessingError(f"{where}: preprocessing must be a string, not {text!r}.")
    canonical = re.sub(r"\s+", "", text.lower())
    if canonical not in _FORMS:
        raise PreprocessingError(f"{where}: unknown preprocessing {text!r}; {DECLARATION_HELP}.")
    order = "RGB" if channel_order is None else str(channel_order).upper()
    if order not in CHANNEL_ORDERS:
        raise PreprocessingError(f"{where}: channel_order {channel_order!r} is neither RGB nor BGR.")
    kind = _FORMS[canonical]
    if not kind.startswith("standardize"):
        if mean is not None or std is not None:
            raise PreprocessingError(f"{where}: mean/std are given but {text!r} does not use "
                                     "them; write \"(pixel - mean) / std\".")
        return Preprocessing(canonical, channel_order=order)
    if mean is None or std is None:
        raise PreprocessingError(f"{where}: {text!r} needs both mean and std.")
    m, s = _triple(mean, "mean", where), _triple(std, "std", where)
    if any(v <= 0 for v in s):
        raise PreprocessingError(f"{where}: std must be positive, got {list(s)}.")
    if kind == "standardize":
        if not all(0 <= v <= 255 for v in m):
            raise PreprocessingError(f"{where}: mean {list(m)} lies outside the pixel range "
                                     "0-255.")
        if all(v <= 1 for v in m) and all(v <= 1 for v in s):
            raise PreprocessingError(
                f"{where}: mean {list(m)} and std {list(s)} look like values on the 0-1 scale, "
                "but \"(pixel - mean) / std\" takes them in pixel units (0-255); write "
                "\"(pixel / 255 - mean) / std\" for the 0-1 scale.")
    elif not all(0 <= v <= 1 for v in m):
        raise PreprocessingError(f"{where}: mean {list(m)} lies outside the 0-1 scale of "
                                 "\"(pixel / 255 - mean) / std\"; for pixel units write "
                                 "\"(pixel - mean) / std\".")
    return Preprocessing(canonical, m, s, order)


def from_table(table: dict[str, Any], where: str) -> Preprocessing:
    """The `[input]` table of a model card."""
    return parse(table.get("preprocessing"), table.get("mean"), table.get("std"),
                 table.get("channel_order"), where)


def from_option(text: str, where: str = "--preprocessing") -> Preprocessing:
    """The one-off command-line form: the expression, then optional `; key=value` parts,
    e.g. "(pixel - mean) / std; mean=125.3,123.0,113.9; std=63.0,62.1,66.7; order=BGR"."""
    expression, *parts = [p.strip() for p in text.split(";")]
    fields: dict[str, Any] = {}
    for part in filter(None, parts):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("mean", "std", "order", "channel_order"):
            raise PreprocessingError(f"{where}: cannot read {part!r}; expected mean=..., std=... "
                                     "or order=RGB|BGR.")
        fields["channel_order" if key == "order" else key] = (
            value.strip() if key in ("order", "channel_order") else value.split(","))
    return parse(expression, fields.get("mean"), fields.get("std"), fields.get("channel_order"),
                 where)


@dataclass(frozen=True)
class InputStatistics:
    distinct_codes: int
    saturated_share: float
    low_code: int
    high_code: int


def input_statistics(inputs: np.ndarray) -> InputStatistics:
    flat = np.asarray(inputs, dtype=np.int8).reshape(-1)
    counts = np.bincount(flat.astype(np.int16) + 128, minlength=256)
    saturated = (counts[0] + counts[255]) / max(1, flat.size)
    used = np.flatnonzero(counts)
    return InputStatistics(int(used.size), float(saturated), int(used[0]) - 128 if used.size else 0,
                           int(used[-1]) - 128 if used.size else 0)


def check_inputs(inputs: np.ndarray, declared: Preprocessing, scale: float, zero_point: int,
                 label: str) -> InputStatistics:
    """Raise PreprocessingError when the int8 inputs cannot come from the right declaration."""
    stats = input_statistics(inputs)
    if stats.distinct_codes < MIN_DISTINCT_CODES or stats.saturated_share > MAX_SATURATED_SHARE:
        raise PreprocessingError(
            f"model {label}: the declared preprocessing ({declared.describe()}) with the model's "
            f"input scale {scale:g} and zero point {zero_point} maps the test images onto "
            f"{stats.distinct_codes} int8 codes ({stats.low_code}..{stats.high_code}), "
            f"{stats.saturated_share:.0%} of them saturated at -128/127: the preprocessing is "
            f"probably wrong. {_hint(scale, zero_point)}Then {DECLARATION_HELP}.")
    return stats


def check_predictions(predictions: np.ndarray, classes: Sequence[str], declared: Preprocessing,
                      label: str) -> None:
    """Raise PreprocessingError when one class takes most predictions."""
    predictions = np.asarray(predictions)
    if predictions.size < 100:
        return                                     # too few to tell a collapse from chance
    counts = np.bincount(predictions.astype(np.int64), minlength=len(classes))
    top = int(counts.argmax())
    share = counts[top] / predictions.size
    if share > MAX_CLASS_SHARE:
        raise PreprocessingError(
            f"model {label}: {share:.0%} of the {predictions.size} test images are predicted as "
            f"'{classes[top] if top < len(classes) else top}' (the test set has 10 % per class): "
            f"the inputs are probably not what the model was trained on. Check the declared "
            f"preprocessing ({declared.describe()}); {DECLARATION_HELP}.")


def _hint(scale: float, zero_point: int) -> str:
    """What the .tflite's own input quantization suggests the float range was."""
    low, high = (-128 - zero_point) * scale, (127 - zero_point) * scale
    return (f"The .tflite's input quantization covers floats {low:.4g}..{high:.4g}, which "
            f"suggests {_likely(low, high)}. ")


def _likely(low: float, high: float) -> str:
    if abs(low) < 0.05 and 0.9 < high < 1.1:
        return "\"pixel / 255\""
    if abs(low) < 5 and 240 < high < 270:
        return "\"pixel\" (raw 0-255)"
    if -1.1 < low < -0.9 and 0.9 < high < 1.1:
        return "\"pixel / 127.5 - 1\""
    if -3.5 < low < -1 and 1 < high < 3.5:
        return "a per-channel standardization, \"(pixel - mean) / std\""
    return "a range none of the usual declarations produces"
