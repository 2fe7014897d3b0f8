"""Kernel benchmark: emulated cycles, MACs and MAC/cycle of one operator per case.

Each case is one operator in a small Keras model converted with the project's converter
and run by the firmware on the virtual board with cycle accounting. Models take CIFAR-10's
32x32x3 images; a case whose operator needs another input shape gets it from a cheap 1x1
"prep" convolution first, and the operator under test is always the model's last layer (its
own entry of the per-layer cycles). The firmware's output must equal tflite_micro's for two
test images; the cycles are a benchmark figure, compared with benchmarks/kernel_cycles.json
and reported, never asserted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pytest

from kernel_cycles import KernelFigures

if TYPE_CHECKING:
    import keras

IMAGES = 2                      # test images per case: bit-exactness on both, cycles of the first
CALIBRATION_COUNT = 100
SEED = 11


@dataclass(frozen=True)
class Case:
    """One operator under test: `build(layers, x)` adds it on `x`, the image or, with
    `prep`, a 1x1 convolution of the image to `in_shape` (ADD and FULLY_CONNECTED build
    their own feeding layers)."""
    id: str
    op: str
    in_shape: tuple[int, ...]                 # the operator's first input, batch left out
    build: Callable[[Any, Any], Any]
    prep: bool = True
    ci: bool = False


def _conv(filters: int, kernel: int, stride: int = 1) -> Callable[[Any, Any], Any]:
    return lambda L, x: L.Conv2D(filters, kernel, strides=stride, padding="same",
                                 activation="relu", name="under_test")(x)


def _depthwise(stride: int = 1) -> Callable[[Any, Any], Any]:
    return lambda L, x: L.DepthwiseConv2D(3, strides=stride, padding="same", activation="relu",
                                          name="under_test")(x)


def _add(L, x):
    """Two 1x1 branches of the image, 32x32x16 each, summed."""
    return L.Add(name="under_test")([L.Conv2D(16, 1, name="left")(x),
                                     L.Conv2D(16, 1, name="right")(x)])


def _fully_connected(L, x):
    """192 features (a 1x1 conv of stride 8 to 4x4x12, flattened) to 10 classes."""
    features = L.Flatten()(L.Conv2D(12, 1, strides=8, name="features")(x))
    return L.Dense(10, name="under_test")(features)


CASES = [
    Case("conv3x3-32x32-16x16", "CONV_2D", (32, 32, 16), _conv(16, 3)),
    Case("conv3x3-16x16-32x32", "CONV_2D", (16, 16, 32), _conv(32, 3)),
    Case("conv3x3-8x8-64x64", "CONV_2D", (8, 8, 64), _conv(64, 3)),
    Case("conv3x3s2-32x32x16-16x16x32", "CONV_2D", (32, 32, 16), _conv(32, 3, 2)),
    Case("conv3x3-stem-32x32-3x16", "CONV_2D", (32, 32, 3), _conv(16, 3), ci=True),
    Case("conv3x3-stem-32x32-3x32", "CONV_2D", (32, 32, 3), _conv(32, 3)),
    Case("conv1x1-32x32-32x48", "CONV_2D", (32, 32, 32), _conv(48, 1)),
    Case("conv1x1-16x16-96x96", "CONV_2D", (16, 16, 96), _conv(96, 1)),
    Case("conv1x1-8x8-160x160", "CONV_2D", (8, 8, 160), _conv(160, 1)),
    Case("conv1x1s2-32x32x16-16x16x32", "CONV_2D", (32, 32, 16), _conv(32, 1, 2)),
    Case("dwconv3x3-32x32x32", "DEPTHWISE_CONV_2D", (32, 32, 32), _depthwise()),
    Case("dwconv3x3-16x16x96", "DEPTHWISE_CONV_2D", (16, 16, 96), _depthwise()),
    Case("dwconv3x3s2-32x32x48", "DEPTHWISE_CONV_2D", (32, 32, 48), _depthwise(2), ci=True),
    Case("add-32x32x16", "ADD", (32, 32, 16), _add, prep=False),
    Case("fc-192x10", "FULLY_CONNECTED", (192,), _fully_connected, prep=False, ci=True),
    Case("avgpool2x2-32x32x16", "AVERAGE_POOL_2D", (32, 32, 16),
         lambda L, x: L.AveragePooling2D(2, name="under_test")(x)),
    Case("maxpool2x2-32x32x16", "MAX_POOL_2D", (32, 32, 16),
         lambda L, x: L.MaxPooling2D(2, name="under_test")(x)),
    Case("mean-8x8x64", "MEAN", (8, 8, 64),
         lambda L, x: L.GlobalAveragePooling2D(name="under_test")(x)),
]


def _keras_model(case: Case) -> "keras.Model":
    """The case's float model, fixed seed, with non-zero biases (as training leaves them)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(SEED)
    image = keras.Input((32, 32, 3))
    x = image
    if case.prep and case.in_shape != (32, 32, 3):
        height, _, channels = case.in_shape
        x = layers.Conv2D(channels, 1, strides=32 // height, name="prep")(x)
    model = keras.Model(image, case.build(layers, x), name=case.id)
    rng = np.random.default_rng(SEED)
    for layer in model.layers:
        if getattr(layer, "use_bias", False):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape).astype(np.float32)])
    return model


