"""The figures of one model on one board through one probe, computed once and shared.

Every requirement test of a (model, board, probe) triple asks this object for
its figure; costly steps (quantization, the 10,000-image reference run) run at
most once, and a failed step is remembered so each dependent test reports the
same clear error instead of retrying it.
"""
from __future__ import annotations

import hashlib
import statistics

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from mcuqual.quantize import tflite_model
from mcuqual.boards.profile import Board
from mcuqual.common.cache import Cache
from mcuqual.firmware.codegen import GeneratedModel, generate
from mcuqual.firmware.codegen.graph import CodegenError, read_graph
from mcuqual.data.cifar10 import (
    CLASSES,
    Cifar10,
    DatasetError,
    download_with_keras,
    load_cifar10,
    resolve_directory,
)
from mcuqual.firmware.elf import ElfFigures, analyze
from mcuqual.common.errors import McuqualError, NotMeasurableError
from mcuqual.reference.evaluation import Int8Evaluation, evaluate_int8
from mcuqual.firmware.build import FirmwareImage, ModelTooLargeError, build_firmware
from mcuqual.firmware.host_twin import HostTwin, build_host_twin
from mcuqual.common.evidence import Evidence, Measurement
from mcuqual.target.probes import ProbeChoice
from mcuqual.target.virtual.cycles import cycle_model_class
from mcuqual.qualify.metrics import METRICS
from mcuqual.quantize.convert import quantize_cached
from mcuqual.reference.tflm import ArenaFigure, tflm_arena
from mcuqual.power import energy_windows
from mcuqual.model.preprocessing import InputStatistics, check_inputs, check_predictions
from mcuqual.measure.on_target import OnTargetRun, inference_budget_s, run_on_target
from mcuqual.firmware.twin_check import TwinCheck, compare_with_reference
from mcuqual.model.zoo import ZooModel

T = TypeVar("T")


class DatasetSource:
    """Loads CIFAR-10 once, on first use, and remembers a failure."""

    def __init__(self, option: str | None, repo_root: Path, allow_download: bool,
                 verify_checksums: bool) -> None:
        self.option, self.repo_root = option, repo_root
        self.allow_download, self.verify_checksums = allow_download, verify_checksums
        self._memo = _Memo()

    def get(self) -> Cifar10:
        return self._memo.get("dataset", self._load)

    def _load(self) -> Cifar10:
        directory, looked = resolve_directory(self.option, self.repo_root)
        if directory is None:
            if not self.allow_download:
                raise DatasetError(
                    "CIFAR-10 not found; looked in " + ", ".join(str(p) for p in looked) +
                    ". Pass --dataset-dir PATH (or set MCUQUAL_DATASET_DIR), or --allow-download.")
            directory = download_with_keras()
        return load_cifar10(directory, verify_checksums=self.verify_checksums)


class StageError(McuqualError):
    """An unexpected failure (a bug, a library's own exception) in one stage of one model."""


class _Memo:
    """Values computed once; a failure is remembered too, so every test that depends on the
    stage reports the same error instead of running it again. `label` names the model in
    the message of a failure that is not already one of ours."""

    def __init__(self, label: str = "") -> None:
        self.label = label
        self._values: dict[str, Any] = {}
        self._errors: dict[str, Exception] = {}

    def peek(self, key: str) -> Any:
        """The value if it was computed, else None: reports never trigger work."""
        return self._values.get(key)

    def get(self, key: str, compute: Callable[[], T]) -> T:
        if key in self._errors:
            raise self._errors[key]
        if key not in self._values:
            try:
                self._values[key] = compute()
            except McuqualError as exc:
                self._errors[key] = exc
                raise
            except Exception as exc:         # noqa: BLE001 - named, kept, and re-raised
                error = StageError(f"{self.label + ': ' if self.label else ''}stage {key!r} failed "
                                   f"unexpectedly: {type(exc).__name__}: {exc}")
                self._errors[key] = error
                raise error from exc
        return self._values[key]


@dataclass
class Step:
    name: str
    seconds: float
    detail: str = ""


