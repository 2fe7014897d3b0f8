"""Does the firmware's C compute what tflite_micro computes? Checked on every test image."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcuqual.common.cache import Cache, content_hash
from mcuqual.firmware.codegen import GeneratedModel
from mcuqual.common.errors import McuqualError
from mcuqual.firmware.host_twin import HostTwin, run_parallel
from mcuqual.common.workers import default_workers


class BitExactnessError(McuqualError):
    """The firmware's kernels disagree with the reference: no figure from them can be trusted."""


@dataclass(frozen=True)
class TwinCheck:
    model: str
    images: int
    mismatched_images: int
    first_mismatch: int | None
    from_cache: bool
    first_layer: str | None = None

    def require_bit_exact(self) -> None:
        if self.mismatched_images:
            where = f", first differing layer {self.first_layer}" if self.first_layer else ""
            raise BitExactnessError(
                f"model {self.model}: the firmware's C (host twin) differs from tflite_micro on "
                f"{self.mismatched_images} of {self.images} test images (first: image "
                f"{self.first_mismatch}{where}); its accuracy is not the reference's.")


def first_differing_layer(flatbuffer: bytes, generated: GeneratedModel, twin: HostTwin,
                          image: np.ndarray) -> str | None:
    """Run one image through TFLM keeping every tensor, and through the twin layer by
    layer: the first layer whose output differs is where the arithmetic parts ways."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(
        flatbuffer, arena_size=max(len(flatbuffer) * 10, 1 << 22),
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    interpreter.set_input(image[None], 0)
    interpreter.invoke()
    for layer, (name, tensor) in enumerate(zip(generated.layers, generated.layer_tensors)):
        expected = np.asarray(interpreter.GetTensor(tensor, 0)["tensor_data"]).reshape(-1)
        ours = twin.layer_output(image, layer, expected.size)
        if not np.array_equal(ours, expected.astype(np.int8)):
            return name
    return None


def compare_with_reference(twin: HostTwin, inputs: np.ndarray, golden: np.ndarray, cache: Cache,
                           label: str, flatbuffer: bytes | None = None,
                           generated: GeneratedModel | None = None) -> TwinCheck:
    key = content_hash(twin.library_path.read_bytes(), inputs.tobytes(), golden.tobytes())
    marker = cache.path("twin_check", key, ".npy")
    if marker.is_file():
        mismatched = np.load(marker)
        cached = True
    else:
        outputs = run_parallel(twin, inputs, label, generated.macs if generated else 0,
                               workers=default_workers())
        mismatched = np.flatnonzero((outputs != golden).any(axis=1))
        np.save(marker, mismatched)
        cached = False
    first = int(mismatched[0]) if mismatched.size else None
    layer = None
    if first is not None and flatbuffer is not None and generated is not None:
        layer = first_differing_layer(flatbuffer, generated, twin, inputs[first])
    return TwinCheck(label, len(inputs), int(mismatched.size), first, cached, layer)
