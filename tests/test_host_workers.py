"""Host-side work is bounded and named: a twin that hangs or crashes, a stage that raises."""
from __future__ import annotations

import time

import pytest
from mcuqual.firmware import codegen
from mcuqual.firmware import host_twin
from mcuqual.reference import tflm as reference
from mcuqual.quantize import tflite_model
from mcuqual.common.cache import Cache
from mcuqual.qualify.deployment import StageError, _Memo
from mcuqual.firmware.host_twin import HostTwin, build_host_twin
from mcuqual.model.preprocessing import PIXEL_OVER_255
from mcuqual.firmware.twin_check import compare_with_reference
from mcuqual.common.workers import WorkerError


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return Cache(tmp_path_factory.mktemp("workers-cache"))


def _sabotaged_twin(tiny_tflite, cache, statement: str, name: str) -> tuple[HostTwin, object]:
    """The tiny model's twin with `statement` run at the start of every inference."""
    generated = codegen.generate(tiny_tflite, name)
    source = generated.sources["mq_model_data.c"]
    head = "void *context)\n{\n"
    assert head in source
    broken = codegen.GeneratedModel(**{**generated.__dict__, "sources": {
        **generated.sources, "mq_model_data.c": source.replace(head, head + statement + "\n")}})
    return HostTwin(build_host_twin(broken, cache), broken.input_bytes, broken.output_bytes), broken


@pytest.fixture(scope="module")
def inputs_and_golden(tiny_tflite, cifar):
    inputs = tflite_model.quantize_images(cifar.test.images[:600],
                                          tflite_model.read(tiny_tflite).input, PIXEL_OVER_255)
    return inputs, reference.run_reference(tiny_tflite, inputs, workers=1)


def test_a_hanging_twin_ends_within_its_budget_naming_model_stage_and_images(
        tiny_tflite, cache, inputs_and_golden, monkeypatch):
    twin, broken = _sabotaged_twin(
        tiny_tflite, cache, "    { volatile int spin = 1; while (spin) { } }", "hangs")
    monkeypatch.setattr(host_twin, "TWIN_JOB_FLOOR_S", 3.0)
    inputs, golden = inputs_and_golden
    started = time.monotonic()
    with pytest.raises(WorkerError, match=r"model hangs: the host twin did not finish test "
                                          r"images (0\.\.499|500\.\.599) within \d+ s"):
        compare_with_reference(twin, inputs, golden, cache, "hangs", tiny_tflite, broken)
    assert time.monotonic() - started < 20          # budget, plus starting and killing workers


def test_a_crashing_twin_is_named_not_a_broken_pool_traceback(tiny_tflite, cache,
                                                               inputs_and_golden):
    twin, broken = _sabotaged_twin(tiny_tflite, cache, "    *(volatile int *)0 = 1;", "crashes")
    inputs, golden = inputs_and_golden
    with pytest.raises(WorkerError, match=r"model crashes: the host twin worker crashed \(killed "
                                          r"by SIGSEGV\) on test images \d+\.\.\d+") as info:
        compare_with_reference(twin, inputs, golden, cache, "crashes", tiny_tflite, broken)
    assert "BrokenProcessPool" not in str(info.value)


def test_a_failed_stage_is_remembered_and_named_not_retried():
    calls = []

    def compute():
        calls.append(1)
        raise ValueError("boom")
    memo = _Memo("model m on b")
    for _ in range(2):
        with pytest.raises(StageError, match=r"model m on b: stage 'codegen' failed unexpectedly: "
                                             r"ValueError: boom"):
            memo.get("codegen", compute)
    assert len(calls) == 1
