"""Reading an INT8 .tflite with the flatbuffer schema that ships with tflite_micro.

Everything the host side needs to know about a quantized model (its I/O
quantization, its operators, the bytes of its constants) comes from here, and a
corrupt or non-integer file is rejected before any interpreter touches it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mcuqual.common.errors import ModelError

if TYPE_CHECKING:
    from mcuqual.model.preprocessing import Preprocessing

_TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 9: "int8",
                 7: "int16", 10: "float64"}


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    return schema


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    scale: float | None
    zero_point: int | None


@dataclass(frozen=True)
class TfliteSummary:
    operators: tuple[str, ...]
    input: TensorInfo
    output: TensorInfo
    constant_bytes: int
    constant_tensors: int
    file_bytes: int


def _op_names() -> dict[int, str]:
    ops = _schema().BuiltinOperator
    return {v: k for k, v in vars(ops).items() if not k.startswith("_") and isinstance(v, int)}


def _op_name(model, op, names: dict[int, str]) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    return names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "UNKNOWN")


def _tensor_info(tensor) -> TensorInfo:
    q = tensor.quantization
    scale = float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) else None
    zero = int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None and len(q.zeroPoint) else None
    name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
    shape = tuple(int(d) for d in (tensor.shape if tensor.shape is not None else ()))
    return TensorInfo(name, _TENSOR_TYPES.get(tensor.type, f"type{tensor.type}"), shape, scale, zero)


def float_operators(flatbuffer: bytes) -> list[str]:
    """Operators that read or write a float tensor: what keeps a model from being full-integer."""
    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(flatbuffer), 0))
    names = _op_names()
    found = []
    for graph in model.subgraphs or []:
        for op in graph.operators or []:
            touched = [*(op.inputs if op.inputs is not None else ()),
                       *(op.outputs if op.outputs is not None else ())]
            if any(i >= 0 and _TENSOR_TYPES.get(graph.tensors[i].type) in ("float32", "float16")
                   for i in touched):
                found.append(_op_name(model, op, names))
    return found


def read(flatbuffer: bytes, label: str = "model") -> TfliteSummary:
    """Parse and sanity-check; raises ModelError naming `label` for anything unusable."""
    if len(flatbuffer) < 16 or flatbuffer[4:8] != b"TFL3":
        raise ModelError(f"{label}: not a TFLite flatbuffer (no 'TFL3' identifier; "
                         f"{len(flatbuffer)} bytes). The file is corrupt or truncated.")
    schema = _schema()
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(flatbuffer), 0))
    except Exception as exc:  # flatbuffers raises assorted errors on garbage
        raise ModelError(f"{label}: the .tflite is corrupt or truncated ({type(exc).__name__}: "
                         f"{exc}).") from exc
    if not model.subgraphs or len(model.subgraphs) != 1:
        raise ModelError(f"{label}: expected exactly one subgraph, found "
                         f"{len(model.subgraphs or [])}.")
    graph = model.subgraphs[0]
    buffers = model.buffers or []
    try:
        names = _op_names()
        operators = tuple(_op_name(model, op, names) for op in graph.operators or [])
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            raise ModelError(f"{label}: expected one input and one output tensor, found "
                             f"{len(graph.inputs)} and {len(graph.outputs)}.")
        inp = _tensor_info(graph.tensors[graph.inputs[0]])
        out = _tensor_info(graph.tensors[graph.outputs[0]])
        constant_bytes = 0
        constant_tensors = 0
        for tensor in graph.tensors:
            if 0 < tensor.buffer < len(buffers):
                data = buffers[tensor.buffer].data
                if data is not None and len(data):
                    constant_bytes += int(np.asarray(data).nbytes)
                    constant_tensors += 1
    except (IndexError, AttributeError, TypeError) as exc:
        raise ModelError(f"{label}: the .tflite is inconsistent ({exc}); the file is corrupt.") from exc
    for role, info in (("input", inp), ("output", out)):
        if info.dtype != "int8":
            raise ModelError(f"{label}: the {role} tensor '{info.name}' is {info.dtype}; the "
                             "suite deploys full-integer models (int8 input and output). "
                             "Quantize with inference_input_type/inference_output_type = int8.")
        if info.scale is None or info.zero_point is None:
            raise ModelError(f"{label}: the {role} tensor '{info.name}' has no quantization "
                             "parameters.")
    return TfliteSummary(operators=operators, input=inp, output=out,
                         constant_bytes=constant_bytes, constant_tensors=constant_tensors,
                         file_bytes=len(flatbuffer))


IMAGE_INPUT_SHAPE = (1, 32, 32, 3)


def require_image_input(summary: TfliteSummary, label: str) -> None:
    """The suite feeds one 32x32 RGB CIFAR-10 image per inference and reads 10 scores."""
    if summary.input.shape != IMAGE_INPUT_SHAPE:
        raise ModelError(f"{label}: input tensor '{summary.input.name}' has shape "
                         f"{list(summary.input.shape)}; the suite feeds CIFAR-10 images as "
                         f"{list(IMAGE_INPUT_SHAPE)} (batch 1, NHWC). Convert with a fixed batch "
                         "size of 1 and a 32x32x3 input.")
    if int(np.prod(summary.output.shape)) != 10:
        raise ModelError(f"{label}: output tensor '{summary.output.name}' has shape "
                         f"{list(summary.output.shape)}; a CIFAR-10 classifier has 10 scores.")


def quantize_images(images: np.ndarray, info: TensorInfo,
                    preprocessing: "Preprocessing") -> np.ndarray:
    """uint8 RGB pixels -> the model's int8 input, through its declared float preprocessing."""
    return preprocessing.quantize(images, info.scale, info.zero_point)