def _param(case: Case) -> Any:
    return pytest.param(case, id=case.id, marks=[pytest.mark.kernel_ci] if case.ci else [])


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_kernel(case: Case, benchmark, cifar, board, firmware_cache, record_figures) -> None:
    """Emulated cycles of the case's operator (recorded, not asserted); output bit-exact."""
    from mcuqual.firmware import codegen
    from mcuqual.firmware.build import build_firmware
    from mcuqual.model.preprocessing import PIXEL_OVER_255
    from mcuqual.quantize import tflite_model
    from mcuqual.quantize.calibration import calibration_images
    from mcuqual.quantize.convert import convert
    from mcuqual.reference.tflm import run_reference
    from mcuqual.target.virtual import booted_runner

    flatbuffer = convert(_keras_model(case), calibration_images(cifar, CALIBRATION_COUNT))
    generated = codegen.generate(flatbuffer, case.id)
    layer = len(generated.layers) - 1             # the operator under test: the last layer
    assert generated.layers[layer].endswith(f":{case.op}"), generated.layers
    input_shape, output_shape = generated.layer_shapes[layer]
    assert tuple(input_shape[1:]) == case.in_shape, (input_shape, case.in_shape)

    firmware = build_firmware(generated, board, firmware_cache)
    runner = booted_runner(board, firmware.elf, cycle_accurate=True)
    inputs = tflite_model.quantize_images(cifar.test.images[:IMAGES],
                                          tflite_model.read(flatbuffer).input, PIXEL_OVER_255)
    first = benchmark.pedantic(runner.infer, args=(inputs[0],), rounds=1, iterations=1)
    results = [first] + [runner.infer(x) for x in inputs[1:]]
    golden = run_reference(flatbuffer, inputs, label=case.id, workers=1)
    ours = np.stack([r.output for r in results])
    bit_exact = ours.shape == golden.shape and bool((ours == golden).all())

    figures = KernelFigures(case.id, case.op, generated.layer_kernels[layer], tuple(input_shape),
                            tuple(output_shape), generated.layer_macs[layer],
                            first.layer_cycles[layer], board.name, bit_exact)
    record_figures(figures)
    benchmark.extra_info.update(
        op=case.op, kernel=figures.kernel, input_shape=list(figures.input_shape),
        output_shape=list(figures.output_shape), macs=figures.macs, cycles=figures.cycles,
        macs_per_cycle=figures.macs_per_cycle,
        cycles_per_output_element=figures.cycles_per_output_element,
        cycles_per_image=[r.layer_cycles[layer] for r in results],
        board=board.name, evidence="emulated", arena_bytes=generated.arena_bytes)
    assert len(np.unique(golden)) > 1, "degenerate case: the reference output is constant"
    assert bit_exact, (f"{case.id}: firmware output differs from tflite_micro in "
                       f"{int((ours != golden).sum())} of {golden.size} bytes")