@dataclass
class Deployment:
    model: ZooModel
    board: Board
    probe: ProbeChoice
    data: DatasetSource
    cache: Cache
    before_load: Callable[[ZooModel], None] | None = None
    samples: int | None = 10
    power_monitor: str = "auto"
    steps: list[Step] = field(default_factory=list)
    _memo: _Memo = field(default_factory=_Memo)

    def __post_init__(self) -> None:
        self._memo.label = f"model {self.model.name} on {self.board.name}"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.board.name, self.model.name, self.probe.unique_id)

    def _timed(self, name: str, compute: Callable[[], T], detail: Callable[[T], str] | None = None) -> T:
        def run() -> T:
            start = time.monotonic()
            value = compute()
            self.steps.append(Step(name, time.monotonic() - start, detail(value) if detail else ""))
            return value
        return self._memo.get(name, run)

    # --- the pipeline: model -> quantized -> reference -------------------------------
    def flatbuffer(self) -> bytes:
        def load() -> bytes:
            self.model.require_usable()
            if self.before_load is not None:
                self.before_load(self.model)
            self.model.require_trained()
            if self.model.tflite_path.is_file():
                return self.model.tflite_path.read_bytes()
            self.model.require_recipe()        # the suite quantizes only what it can train
            flatbuffer, _ = quantize_cached(self.model.keras_path, self.data.get(), self.cache)
            return flatbuffer
        return self._timed("quantize", load, lambda b: f"{len(b)} B INT8 .tflite")

    def tflite_origin(self) -> str:
        return ("committed artifact " + self.model.tflite_path.name if self.model.tflite_path.is_file()
                else "quantized from " + self.model.keras_path.name)

    def summary(self) -> tflite_model.TfliteSummary:
        def read() -> tflite_model.TfliteSummary:
            summary = tflite_model.read(self.flatbuffer(), self.model.name)
            tflite_model.require_image_input(summary, self.model.name)
            return summary
        return self._memo.get("summary", read)

    def macs_per_image(self) -> int:
        """MACs of one inference, counted on the .tflite graph (no code generation needed)."""
        def count() -> int:
            graph = read_graph(self.flatbuffer(), self.model.name)
            return sum(graph.macs(op) for op in graph.ops)
        return self._memo.get("macs", count)

    def test_inputs(self) -> np.ndarray:
        """Every test image as the model's int8 input, through its declared preprocessing."""
        return self._memo.get("inputs", lambda: tflite_model.quantize_images(
            self.data.get().test.images, self.summary().input, self.model.preprocessing))

    def input_check(self) -> InputStatistics:
        """The plausibility of the declared preprocessing, from the int8 inputs it gives."""
        info = self.summary().input
        return self._memo.get("input_check", lambda: check_inputs(
            self.test_inputs(), self.model.preprocessing, info.scale, info.zero_point,
            self.model.name))

    def model_hash(self) -> str:
        """SHA-256 of the INT8 .tflite deployed (all 64 hex digits, as sha256sum prints it)."""
        return hashlib.sha256(self.flatbuffer()).hexdigest()

    def evaluation(self) -> Int8Evaluation:
        return self._timed(
            "reference", lambda: evaluate_int8(self.flatbuffer(), self.data.get().test, self.cache,
                                               self.model.name, self.model.preprocessing,
                                               self.test_inputs(), self.macs_per_image()),
            lambda e: f"{e.images} images, top-1 {e.top1:.4f}" + (" (cached)" if e.from_cache else ""))

    def arena(self) -> ArenaFigure:
        def compute() -> ArenaFigure:
            zero_image = np.full(self.summary().input.shape[1:], self.summary().input.zero_point,
                                 dtype=np.int8)
            return tflm_arena(self.flatbuffer(), zero_image, self.model.name, self.macs_per_image())
        return self._timed("tflm_arena", compute, lambda a: f"{a.total_bytes} B")

    # --- firmware: generated C -> ELF for the board, and its host twin -------------
    def generated(self) -> GeneratedModel:
        return self._timed("codegen", lambda: generate(self.flatbuffer(), self.model.name),
                           lambda g: f"{len(g.layers)} layers, arena {g.arena_bytes} B")

    def firmware(self) -> FirmwareImage:
        return self._timed("build", lambda: build_firmware(self.generated(), self.board, self.cache),
                           lambda f: f"{f.elf.name} ({f.toolchain})")

    def elf(self) -> ElfFigures:
        return self._memo.get("elf", lambda: analyze(self.firmware().elf))

    def firmware_summary(self) -> dict[str, Any] | None:
        """ELF figures if the firmware was built in this run."""
        figures, image = self._memo.peek("elf"), self._memo.peek("build")
        if figures is None or image is None:
            return None
        return {"elf": str(image.elf), "toolchain": image.toolchain, **asdict(figures)}

    def twin_check(self) -> TwinCheck:
        def check() -> TwinCheck:
            generated = self.generated()
            twin = HostTwin(build_host_twin(generated, self.cache), generated.input_bytes,
                            generated.output_bytes)
            return compare_with_reference(twin, self.test_inputs(), self.evaluation().outputs,
                                          self.cache, self.model.name, self.flatbuffer(), generated)
        return self._timed("host_twin", check,
                           lambda c: f"{c.images} images, {c.mismatched_images} differ"
                                     + (" (cached)" if c.from_cache else ""))

    # --- figures ------------------------------------------------------------------
    def measure(self, metric: str) -> Measurement:
        """The figure of a registered metric (mcuqual.qualify.metrics), by its producer."""
        entry = METRICS.get(metric)
        if entry is None:
            raise NotMeasurableError(f"metric {metric!r} is not in the registry "
                                     f"(mcuqual.qualify.metrics): {', '.join(METRICS)}")
        return getattr(self, entry.producer)()

    def measure_top1(self) -> Measurement:
        self.input_check()                        # a wrong declaration is an error, not a figure
        result = self.evaluation()
        check_predictions(result.predictions, CLASSES, self.model.preprocessing, self.model.name)
        confusion = result.confusion()
        per_class = confusion.diagonal() / np.maximum(1, confusion.sum(axis=1))
        details: dict[str, Any] = {
            "correct": int(confusion.trace()),
            "per_class_top1": [round(float(v), 4) for v in per_class],
            "preprocessing": self.model.preprocessing.describe(),
            "host_twin_images": 0, "on_target_images": 0}
        how = ("INT8 model on the tflite_micro reference interpreter (TFLM reference kernels) on "
               "the host, CIFAR-10 test set")
        try:
            twin = self.twin_check()
        except CodegenError as exc:               # the firmware cannot run it: say so, keep the figure
            details["firmware"] = str(exc)
            how += ("; the firmware cannot run this model, so no deployed output confirms "
                    f"it ({exc})")
        else:
            twin.require_bit_exact()
            details.update(host_twin_images=twin.images, host_twin_mismatches=0)
            try:
                run = self.on_target()            # the target itself must agree, too
            except ModelTooLargeError as exc:
                details["firmware"] = str(exc)
                how += (f"; the firmware's C (host twin) gives the same output bytes on every "
                        f"image; it does not fit {self.board.name}, so no target run ({exc})")
            else:
                run.require_bit_exact()
                details.update(on_target_images=run.images, on_target_mismatches=0)
                how += ("; the firmware's C (host twin) gives the same output bytes on every "
                        "image, and the target on every image it ran")
        return Measurement("top1", result.top1, "fraction", Evidence.HOST, how,
                           samples=result.images, details=details)

    def measure_weights_bytes(self) -> Measurement:
        summary, generated = self.summary(), self.generated()
        details = {"tflite_constant_bytes": summary.constant_bytes,
                   "tflite_file_bytes": summary.file_bytes, "generated_constant_bytes":
                   generated.constant_bytes, "board_flash_bytes": self.board.flash_bytes}
        try:
            elf, image = self.elf(), self.firmware()
        except ModelTooLargeError as exc:          # the figure exists even if the ELF does not
            return Measurement(
                "weights_bytes", float(generated.constant_bytes), "B", Evidence.HOST,
                f"bytes of the model's constant arrays in the generated C (weights, biases, "
                f"requantization parameters); the firmware does not link for {self.board.name}: "
                f"{exc}", details={**details, "firmware": str(exc)})
        return Measurement(
            "weights_bytes", float(elf.weights_bytes), "B", Evidence.HOST,
            f"size of the .mq_model section (weights, biases, requantization parameters) of the "
            f"firmware ELF built for {self.board.name} with {image.toolchain}",
            details={**details, "code_bytes": elf.code_bytes,
                     "flash_used_bytes": elf.flash_used_bytes, "elf": str(image.elf)})

    def measure_arena_bytes(self) -> Measurement:
        generated, tflm = self.generated(), self.arena()
        details = {"tflm_arena_bytes": tflm.total_bytes, "board_ram_bytes": self.board.ram_bytes,
                   "tflm_report": tflm.report.strip().splitlines()}
        try:
            elf = self.elf()
        except ModelTooLargeError as exc:
            return Measurement(
                "arena_bytes", float(generated.arena_bytes), "B", Evidence.HOST,
                f"the static activation arena the code generator planned from tensor lifetimes; "
                f"the firmware does not link for {self.board.name}: {exc}",
                details={**details, "firmware": str(exc)})
        return Measurement(
            "arena_bytes", float(elf.arena_bytes), "B", Evidence.HOST,
            "size of the .mq_arena section (static activation arena planned from tensor "
            f"lifetimes) of the firmware ELF built for {self.board.name}",
            details={**details, "stack_reserved_bytes": elf.stack_bytes,
                     "ram_used_bytes": elf.ram_used_bytes})

    def measure_min_class_top1(self) -> Measurement:
        """The worst class's top-1: the same evaluation, and the same checks, as top-1."""
        top1 = self.measure_top1()
        per_class = top1.details["per_class_top1"]
        worst = min(range(len(per_class)), key=per_class.__getitem__)
        return Measurement(
            "min_class_top1", float(per_class[worst]), "fraction", top1.evidence,
            f"lowest per-class top-1 ('{CLASSES[worst]}') of: {top1.method}",
            samples=top1.samples, details={"class": CLASSES[worst], "per_class_top1": per_class,
                                           "preprocessing": top1.details["preprocessing"]})

    def measure_stack_bytes(self) -> Measurement:
        """The stack's high-water mark: the firmware paints the stack at boot and reports how
        deep the inferences reached into it (the deepest of every image it ran)."""
        run = self._timed_run()
        elf = self.elf()
        evidence = Evidence.EMULATED if self.probe.is_virtual else Evidence.MEASURED
        return Measurement(
            "stack_bytes", float(run.stack_high_water_bytes), "B", evidence,
            f"stack high-water mark over {run.images} inferences on "
            f"{'the virtual ' if self.probe.is_virtual else ''}{self.board.name} (painted stack, "
            "read back through the mailbox)", samples=run.images,
            details={"stack_reserved_bytes": elf.stack_bytes,
                     "arena_high_water_bytes": run.arena_high_water_bytes})

    # --- on the target ------------------------------------------------------------
    def on_target(self) -> OnTargetRun:
        def run() -> OnTargetRun:
            inputs = self.test_inputs()
            count = len(inputs) if self.samples is None else min(self.samples, len(inputs))
            generated = self.generated()
            budget = inference_budget_s(generated.macs, generated.arena_bytes,
                                        self.probe.is_virtual, self.board.clock_hz)
            return run_on_target(self.probe, self.board, self.firmware(), generated, inputs[:count],
                                 self.evaluation().outputs[:count], self.model.name,
                                 timeout_s=budget, power_monitor=self.power_monitor)
        return self._timed("target", run, lambda r: f"{r.images} images on {self.probe.unique_id}"
                                                     f" ({'flashed' if r.flash and r.flash.programmed else 'flash already current'}"
                                                     f"{f'; fast runs on {r.boards} virtual boards' if r.boards > 1 else ''}), "
                                                     f"{r.mismatched_images} differ")

    def power_trace(self):
        """The power monitor's trace of the timed inferences, if the target ran."""
        run = self._memo.peek("target")
        return run.power_trace if run is not None else None

    def target_run_if_done(self) -> OnTargetRun | None:
        """The run on the target if it has already happened (never starts one)."""
        return self._memo.peek("target")

    def swo_log(self) -> list[str]:
        """The target's ITM log lines, if it ran in this session."""
        run = self.target_run_if_done()
        return run.log_lines if run is not None else []

    def _timed_run(self) -> OnTargetRun:
        run = self.on_target()
        run.require_timed()
        if run.mismatched_images:
            run.require_bit_exact()
        return run

    def measure_latency_ms(self) -> Measurement:
        run = self._timed_run()
        cycles = run.median_cycles
        generated = self.generated()
        macs = generated.macs
        keras_macs = self.model.results().get("macs")
        band = self._cycle_band(run)
        if self.probe.is_virtual:
            evidence = Evidence.EMULATED
            model = cycle_model_class(self.board)
            computed = ("costed at both ends of the cycle model's open ranges for this "
                        "model's own instructions, widened for what the model leaves out"
                        if run.cycle_range is not None else "the core's fixed band")
            how = (f"DWT cycle count of one inference on the virtual {self.board.name} "
                   f"({self.board.core} cycle model from its TRM, {self.board.clock_hz / 1e6:g} MHz; "
                   f"uncertainty {100 * band[0]:.1f} % low / {100 * band[1]:.1f} % high, "
                   f"{computed}: {model.UNCERTAINTY_WHY})")
        else:
            evidence = Evidence.MEASURED
            how = (f"DWT cycle count of one inference on the {self.board.title} through "
                   f"{self.probe.description}, at {self.board.clock_hz / 1e6:g} MHz")
        return Measurement(
            "latency_ms", 1000.0 * cycles / self.board.clock_hz, "ms", evidence,
            f"{how}, median of {len(run.cycles)} inferences, read through pyOCD",
            samples=len(run.cycles),
            details={"cycles": run.cycles, "median_cycles": cycles,
                     "input_dependence": run.cycle_spread,
                     "layers": dict(zip(run.layer_names, run.layer_cycles)),
                     "layer_macs": dict(zip(generated.layers, generated.layer_macs)),
                     "layer_shapes": {layer: [list(i), list(o)] for layer, (i, o) in
                                      zip(generated.layers, generated.layer_shapes)},
                     "layer_kernels": dict(zip(generated.layers, generated.layer_kernels)),
                     "macs": macs, "macs_source": ".tflite graph", "keras_macs": keras_macs,
                     "macs_per_cycle": round(macs / cycles, 4) if macs else None,
                     "emulator_seconds_per_inference": run.seconds_per_timed_inference,
                     "emulator_seconds_per_fast_inference": run.seconds_per_fast_inference,
                     "images_on_target": run.images,
                     "probe": run.probe,
                     "flash_programmed": bool(run.flash and run.flash.programmed),
                     "flash_seconds": round(run.flash.seconds, 2) if run.flash else None,
                     "stack_high_water_bytes": run.stack_high_water_bytes,
                     "arena_high_water_bytes": run.arena_high_water_bytes},
            band=band)

    def measure_energy_mj(self) -> Measurement:
        run = self._timed_run()
        power_mw = self.board.power.run_power_mw(self.board.clock_hz)
        model = (f"{power_mw:.1f} mW = {self.board.power.supply_v} V x "
                 f"{self.board.power.run_current_ua_per_mhz} uA/MHz x "
                 f"{self.board.clock_hz / 1e6:g} MHz; source: {self.board.power.source}")
        details = {"run_power_mw": power_mw, "power_source": self.board.power.source}
        trace = run.power_trace
        marked = energy_windows(trace) if trace is not None else []
        windows = [w.energy_mj for w in marked]
        if windows:                     # a power monitor's trace, cut by the marker pin
            seconds = [w.duration_s for w in marked]
            details.update({"window_energies_mj": windows, "window_seconds": seconds,
                            "marker_pin": self.board.marker_pin, "monitor": trace.source,
                            "sample_rate_hz": round(1 / trace.sample_period_s)})
            how = ("current modelled as the board's run current" if
                   trace.evidence is Evidence.MODELLED else "current measured")
            return Measurement(
                "energy_mj", statistics.median(windows), "mJ", trace.evidence,
                f"energy over the inference window the firmware marks on {self.board.marker_pin}, "
                f"integrated from the power monitor's trace ({trace.source}; {how}, {model}), "
                f"median of {len(windows)} inferences",
                samples=len(windows), details=details,
                band=self._cycle_band(run))
        seconds = run.median_cycles / self.board.clock_hz
        details["inference_seconds"] = seconds
        return Measurement(
            "energy_mj", seconds * power_mw, "mJ", Evidence.MODELLED,
            f"{'emulated' if self.probe.is_virtual else 'measured'} inference time x modelled run "
            f"power ({model}); no power monitor on this probe", samples=len(run.cycles),
            details=details, band=self._cycle_band(run))

    def _cycle_band(self, run: OnTargetRun) -> tuple[float, float] | None:
        """The relative uncertainty of a figure derived from emulated cycles: the range
        the cycle model computed for these inferences plus its allowance for what it leaves
        out, or the core's fixed band where the model keeps no ranged totals; None on a
        physical core."""
        if not self.probe.is_virtual:
            return None
        model = cycle_model_class(self.board)
        if run.cycle_range is None:
            return model.UNCERTAINTY
        extra_low, extra_high = getattr(model, "UNMODELLED", (0.0, 0.0))
        return (round(run.cycle_range[0] + extra_low, 4),
                round(run.cycle_range[1] + extra_high, 4))
