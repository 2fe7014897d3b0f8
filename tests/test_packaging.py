"""mcuqual as a user gets it: a wheel installed into another environment, used from a
project folder of the user's own, far from this checkout."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _run(command: list, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MCUQUAL_CACHE_DIR")}
    return subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_an_installed_wheel_qualifies_a_model_in_a_project_of_its_own(tmp_path, cifar_dir):
    wheels = tmp_path / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, REPO],
                 tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = wheels.glob("mcuqual-*.whl")
    # a fresh environment; its dependencies (TensorFlow, pyOCD, ...) are borrowed from this one
    # through a path entry (which loads no .pth of this one, so not its editable mcuqual)
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", venv], tmp_path).returncode == 0
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp_path).stdout.strip())
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel],
                     tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]

    project = tmp_path / "my-project"
    project.mkdir()
    assert _run([venv / "bin" / "mcuqual-init"], project).returncode == 0
    model = project / "models" / "ds_cnn_xs"
    model.mkdir()
    for name in ("model_int8.tflite", "card.toml"):
        shutil.copy(REPO / "models" / "ds_cnn_xs" / name, model / name)
    where = _run([python, "-c", "import mcuqual.common.paths as p; print(p.__file__); "
                  "print(p.firmware_dir())"], project).stdout.split()
    assert where[0].startswith(str(venv)) and where[1].startswith(str(venv))

    result = _run([python, "-m", "pytest", "qualification", "-p", "no:cacheprovider",
                   f"--dataset-dir={cifar_dir}", "--samples=2", "--model=ds_cnn_xs"], project,
                  timeout=900)
    doc = json.loads((project / "reports" / "latest" / "qualification.json").read_text())
    records = {r["requirement"]: r for r in doc["results"]}
    assert records["REQ-ACC"]["value"] == pytest.approx(0.7259)       # results.json's figure
    assert records["REQ-WEIGHTS"]["verdict"] == "pass"
    assert records["REQ-LATENCY"]["evidence"] == "emulated"
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout[-3000:]
