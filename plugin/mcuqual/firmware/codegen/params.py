"""Requantization parameters computed exactly as TFLite Micro computes them at prepare time.

Each function names the TFLM routine whose arithmetic it reproduces; the
float32/float64 mix matters, since one differing bit in a multiplier changes
outputs.
"""
from __future__ import annotations

import math

import numpy as np

ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier: real = q * 2^shift with q in [0.5, 1) as Q0.31 (round half away)."""
    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)
    q_fixed = int(math.floor(abs(fraction) * (1 << 31) + 0.5)) * (1 if fraction >= 0 else -1)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def _round_half_away(value: np.float32) -> int:
    return int(math.copysign(math.floor(abs(float(value)) + 0.5), float(value)))


def quantize_value(scale: np.float32, zero_point: int, real: float) -> int:
    """TFLite's Quantize() helper: zero_point + round(real / scale), the division in float32."""
    return zero_point + _round_half_away(np.float32(real) / np.float32(scale))


def activation_range(activation: int, scale: np.float32, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 outputs."""
    lo, hi = -128, 127
    kind = ACTIVATIONS.get(activation)
    if kind == "RELU":
        return max(lo, quantize_value(scale, zero_point, 0.0)), hi
    if kind == "RELU6":
        return (max(lo, quantize_value(scale, zero_point, 0.0)),
                min(hi, quantize_value(scale, zero_point, 6.0)))
    if kind == "RELU_N1_TO_1":
        return (max(lo, quantize_value(scale, zero_point, -1.0)),
                min(hi, quantize_value(scale, zero_point, 1.0)))
    if kind == "NONE":
        return lo, hi
    raise ValueError(f"unsupported fused activation {activation}")


def per_channel_multipliers(input_scale: np.float32, filter_scales: np.ndarray,
                            output_scale: np.float32) -> tuple[list[int], list[int]]:
    """PopulateConvolutionQuantizationParams: double(in) * double(filter) / double(out)."""
    multipliers, shifts = [], []
    for scale in filter_scales:
        m, s = quantize_multiplier(float(input_scale) * float(np.float32(scale)) / float(output_scale))
        multipliers.append(m)
        shifts.append(s)
    return multipliers, shifts


def per_tensor_fc_multiplier(input_scale: np.float32, filter_scale: np.float32,
                             output_scale: np.float32) -> tuple[int, int]:
    """GetQuantizedConvolutionMultipler: the input*filter product is taken in float32."""
    product = float(np.float32(input_scale) * np.float32(filter_scale))
    return quantize_multiplier(product / float(output_scale))


def mean_multiplier(input_scale: np.float32, output_scale: np.float32,
                    elements: int) -> tuple[int, int]:
    """Reduce MEAN: in/out rescale, then 1/elements folded in as QuantizedMeanOrSum does."""
    multiplier, shift = quantize_multiplier(float(input_scale) / float(output_scale))
    extra = elements.bit_length() - 1              # 63 - clz64(elements)
    extra = min(extra, 32, 31 + shift)
    multiplier = int((multiplier << extra) // elements)
    return multiplier, shift - extra


def add_multipliers(scale1: np.float32, scale2: np.float32, output_scale: np.float32,
                    left_shift: int = 20) -> dict[str, int]:
    """CalculateOpDataAdd for int8."""
    twice_max = 2.0 * float(max(np.float32(scale1), np.float32(scale2)))
    m1, s1 = quantize_multiplier(float(scale1) / twice_max)
    m2, s2 = quantize_multiplier(float(scale2) / twice_max)
    mo, so = quantize_multiplier(twice_max / ((1 << left_shift) * float(output_scale)))
    return {"left_shift": left_shift, "input1_multiplier": m1, "input1_shift": s1,
            "input2_multiplier": m2, "input2_shift": s2,
            "output_multiplier": mo, "output_shift": so}


def mul_multiplier(scale1: np.float32, scale2: np.float32,
                   output_scale: np.float32) -> tuple[int, int]:
    """CalculateOpDataMul for int8: double(in1) * double(in2) / double(out)."""
    return quantize_multiplier(float(scale1) * float(scale2) / float(output_scale))


def softmax_params(beta: float, input_scale: np.float32,
                   integer_bits: int = 5) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling and CalculateInputRadius: (multiplier, left shift, diff_min)."""
    real = min(float(np.float32(beta)) * float(input_scale) * (1 << (31 - integer_bits)),
               float((1 << 31) - 1))
    multiplier, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise ValueError("softmax input scale too small for the fixed-point path")
    radius = ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift)
    return multiplier, left_shift, -int(math.floor(radius))


def same_padding(in_size: int, filter_size: int, stride: int, dilation: int,
                 out_size: int) -> int:
    """ComputePaddingWithOffset: the top/left share of the total padding."""
    effective = (filter_size - 1) * dilation + 1
    total = max(0, (out_size - 1) * stride + effective - in_size)
    return total // 2


# |x + input offset| for int8 x and an int8 zero point
MAX_OFFSET_INPUT = 255
SMALL_RIGHT_LIMIT = 1 << 30


def requant_fast(weight_abs_sums: np.ndarray, bias: np.ndarray | None,
                 shifts: list[int], output_offset: int | None = None) -> bool:
    """Whether a layer may requantize with mq_multiply_small_right (mq_nn.h): every
    channel's shift is a right shift (<= -1) and its sum of products plus bias stays below
    2^30 in magnitude for any int8 input, bounded by 255 * sum|w| + |bias| per channel.
    With an `output_offset` (the convolutions, which fold it into the rounding term:
    mq_requant_folded) that term, |2 * offset + 1| * 2^(e - 1) for each channel's exponent
    e = -shift, must stay below 2^30 too."""
    sums = np.asarray(weight_abs_sums, dtype=np.int64) * MAX_OFFSET_INPUT
    if bias is not None:
        sums = sums + np.abs(np.asarray(bias, dtype=np.int64))
    if not shifts or max(shifts) > -1 or int(sums.max(initial=0)) >= SMALL_RIGHT_LIMIT:
        return False
    if output_offset is None:
        return True
    unit = abs(2 * int(output_offset) + 1)
    return all(unit << (-int(shift) - 1) < SMALL_RIGHT_LIMIT for shift in shifts)


def add_fast(rescale: dict[str, int], output_offset: int = 0) -> bool:
    """Whether mq_add_s8's table path (add_s8.c) reproduces the reference for these
    parameters: inputs right-shifted (shift <= 0), the output right-shifted (<= -1), and
    (x + offset) * 2^left_shift, each rescaled input (at most 255 * 2^left_shift * m /
    2^31 / 2^e + 1) and their sum below 2^30 in magnitude, so that the output's
    requantization may take mq_requant_folded, whose rounding term with the output
    offset folded in, |2 * output_offset + 1| * 2^(e - 1), must stay below 2^30 too."""
    left = rescale["left_shift"]
    shifts = (rescale["input1_shift"], rescale["input2_shift"])
    if max(shifts) > 0 or rescale["output_shift"] > -1:
        return False
    if abs(2 * int(output_offset) + 1) << (-rescale["output_shift"] - 1) >= SMALL_RIGHT_LIMIT:
        return False
    widened = MAX_OFFSET_INPUT << left
    scaled = [widened * rescale[f"input{i}_multiplier"] // (1 << (31 - shift)) + 1
              for i, shift in ((1, shifts[0]), (2, shifts[1]))]
    return max(widened, sum(scaled)) < SMALL_RIGHT_LIMIT
