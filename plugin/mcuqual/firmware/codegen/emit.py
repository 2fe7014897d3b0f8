"""C emission: one translation unit per model, calling the kernel library in order."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mcuqual.quantize import tflite_model
from mcuqual.model.zoo import NAME_PATTERN
from mcuqual.firmware.codegen import params as qp
from mcuqual.firmware.codegen.arena import Buffer, align, plan
from mcuqual.firmware.codegen.graph import CodegenError, Graph, Op, Tensor, read_graph

SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D",
             "MEAN", "ADD", "MUL", "RESHAPE", "SOFTMAX")
ALIAS_OPS = ("RESHAPE",)
# The unsigned fields of the kernels' parameter structs (firmware/kernels/mq_nn.h) and the
# largest value each holds: a layer beyond them is refused here, not truncated by the compiler.
_U8, _U16 = 0xFF, 0xFFFF
FIELD_LIMITS = {
    "mq_conv_params_t": {**dict.fromkeys(("in_h", "in_w", "in_c", "out_h", "out_w", "out_c"), _U16),
                         **dict.fromkeys(("k_h", "k_w", "stride_h", "stride_w", "dil_h", "dil_w",
                                          "pad_top", "pad_left", "depth_multiplier"), _U8)},
    "mq_fc_params_t": {"in_features": _U16, "out_features": _U16, "per_channel": _U8},
    "mq_pool_params_t": {**dict.fromkeys(("in_h", "in_w", "channels", "out_h", "out_w"), _U16),
                         **dict.fromkeys(("k_h", "k_w", "stride_h", "stride_w", "pad_top",
                                          "pad_left"), _U8)},
    "mq_mean_params_t": dict.fromkeys(("in_h", "in_w", "channels"), _U16),
    "mq_softmax_params_t": {"rows": _U16, "depth": _U16},
}
# What a converter emits to compute a shape at run time (a dynamic batch dimension).
DYNAMIC_SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK", "GATHER", "CONCATENATION")


@dataclass
class GeneratedModel:
    name: str
    sources: dict[str, str]                 # file name -> C text
    arena_bytes: int
    constant_bytes: int                     # bytes of the const arrays we emit
    layers: list[str]
    input_bytes: int
    output_bytes: int
    tensor_offsets: dict[int, int] = field(default_factory=dict)
    layer_tensors: list[int] = field(default_factory=list)   # .tflite tensor each layer writes
    layer_macs: list[int] = field(default_factory=list)      # Graph.macs of each layer's op
    # per layer: (first input's shape, output's shape) and the kernel function it calls
    layer_shapes: list[tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    layer_kernels: list[str] = field(default_factory=list)

    @property
    def macs(self) -> int:
        """MACs of one inference, counted from the .tflite graph (any model, Keras or not)."""
        return sum(self.layer_macs)


def _c_array(ctype: str, name: str, values: np.ndarray | list[int], per_line: int = 24) -> str:
    flat = [int(v) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(str(v) for v in flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    body = ",\n    ".join(lines) if lines else "0"
    return f"static const {ctype} {name}[{max(1, len(flat))}] MQ_MODEL_CONST = {{\n    {body}\n}};\n"


def _struct(ctype: str, name: str, fields: dict[str, int]) -> str:
    body = ", ".join(f".{k} = {int(v)}" for k, v in fields.items())
    return f"static const {ctype} {name} MQ_MODEL_CONST = {{{body}}};\n"


# mq_add_s8's rescale tables on its fast path (mq_nn.h, MQ_ADD_SCRATCH_BYTES)
ADD_SCRATCH_BYTES = 2 * 256 * 4


def conv_scratch_bytes(k_h: int, k_w: int, in_c: int) -> int:
    """Working memory of mq_conv2d_s8 (see conv2d_s8.c): three pixels' columns widened
    to 16 bits (24 bytes per started group of four entries), plus one gathered int8
    column, rounded up to whole groups, when taps cannot be widened in place (input
    channels not a multiple of 4)."""
    column = k_h * k_w * in_c
    widened = 24 * ((column + 3) // 4)
    gathered = 0 if in_c % 4 == 0 else (column + 3) // 4 * 4
    return widened + gathered


def conv_prepared_pairs_bytes(k_h: int, k_w: int, in_c: int, pairs: int) -> int:
    """The scratch mq_conv2d_s8 takes besides conv_scratch_bytes for `pairs` prepared channel
    pairs (its params' prepared_pairs; conv2d_s8.c, prepare_pairs): per pair its weights as
    16-bit lanes, 16 bytes per started group of four entries, and a 32-byte record of its
    requantization."""
    return (16 * ((k_h * k_w * in_c + 3) // 4) + 32) * pairs


def depthwise_prepared(fields: dict[str, int]) -> bool:
    """mq_depthwise_conv2d_s8's prepared path (depthwise_conv2d_s8.c,
    mq_depthwise_prepared): multiplier 1, no dilation, channels a multiple of 4, at most 64
    taps."""
    return (fields["depth_multiplier"] == 1 and fields["dil_h"] == 1 and fields["dil_w"] == 1
            and fields["in_c"] % 4 == 0 and fields["k_h"] * fields["k_w"] <= 64)


# mq_depthwise_conv2d_s8 takes its rows path from this many outputs a row (depthwise_conv2d_s8.c,
# MQ_DEPTHWISE_ROWS_MIN_WIDTH)
DEPTHWISE_ROWS_MIN_WIDTH = 8


def depthwise_rows(fields: dict[str, int]) -> bool:
    """Its rows path (mq_depthwise_rows): prepared, 3x3, stride_w 1, pad_left <= 1 and at
    least DEPTHWISE_ROWS_MIN_WIDTH outputs a row."""
    return (depthwise_prepared(fields) and fields["k_h"] == 3 and fields["k_w"] == 3
            and fields["stride_w"] == 1 and fields["pad_left"] <= 1
            and fields["out_w"] >= DEPTHWISE_ROWS_MIN_WIDTH)


def depthwise_scratch_bytes(fields: dict[str, int]) -> int:
    """Working memory of mq_depthwise_conv2d_s8 (depthwise_conv2d_s8.c,
    mq_depthwise_scratch_bytes). The rows path: per channel 20 bytes of paired weights and
    4 of folded bias, a zero-point plane row, three input rows as 16-bit planes (lanes =
    the columns its passes read) and an output row's int32 sums. The other prepared layers:
    2 bytes per tap and channel of widened weights, 4 per channel of folded bias and a
    zero-point row of the channels rounded up to 4. Otherwise none."""
    channels, taps, out_w = fields["in_c"], fields["k_h"] * fields["k_w"], fields["out_w"]
    if depthwise_rows(fields):
        lanes = (out_w + 1) // 2 * 2 + 2
        return 24 * channels + 2 * lanes + 6 * lanes * channels + 4 * ((out_w + 1) // 2 * 2)
    if depthwise_prepared(fields):
        return 2 * taps * channels + 4 * channels + (channels + 3) // 4 * 4
    return 0


def pair_channels(filter_rows: np.ndarray) -> np.ndarray:
    """CONV_2D weights [out_c][K] in the order mq_conv2d_s8 reads them: each row padded
    with zeros to whole groups of four entries (only where K % 4 != 0: out_c x (4 - K % 4)
    bytes more), channels in pairs, each pair's rows interleaved in groups of four
    (c0 k0..3, c1 k0..3, c0 k4..7, ...); an odd last channel stays as it is. Otherwise the
    same bytes, reordered: the flash footprint is that of the .tflite's weights."""
    out_c, k = filter_rows.shape
    rows = np.zeros((out_c, -(-k // 4) * 4), dtype=filter_rows.dtype)
    rows[:, :k] = filter_rows
    parts = [rows[c:c + 2].reshape(2, -1, 4).transpose(1, 0, 2).reshape(-1)
             for c in range(0, out_c - 1, 2)]
    if out_c % 2:
        parts.append(rows[-1])
    return np.concatenate(parts) if parts else rows.reshape(-1)


def folded_conv_bias(filter_rows: np.ndarray, bias: np.ndarray | None,
                     input_offset: int) -> np.ndarray:
    """CONV_2D's bias as mq_conv2d_s8 takes it: bias + input_offset * (sum of the channel's
    weights), so that the kernel sums w * x over the raw inputs (conv2d_s8.c) and still
    gets the reference's sum of w * (x + input_offset) + bias. One int32 per channel, as
    the .tflite's bias (a layer without bias gets one: 4 bytes per channel)."""
    rows = np.asarray(filter_rows, dtype=np.int64)
    folded = rows.sum(axis=1) * int(input_offset)
    if bias is not None:
        folded = folded + np.asarray(bias, dtype=np.int64)
    if np.abs(folded).max(initial=0) >= 1 << 31:
        raise CodegenError("a convolution's bias with its input offset folded in exceeds "
                           "int32; the firmware cannot run this layer.")
    return folded.astype(np.int32)


def in_place_offset(fields: dict[str, int], depthwise: bool) -> int:
    """The least offset of a convolution's input inside the storage that starts with its
    output, such that the kernel never writes an input byte it has still to read.

    mq_conv2d_s8 (conv2d_s8.c) takes output pixels three at a time (the last one or two
    together): it reads the whole windows of a step's pixels before it writes their
    outputs, so the outputs written up to a step must end below the first input byte a
    later step reads. The prepared depthwise path (depthwise_conv2d_s8.c) reads a pixel's
    window and writes its outputs group by group, so a pixel's outputs must end below the
    first input byte that pixel or a later one reads. Row-major tensors: the first byte a
    window reads is its top-left tap inside the input, times the input's channels. Its
    rows path (depthwise_rows) writes output rows in order, each after every input row its
    windows read has been copied out (each input row read once): an output row must end
    below the first input row not yet copied."""
    in_h, in_w, in_c = fields["in_h"], fields["in_w"], fields["in_c"]
    out_h, out_w, out_c = fields["out_h"], fields["out_w"], fields["out_c"]
    if depthwise and depthwise_rows(fields):
        out_rows = np.arange(out_h, dtype=np.int64)
        copied = np.maximum.accumulate(out_rows * fields["stride_h"] - fields["pad_top"] + 2)
        need = np.where(copied + 1 < in_h,
                        (out_rows + 1) * out_w * out_c - (copied + 1) * in_w * in_c, 0)
        return int(max(0, need.max(initial=0)))
    pixels = np.arange(out_h * out_w)
    iy0 = (pixels // out_w) * fields["stride_h"] - fields["pad_top"]
    ix0 = (pixels % out_w) * fields["stride_w"] - fields["pad_left"]

    def first_tap(origin: np.ndarray, taps: int, dilation: int, size: int) -> np.ndarray:
        """The first in-bounds tap of each window along one axis (size if none)."""
        index = np.where(origin < 0, (-origin + dilation - 1) // dilation, 0)
        position = origin + index * dilation
        return np.where((index < taps) & (position < size), position, size)

    row = first_tap(iy0, fields["k_h"], fields["dil_h"], in_h)
    column = first_tap(ix0, fields["k_w"], fields["dil_w"], in_w)
    inside = (row < in_h) & (column < in_w)
    first_read = np.where(inside, (row * in_w + column) * in_c, np.iinfo(np.int64).max)
    step = 1 if depthwise else 3
    count = len(pixels)
    starts = np.arange(0, count - count % step, step).tolist()
    if count % step:
        starts.append(count - count % step)
    ends = starts[1:] + [count]
    written = np.array([end * out_c for end in ends], dtype=np.int64)
    reads = np.array([first_read[start:end].min() for start, end in zip(starts, ends)])
    # the first byte read from each step on (depthwise) or after it (conv)
    later = np.minimum.accumulate(reads[::-1])[::-1]
    if not depthwise:
        later = np.append(later[1:], np.iinfo(np.int64).max)
    need = written - later
    return int(max(0, need.max(initial=0)))


class _Emitter:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.decls: list[str] = []
        self.calls: list[tuple[str, str, int]] = []      # (layer name, C call, output tensor)
        self.constant_bytes = 0
        self.alias: dict[int, int] = {}
        # output tensor -> (input tensor, byte offset of that input inside the output's
        # storage): a convolution laid over its dying input; the candidates of
        # _overlap_in_place until generate() keeps those that make the arena smaller
        self.overlap: dict[int, tuple[int, int]] = {}
        self.scratch: dict[int, int] = {}               # op index -> scratch bytes for its call
        # op index -> (its params' index in decls, their name, fields): convolutions whose
        # channel pairs the kernel can prepare in scratch; generate() prepares as many as
        # the arena has room for (_choose_prepared_pairs)
        self.preparable: dict[int, tuple[int, str, dict[str, int]]] = {}
        self.op: Op | None = None                       # the operator being emitted
        self.last_read: dict[int, int] = {}             # tensor -> last op reading it
        for op in graph.ops:
            for index in op.inputs:
                if index >= 0:
                    self.last_read[index] = op.index
        self.last_read[graph.output] = len(graph.ops)

    # ---- helpers ----------------------------------------------------------
    def fail(self, op: Op, message: str) -> CodegenError:
        return CodegenError(f"model {self.graph.name}: operator {op.index} ({op.kind}): {message}")

    def activation(self, op: Op, index: int, role: str) -> Tensor:
        tensor = self.graph.tensor(index)
        if tensor.is_constant:
            raise self.fail(op, f"{role} '{tensor.name}' is a constant; expected an activation.")
        if tensor.dtype != "int8" or tensor.scales is None:
            raise self.fail(op, f"{role} tensor '{tensor.name}' is {tensor.dtype}; the firmware runs "
                                "int8 activations only (quantize the model fully to int8).")
        if tensor.shape and tensor.shape[0] != 1:
            raise self.fail(op, f"{role} tensor '{tensor.name}' has batch {tensor.shape[0]}; "
                                "the firmware runs batch 1.")
        return tensor

    def constant(self, op: Op, index: int, role: str, dtype: str) -> Tensor:
        tensor = self.graph.tensor(index)
        if not tensor.is_constant:
            raise self.fail(op, f"{role} '{tensor.name}' is not a constant; the firmware needs "
                                "constant weights.")
        if tensor.dtype != dtype:
            raise self.fail(op, f"{role} '{tensor.name}' is {tensor.dtype}, expected {dtype}.")
        return tensor

    def array(self, ctype: str, name: str, values) -> str:
        self.decls.append(_c_array(ctype, name, values))
        self.constant_bytes += int(np.asarray(values).size) * (1 if ctype == "int8_t" else 4)
        return name

    def struct(self, ctype: str, name: str, fields: dict[str, int]) -> str:
        for field_name, limit in FIELD_LIMITS.get(ctype, {}).items():
            if field_name in fields and not 0 <= int(fields[field_name]) <= limit:
                raise self.fail(self.op, f"{field_name} = {int(fields[field_name])} exceeds what "
                                         f"the kernels' {ctype} holds (0..{limit}).")
        self.decls.append(_struct(ctype, name, fields))
        return name

    def io(self, index: int) -> str:
        return f"MQ_T({index})"

    # ---- operators --------------------------------------------------------
    def emit(self, op: Op) -> None:
        if op.kind not in SUPPORTED:
            hint = ""
            if op.kind in DYNAMIC_SHAPE_OPS:
                hint = (" The model computes shapes at run time, as a model converted with a "
                        "dynamic batch dimension does: convert it with a fixed batch size of 1 "
                        "(e.g. keras.Input(shape=(32, 32, 3), batch_size=1)).")
            raise self.fail(op, f"not supported by the mcuqual kernels (supported: "
                                f"{', '.join(SUPPORTED)}).{hint}")
        self.op = op
        getattr(self, f"op_{op.kind.lower()}")(op)

    def _conv_common(self, op: Op, depthwise: bool) -> None:
        inp = self.activation(op, op.inputs[0], "input")
        out = self.activation(op, op.outputs[0], "output")
        flt = self.constant(op, op.inputs[1], "filter", "int8")
        bias = self.constant(op, op.inputs[2], "bias", "int32") \
            if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        o = op.options
        _, in_h, in_w, in_c = inp.shape
        _, out_h, out_w, out_c = out.shape
        k_h, k_w = flt.shape[1], flt.shape[2]
        if flt.zero_points is not None and np.any(flt.zero_points != 0):
            raise self.fail(op, "filter zero points must be 0 (symmetric int8 weights).")
        scales = flt.scales if len(flt.scales) == out_c else np.repeat(flt.scales[:1], out_c)
        multipliers, shifts = qp.per_channel_multipliers(inp.scale, scales, out.scale)
        act_min, act_max = qp.activation_range(o.fusedActivationFunction, out.scale, out.zero_point)
        same = o.padding == 0
        pad_top = qp.same_padding(in_h, k_h, o.strideH, o.dilationHFactor, out_h) if same else 0
        pad_left = qp.same_padding(in_w, k_w, o.strideW, o.dilationWFactor, out_w) if same else 0
        fields = dict(in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c,
                      k_h=k_h, k_w=k_w, stride_h=o.strideH, stride_w=o.strideW,
                      dil_h=o.dilationHFactor, dil_w=o.dilationWFactor,
                      pad_top=pad_top, pad_left=pad_left,
                      depth_multiplier=(out_c // in_c) if depthwise else 1,
                      input_offset=-inp.zero_point, output_offset=out.zero_point,
                      act_min=act_min, act_max=act_max)
        weights = np.asarray(flt.data, dtype=np.int64)
        per_channel = weights.reshape(-1, out_c).T if depthwise else weights.reshape(out_c, -1)
        fields["requant_fast"] = int(qp.requant_fast(np.abs(per_channel).sum(axis=1),
                                                     bias.data if bias is not None else None,
                                                     shifts, out.zero_point))
        n = op.index
        if not depthwise:
            fields["prepared_pairs"] = 0                 # _choose_prepared_pairs may set it
        w = self.array("int8_t", f"l{n}_w",
                       flt.data if depthwise else pair_channels(flt.data.reshape(out_c, -1)))
        if depthwise:
            b = self.array("int32_t", f"l{n}_b", bias.data) if bias is not None else "0"
        else:
            b = self.array("int32_t", f"l{n}_b", folded_conv_bias(
                per_channel, bias.data if bias is not None else None, -inp.zero_point))
        m = self.array("int32_t", f"l{n}_m", multipliers)
        s = self.array("int32_t", f"l{n}_s", shifts)
        p = self.struct("mq_conv_params_t", f"l{n}_p", fields)
        if not depthwise and fields["requant_fast"] and (act_min, act_max) == (-128, 127) \
                and out_c >= 2:                          # the assembly routine's layers
            self.preparable[n] = (len(self.decls) - 1, p, fields)
        self._overlap_in_place(op, inp, out, fields, depthwise)
        if depthwise:
            scratch = depthwise_scratch_bytes(fields)
            if scratch:
                self.scratch[n] = scratch
            call = (f"mq_depthwise_conv2d_s8(&{p}, {self.io(inp.index)}, {w}, {b}, {m}, {s}, "
                    f"{self.io(out.index)}, {f'MQ_T(scratch{n})' if scratch else '0'});")
        else:
            self.scratch[n] = conv_scratch_bytes(k_h, k_w, in_c)
            call = (f"mq_conv2d_s8(&{p}, {self.io(inp.index)}, {w}, {b}, {m}, {s}, "
                    f"{self.io(out.index)}, MQ_T(scratch{n}));")
        self.calls.append((f"{n}:{op.kind}", call, out.index))

    def _overlap_in_place(self, op: Op, inp: Tensor, out: Tensor, fields: dict,
                          depthwise: bool) -> None:
        """Lay a convolution's output over its input when no later op reads that input:
        the output at the start of one storage, the input `in_place_offset` bytes in, so
        that no write reaches input bytes the kernel has still to read; the two then need
        max(out, offset + in) bytes instead of in + out. Storage already shared (reshapes,
        in-place ADD) or laid over stays as it is; a depthwise layer only on its prepared
        path (the order in_place_offset follows)."""
        shared = set(self.alias) | set(self.alias.values())
        if inp.index == self.graph.input or self.last_read.get(inp.index) != op.index \
                or {inp.index, out.index} & shared \
                or (depthwise and not depthwise_scratch_bytes(fields)):
            return
        delta = align(in_place_offset(fields, depthwise))
        if delta < out.elements:                      # else no byte is saved
            self.overlap[out.index] = (inp.index, delta)

    def op_conv_2d(self, op: Op) -> None:
        self._conv_common(op, depthwise=False)

    def op_depthwise_conv_2d(self, op: Op) -> None:
        self._conv_common(op, depthwise=True)

    def op_fully_connected(self, op: Op) -> None:
        inp = self.activation(op, op.inputs[0], "input")
        out = self.activation(op, op.outputs[0], "output")
        flt = self.constant(op, op.inputs[1], "weights", "int8")
        bias = self.constant(op, op.inputs[2], "bias", "int32") \
            if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        if op.options.weightsFormat != 0:
            raise self.fail(op, "only the default weights format is supported.")
        out_features, in_features = flt.shape
        per_channel = len(flt.scales) > 1
        if per_channel:
            multipliers, shifts = qp.per_channel_multipliers(inp.scale, flt.scales, out.scale)
        else:
            m, s = qp.per_tensor_fc_multiplier(inp.scale, flt.scale, out.scale)
            multipliers, shifts = [m], [s]
        act_min, act_max = qp.activation_range(op.options.fusedActivationFunction, out.scale,
                                               out.zero_point)
        n = op.index
        abs_sums = np.abs(np.asarray(flt.data, dtype=np.int64) - flt.zero_point).sum(axis=1)
        fast = qp.requant_fast(abs_sums, bias.data if bias is not None else None, shifts)
        fields = dict(in_features=in_features, out_features=out_features,
                      input_offset=-inp.zero_point, filter_offset=-flt.zero_point,
                      output_offset=out.zero_point, act_min=act_min, act_max=act_max,
                      per_channel=int(per_channel), requant_fast=int(fast))
        w = self.array("int8_t", f"l{n}_w", flt.data)
        b = self.array("int32_t", f"l{n}_b", bias.data) if bias is not None else "0"
        m = self.array("int32_t", f"l{n}_m", multipliers)
        s = self.array("int32_t", f"l{n}_s", shifts)
        p = self.struct("mq_fc_params_t", f"l{n}_p", fields)
        self.calls.append((f"{n}:{op.kind}", f"mq_fully_connected_s8(&{p}, {self.io(inp.index)}, "
                           f"{w}, {b}, {m}, {s}, {self.io(out.index)});", out.index))

    def _pool(self, op: Op, kernel: str) -> None:
        inp = self.activation(op, op.inputs[0], "input")
        out = self.activation(op, op.outputs[0], "output")
        if inp.scale != out.scale or inp.zero_point != out.zero_point:
            raise self.fail(op, "input and output quantization must be equal for pooling.")
        o = op.options
        _, in_h, in_w, channels = inp.shape
        _, out_h, out_w, _ = out.shape
        same = o.padding == 0
        act_min, act_max = qp.activation_range(o.fusedActivationFunction, out.scale, out.zero_point)
        fields = dict(in_h=in_h, in_w=in_w, channels=channels, out_h=out_h, out_w=out_w,
                      k_h=o.filterHeight, k_w=o.filterWidth, stride_h=o.strideH,
                      stride_w=o.strideW,
                      pad_top=qp.same_padding(in_h, o.filterHeight, o.strideH, 1, out_h) if same else 0,
                      pad_left=qp.same_padding(in_w, o.filterWidth, o.strideW, 1, out_w) if same else 0,
                      act_min=act_min, act_max=act_max)
        p = self.struct("mq_pool_params_t", f"l{op.index}_p", fields)
        self.calls.append((f"{op.index}:{op.kind}",
                           f"{kernel}(&{p}, {self.io(inp.index)}, {self.io(out.index)});", out.index))

    def op_average_pool_2d(self, op: Op) -> None:
        self._pool(op, "mq_avg_pool2d_s8")

    def op_max_pool_2d(self, op: Op) -> None:
        self._pool(op, "mq_max_pool2d_s8")

    def op_mean(self, op: Op) -> None:
        inp = self.activation(op, op.inputs[0], "input")
        out = self.activation(op, op.outputs[0], "output")
        axis = self.constant(op, op.inputs[1], "axis", "int32")
        if len(inp.shape) != 4 or sorted(int(a) for a in axis.data.reshape(-1)) != [1, 2]:
            raise self.fail(op, "only the mean over height and width of a 4-D tensor is supported.")
        _, in_h, in_w, channels = inp.shape
        multiplier, shift = qp.mean_multiplier(inp.scale, out.scale, in_h * in_w)
        fields = dict(in_h=in_h, in_w=in_w, channels=channels,
                      input_zero_point=inp.zero_point, output_zero_point=out.zero_point,
                      multiplier=multiplier, shift=shift)
        p = self.struct("mq_mean_params_t", f"l{op.index}_p", fields)
        self.calls.append((f"{op.index}:{op.kind}",
                           f"mq_mean_s8(&{p}, {self.io(inp.index)}, {self.io(out.index)});", out.index))

    def _binary_operand(self, op: Op, index: int, role: str, out: Tensor) -> tuple[Tensor, str, int]:
        tensor = self.graph.tensor(index)
        if tensor.is_constant:
            if tensor.dtype != "int8" or tensor.scales is None:
                raise self.fail(op, f"{role} constant '{tensor.name}' must be quantized int8.")
            ref = self.array("int8_t", f"l{op.index}_{role}", tensor.data)
        else:
            tensor = self.activation(op, index, role)
            ref = self.io(index)
        out_shape = tuple(out.shape)
        shape = tuple(tensor.shape)
        trimmed = shape[next((i for i, d in enumerate(shape) if d != 1), len(shape)):]
        if shape != out_shape and out_shape[len(out_shape) - len(trimmed):] != trimmed:
            raise self.fail(op, f"{role} shape {list(shape)} broadcasts against {list(out_shape)} "
                                "in a way the firmware does not support (only trailing dimensions).")
        return tensor, ref, tensor.elements

    def _elementwise(self, op: Op, ctype: str, kernel: str) -> None:
        """ADD and MUL: two operands (activation or constant) broadcast to the output."""
        out = self.activation(op, op.outputs[0], "output")
        a, a_ref, a_inner = self._binary_operand(op, op.inputs[0], "input1", out)
        b, b_ref, b_inner = self._binary_operand(op, op.inputs[1], "input2", out)
        act_min, act_max = qp.activation_range(op.options.fusedActivationFunction, out.scale,
                                               out.zero_point)
        scratch = ""
        if op.kind == "ADD":
            rescale = qp.add_multipliers(a.scale, b.scale, out.scale)
            fast = qp.add_fast(rescale, out.zero_point) and a_inner == b_inner == out.elements
            rescale["fast"] = int(fast)
            if fast:
                self.scratch[op.index] = ADD_SCRATCH_BYTES
            scratch = f", MQ_T(scratch{op.index})" if fast else ", 0"
            self._in_place(op, out, (a, b))
        else:
            multiplier, shift = qp.mul_multiplier(a.scale, b.scale, out.scale)
            rescale = {"output_multiplier": multiplier, "output_shift": shift}
        fields = dict(size=out.elements, input1_inner=a_inner, input2_inner=b_inner,
                      input1_offset=-a.zero_point, input2_offset=-b.zero_point,
                      output_offset=out.zero_point, **rescale, act_min=act_min, act_max=act_max)
        p = self.struct(ctype, f"l{op.index}_p", fields)
        self.calls.append((f"{op.index}:{op.kind}",
                           f"{kernel}(&{p}, {a_ref}, {b_ref}, {self.io(out.index)}{scratch});",
                           out.index))

    def _in_place(self, op: Op, out: Tensor, operands: tuple[Tensor, ...]) -> None:
        """Let an elementwise op write its output over a full-size activation input that
        no later op reads (the kernel reads each element before writing it): one buffer
        fewer alive at this op. Inputs that already share storage stay apart."""
        shared = set(self.alias) | set(self.alias.values())
        for tensor in operands:
            if (not tensor.is_constant and tensor.elements == out.elements
                    and tensor.index != self.graph.input and tensor.index not in shared
                    and out.index not in shared
                    and self.last_read.get(tensor.index) == op.index):
                self.alias[out.index] = tensor.index
                return

    def op_add(self, op: Op) -> None:
        self._elementwise(op, "mq_add_params_t", "mq_add_s8")

    def op_mul(self, op: Op) -> None:
        self._elementwise(op, "mq_mul_params_t", "mq_mul_s8")

    def op_softmax(self, op: Op) -> None:
        inp = self.activation(op, op.inputs[0], "input")
        out = self.activation(op, op.outputs[0], "output")
        if out.zero_point != -128 or out.scale != np.float32(1.0 / 256):
            raise self.fail(op, "int8 softmax output must have scale 1/256 and zero point -128.")
        multiplier, left_shift, diff_min = qp.softmax_params(op.options.beta, inp.scale)
        depth = inp.shape[-1]
        fields = dict(rows=inp.elements // depth, depth=depth, input_multiplier=multiplier,
                      input_left_shift=left_shift, diff_min=diff_min)
        p = self.struct("mq_softmax_params_t", f"l{op.index}_p", fields)
        self.calls.append((f"{op.index}:{op.kind}",
                           f"mq_softmax_s8(&{p}, {self.io(inp.index)}, {self.io(out.index)});",
                           out.index))

    def op_reshape(self, op: Op) -> None:
        inp = self.activation(op, op.inputs[0], "input")
        out = self.activation(op, op.outputs[0], "output")
        if inp.elements != out.elements or inp.scale != out.scale \
                or inp.zero_point != out.zero_point:
            raise self.fail(op, "a reshape must keep element count and quantization.")
        self.alias[out.index] = inp.index


def _storage(alias: dict[int, int], index: int) -> int:
    while index in alias:
        index = alias[index]
    return index


def _arena_buffers(emitter: "_Emitter", first: dict[int, int], last: dict[int, int],
                   sizes: dict[int, int], overlap: dict[int, tuple[int, int]]
                   ) -> tuple[list[Buffer], dict[int, tuple[int, int]]]:
    """The arena's buffers (storages and scratch spans), and the guests of `overlap`: a
    convolution's dying input inside its output's storage, `delta` bytes in, one buffer
    of two parts, each alive over its own tensor's lifetime (a storage is host or guest
    at most once: _chosen_overlaps keeps no pair that would break that)."""
    alias = emitter.alias
    hosted = {_storage(alias, outer): (_storage(alias, inner), delta)
              for outer, (inner, delta) in overlap.items()}
    guests = {guest: (host, delta) for host, (guest, delta) in hosted.items()}
    buffers = []
    for key in sizes:
        if key in guests:
            continue
        lifetime = (first.get(key, -1), last.get(key, first.get(key, -1)))
        if key not in hosted:
            buffers.append(Buffer(key, sizes[key], *lifetime))
            continue
        guest, delta = hosted[key]
        inner = (first.get(guest, -1), last.get(guest, first.get(guest, -1)))
        buffers.append(Buffer(key, max(sizes[key], delta + sizes[guest]),
                              min(lifetime[0], inner[0]), max(lifetime[1], inner[1]),
                              ((0, sizes[key], *lifetime),
                               (delta, delta + sizes[guest], *inner))))
    # a kernel's scratch lives in the arena for the length of its own call only
    buffers += [Buffer(_scratch_key(n), size, n, n) for n, size in emitter.scratch.items()]
    return buffers, guests


def _chosen_overlaps(emitter: "_Emitter", first: dict[int, int], last: dict[int, int],
                     sizes: dict[int, int]) -> dict[int, tuple[int, int]]:
    """The in-place candidates (_Emitter._overlap_in_place) that make the planned arena
    smallest, greedily: by the arena each gives alone, best first, each added where it
    makes the arena smaller and its two storages are in no other chosen pair (a storage is
    host or guest at most once). A storage laid over another ties the two together, which
    can cost the planner more than the bytes it saves, so not every candidate is kept."""
    def arena(chosen: dict[int, tuple[int, int]]) -> int:
        return plan(_arena_buffers(emitter, first, last, sizes, chosen)[0])[1]

    candidates = sorted(emitter.overlap.items(), key=lambda item: (arena(dict([item])), item[0]))
    chosen: dict[int, tuple[int, int]] = {}
    best = arena(chosen)
    for outer, (inner, delta) in candidates:
        taken = set(chosen) | {guest for guest, _ in chosen.values()}
        if {outer, inner} & taken:
            continue
        trial = {**chosen, outer: (inner, delta)}
        size = arena(trial)
        if size < best:
            chosen, best = trial, size
    return chosen


# the most channel pairs a convolution prepares (mq_conv_params_t.prepared_pairs: uint8_t)
MAX_PREPARED_PAIRS = 255
# preparing a pair costs about what a few blocks of three pixels save (~10 against ~3 cycles
# per group and block, plus the records' 22): layers of fewer blocks keep flash weights
MIN_PREPARED_BLOCKS = 8


def _choose_prepared_pairs(emitter: "_Emitter", first: dict[int, int], last: dict[int, int],
                           sizes: dict[int, int], overlap: dict[int, tuple[int, int]]) -> None:
    """Let each convolution the assembly routine takes prepare as many of its channel pairs
    in scratch (conv_prepared_pairs_bytes) as the planned arena has room for without
    growing, the layers with most MACs first (a binary search per layer): a speed the
    deployment gets for no RAM. The flash holds the int8 weights either way."""
    def arena() -> int:
        return plan(_arena_buffers(emitter, first, last, sizes, overlap)[0])[1]

    budget = arena()
    graph = emitter.graph
    for n, (decl, name, fields) in sorted(
            emitter.preparable.items(), key=lambda item: (-graph.macs(graph.ops[item[0]]), item[0])):
        if fields["out_h"] * fields["out_w"] // 3 < MIN_PREPARED_BLOCKS:
            continue
        base = emitter.scratch[n]

        def fits(pairs: int) -> bool:
            emitter.scratch[n] = base + conv_prepared_pairs_bytes(
                fields["k_h"], fields["k_w"], fields["in_c"], pairs)
            return arena() <= budget

        low, high = 0, min(fields["out_c"] // 2, MAX_PREPARED_PAIRS)   # low always fits
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if fits(middle) else (low, middle - 1)
        fits(low)
        if low:
            fields["prepared_pairs"] = low
            emitter.decls[decl] = _struct("mq_conv_params_t", name, fields)


def generate(flatbuffer: bytes, name: str) -> GeneratedModel:
    """The C sources of one model; raises CodegenError naming op, tensor and model."""
    if not NAME_PATTERN.fullmatch(name):      # the name is written into C source
        raise CodegenError(f"model name {name!r}: only letters, digits, '_', '.' and '-' may "
                           "reach generated C.")
    tflite_model.read(flatbuffer, name)      # corrupt or non-integer files fail here, clearly
    graph = read_graph(flatbuffer, name)
    emitter = _Emitter(graph)
    for op in graph.ops:
        emitter.emit(op)
    inp = emitter.activation(graph.ops[0], graph.input, "model input")
    out = graph.tensor(graph.output)
    # lifetimes of every activation storage, in schedule order
    first: dict[int, int] = {_storage(emitter.alias, graph.input): -1}
    last: dict[int, int] = {_storage(emitter.alias, graph.output): len(graph.ops)}
    sizes: dict[int, int] = {}
    for op in graph.ops:
        for index in op.outputs:
            key = _storage(emitter.alias, index)
            first.setdefault(key, op.index)
            sizes[key] = max(sizes.get(key, 0), graph.tensor(index).elements)
        for index in op.inputs:
            if index < 0 or graph.tensor(index).is_constant:
                continue
            key = _storage(emitter.alias, index)
            last[key] = max(last.get(key, -1), op.index)
            sizes[key] = max(sizes.get(key, 0), graph.tensor(index).elements)
    # a convolution's dying input may live inside its output's storage (the candidates of
    # _Emitter._overlap_in_place): kept where they make the arena smaller
    overlap = _chosen_overlaps(emitter, first, last, sizes)
    emitter.overlap = overlap
    _choose_prepared_pairs(emitter, first, last, sizes, overlap)
    buffers, guests = _arena_buffers(emitter, first, last, sizes, overlap)
    offsets, arena_bytes = plan(buffers)
    scratch_offsets = {n: offsets.pop(_scratch_key(n)) for n in emitter.scratch}
    for guest, (host, delta) in guests.items():
        offsets[guest] = offsets[host] + delta
    tensor_offsets = {t.index: offsets[_storage(emitter.alias, t.index)]
                      for t in graph.tensors if _storage(emitter.alias, t.index) in offsets}
    layer_names = [layer for layer, _, _ in emitter.calls]
    layer_macs = [graph.macs(graph.ops[int(layer.split(":")[0])]) for layer in layer_names]
    layer_offsets = [tensor_offsets[o] for _, _, o in emitter.calls]
    source = _translation_unit(name, emitter, tensor_offsets, scratch_offsets, arena_bytes,
                               inp.elements, out.elements, layer_names, layer_offsets,
                               tensor_offsets[graph.input], tensor_offsets[graph.output])
    config = (f"/* Generated by mcuqual for model '{name}'. */\n"
              "#ifndef MQ_MODEL_CONFIG_H\n#define MQ_MODEL_CONFIG_H\n"
              f"#define MQ_MODEL_INPUT_BYTES {inp.elements}u\n"
              f"#define MQ_MODEL_OUTPUT_BYTES {out.elements}u\n"
              f"#define MQ_MODEL_LAYERS {len(layer_names)}u\n"
              f"#define MQ_MODEL_ARENA_BYTES {arena_bytes}u\n"
              "#endif\n")
    return GeneratedModel(name, {"mq_model_data.c": source, "mq_model_config.h": config},
                          arena_bytes,
                          emitter.constant_bytes, layer_names, inp.elements, out.elements,
                          tensor_offsets, [o for _, _, o in emitter.calls], layer_macs,
                          [(graph.tensor(graph.ops[int(layer.split(":")[0])].inputs[0]).shape,
                            graph.tensor(o).shape) for layer, _, o in emitter.calls],
                          [call.split("(")[0] for _, call, _ in emitter.calls])


def _scratch_key(op_index: int) -> int:
    return -1 - op_index              # tensor indices are >= 0


def _translation_unit(name, emitter, offsets, scratch_offsets, arena_bytes, input_bytes,
                      output_bytes, layer_names, layer_offsets, input_offset,
                      output_offset) -> str:
    lines = [
        f"/* Generated by mcuqual from model '{name}'. Do not edit: regenerate instead. */",
        "#include <string.h>",
        '#include "mq_nn.h"',
        '#include "mq_model.h"',
        "",
        "#ifndef MQ_MODEL_CONST",
        '#define MQ_MODEL_CONST __attribute__((section(".rodata.mq_model"), aligned(4)))',
        "#endif",
        "#ifndef MQ_ARENA_ATTR",
        '#define MQ_ARENA_ATTR __attribute__((section(".bss.mq_arena"), aligned(16)))',
        "#endif",
        "",
        f"int8_t mq_model_arena[{arena_bytes}] MQ_ARENA_ATTR;",
        "#define MQ_T(offset_of) (mq_model_arena + mq_tensor_offset_##offset_of)",
        "",
    ]
    for index, offset in sorted(offsets.items()):
        lines.append(f"#define mq_tensor_offset_{index} {offset}u")
    for op_index, offset in sorted(scratch_offsets.items()):
        lines.append(f"#define mq_tensor_offset_scratch{op_index} {offset}u")
    lines.append("")
    lines.extend(emitter.decls)
    lines.append("static const char *const layer_names[] = {")
    lines.extend(f'    "{layer}",' for layer in layer_names)
    lines.append("};")
    lines.append(f"static const uint32_t layer_offsets[] = {{{', '.join(map(str, layer_offsets))}}};")
    lines.append("")
    lines.append("const mq_model_info_t mq_model_info = {")
    lines.append(f'    "{name}", {input_bytes}u, {output_bytes}u, {arena_bytes}u, '
                 f"{len(layer_names)}u, layer_names}};")
    lines.append("")
    lines.append("const int8_t *mq_model_layer_output(int layer)")
    lines.append("{")
    lines.append("    return mq_model_arena + layer_offsets[layer];")
    lines.append("}")
    lines.append("")
    lines.append("int mq_model_invoke(const int8_t *input, int8_t *output, mq_layer_hook_t hook, "
                 "void *context)")
    lines.append("{")
    lines.append(f"    memcpy(mq_model_arena + {input_offset}u, input, {input_bytes}u);")
    for layer, (label, call, _) in enumerate(emitter.calls):
        lines.append(f"    if (hook) hook(context, {layer}, MQ_LAYER_BEGIN);  /* {label} */")
        lines.append(f"    {call}")
        lines.append(f"    if (hook) hook(context, {layer}, MQ_LAYER_END);")
    lines.append(f"    memcpy(output, mq_model_arena + {output_offset}u, {output_bytes}u);")
    lines.append("    return 0;")
    lines.append("}")
    return "\n".join(lines) + "\n"
