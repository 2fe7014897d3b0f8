"""The operator graph of a .tflite, read with the schema that ships with tflite_micro."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mcuqual.common.errors import McuqualError
from mcuqual.quantize.tflite_model import _TENSOR_TYPES, _op_names, _schema


class CodegenError(McuqualError):
    """The model uses something the firmware cannot run."""


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scales: np.ndarray | None          # float32, one per channel or one
    zero_points: np.ndarray | None
    quantized_dimension: int
    data: np.ndarray | None = field(default=None, repr=False)   # constants only

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def scale(self) -> np.float32:
        return np.float32(self.scales[0])

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0])

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


@dataclass
class Op:
    index: int
    kind: str
    inputs: list[int]
    outputs: list[int]
    options: Any


@dataclass
class Graph:
    name: str
    tensors: list[Tensor]
    ops: list[Op]
    input: int
    output: int

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def macs(self, op: Op) -> int:
        """Multiply-accumulates of one inference through `op`, from the tensor shapes alone.

        CONV_2D: output elements x the filter's kh x kw x input channels;
        DEPTHWISE_CONV_2D: output elements x kh x kw; FULLY_CONNECTED: output elements x
        input features. Pooling, MEAN, ADD, MUL and SOFTMAX multiply by no weight: 0,
        as `mcuqual.macs` counts a Keras model (the two agree where both exist).
        """
        if op.kind not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            return 0
        out = self.tensor(op.outputs[0]).elements
        weights = self.tensor(op.inputs[1]).shape
        if op.kind == "CONV_2D":              # filter [out channels, kh, kw, in channels]
            return out * int(np.prod(weights[1:]))
        if op.kind == "DEPTHWISE_CONV_2D":    # filter [1, kh, kw, out channels]
            return out * int(weights[1]) * int(weights[2])
        return out * int(weights[-1])         # weights [units, input features]


_NUMPY = {"int8": np.int8, "int32": np.int32, "uint8": np.uint8, "int16": np.int16,
          "int64": np.int64, "float32": np.float32}


def read_graph(flatbuffer: bytes, name: str) -> Graph:
    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(flatbuffer), 0))
    graph = model.subgraphs[0]
    names = _op_names()
    tensors = []
    for index, t in enumerate(graph.tensors):
        dtype = _TENSOR_TYPES.get(t.type, f"type{t.type}")
        q = t.quantization
        scales = np.asarray(q.scale, dtype=np.float32) if q is not None and q.scale is not None \
            and len(q.scale) else None
        zeros = np.asarray(q.zeroPoint, dtype=np.int64) if q is not None and q.zeroPoint is not None \
            and len(q.zeroPoint) else None
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        data = None
        buffer = model.buffers[t.buffer] if 0 < t.buffer < len(model.buffers) else None
        if buffer is not None and buffer.data is not None and len(buffer.data):
            raw = np.asarray(buffer.data, dtype=np.uint8).tobytes()
            if dtype not in _NUMPY:
                raise CodegenError(f"model {name}: constant tensor '{t.name.decode()}' has "
                                   f"unsupported type {dtype}.")
            data = np.frombuffer(raw, dtype=_NUMPY[dtype]).reshape(shape)
        tensors.append(Tensor(index, t.name.decode() if isinstance(t.name, bytes) else str(t.name),
                              shape, dtype, scales, zeros,
                              int(q.quantizedDimension) if q is not None else 0, data))
    ops = []
    for index, op in enumerate(graph.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        kind = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "UNKNOWN")
        ops.append(Op(index, kind, [int(i) for i in op.inputs], [int(o) for o in op.outputs],
                      op.builtinOptions))
    return Graph(name, tensors, ops, int(graph.inputs[0]), int(graph.outputs[0]))
