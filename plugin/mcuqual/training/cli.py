"""`mcuqual-train`: train zoo models outside pytest (long runs, resumable)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mcuqual.common.cache import Cache
from mcuqual.data.cifar10 import load_cifar10, resolve_directory
from mcuqual.common.errors import McuqualError
from mcuqual.common.paths import find_repo_root


def train_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcuqual-train", description=__doc__)
    parser.add_argument("models", nargs="+", help="model names (folders under models/)")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--dataset-dir", default=None)
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe (smoke runs)")
    parser.add_argument("--no-verify-dataset", action="store_true")
    parser.add_argument("--trained-on", default=None, help="where it ran, for the card")
    parser.add_argument("--requantize", action="store_true",
                        help="do not train: quantize the committed model.keras again and rewrite "
                             "model_int8.tflite and results.json (after a calibration change)")
    args = parser.parse_args(argv)
    root = find_repo_root(Path.cwd())
    try:
        from mcuqual.training import artifacts
        from mcuqual.training import train as training
        from mcuqual.model import zoo

        directory, looked = resolve_directory(args.dataset_dir, root)
        if directory is None:
            raise McuqualError("CIFAR-10 not found; looked in " + ", ".join(map(str, looked)))
        data = load_cifar10(directory, verify_checksums=not args.no_verify_dataset)
        cache = Cache.default(root)
        for model in zoo.select(args.models_dir or root / "models", args.models):
            if args.requantize:
                results = artifacts.requantize(model, data, cache)
            else:
                outcome = training.train(model, data, epochs=args.epochs, verbose=2)
                results = artifacts.finalize(
                    model, data, cache, epochs=outcome.epochs_total,
                    training_seconds=sum(outcome.history.get("epoch_seconds", [])),
                    trained_on=args.trained_on)
            print(f"[mcuqual] {model.name}: float {results['float_top1']:.4f}, "
                  f"int8 {results['int8_top1']:.4f} (drop {results['ptq_drop_points']:.2f} "
                  f"points), arena {results['tflm_arena_bytes']} B")
    except McuqualError as exc:
        print(f"mcuqual-train: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(train_main())
