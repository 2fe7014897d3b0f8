#!/usr/bin/env bash
# Set up mcuqual on a fresh machine: a virtual environment in .venv with the
# project installed (editable). Safe to run again; it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
    for candidate in python3.11 python3.12 python3.10 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 12)))'; then
            echo "$candidate"; return 0
        fi
    done
    echo "mcuqual needs Python 3.10-3.12 (TensorFlow and tflite-micro wheels)" >&2
    return 1
}

# Debian packages: the Cortex-M toolchain the firmware is built with; Node.js for the Allure
# report generator; Chromium to look at the rendered report.
packages=""
command -v arm-none-eabi-gcc >/dev/null 2>&1 || packages="$packages gcc-arm-none-eabi libnewlib-arm-none-eabi"
command -v npm >/dev/null 2>&1 || packages="$packages nodejs npm"
command -v chromium >/dev/null 2>&1 || packages="$packages chromium"
if [ -n "$packages" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "[setup] installing$packages"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
    elif command -v sudo >/dev/null 2>&1; then
        echo "[setup] installing$packages (sudo)"
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
    else
        echo "[setup] please install:$packages" >&2
        exit 1
    fi
fi
command -v cc >/dev/null 2>&1 || { echo "[setup] a host C compiler (gcc) is needed" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
    python=$(pick_python)
    echo "[setup] creating .venv with $($python --version)"
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
echo "[setup] installing mcuqual and its dependencies into .venv"
.venv/bin/python -m pip install --quiet -e ".[dev]"
if [ ! -x node_modules/.bin/allure ]; then
    echo "[setup] installing the Allure report generator (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
echo "[setup] done: .venv/bin/pytest qualification --board=stm32l4r9"
