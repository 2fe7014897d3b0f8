"""`mcuqual-train`: train zoo models outside pytest (long runs, resumable)."""
from __future__ import annotations

import argparse
import os
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
    parser.add_argument("--teachers-dir", type=Path, default=None,
                        help="where a recipe's teacher model folder is (default: the "
                             "checkout's models/)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for training (TensorFlow's pools, XLA, the input "
                             "pipeline); default: the framework's choice (all cores)")
    parser.add_argument("--requantize", action="store_true",
                        help="do not train: quantize the committed model.keras again and rewrite "
                             "model_int8.tflite and results.json (after a calibration change)")
    args = parser.parse_args(argv)
    if args.threads:
        limit_threads(args.threads)
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
                outcome = training.train(model, data, epochs=args.epochs, verbose=2,
                                         teachers_dir=args.teachers_dir or root / "models",
                                         threads=args.threads)
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


def limit_threads(threads: int) -> None:
    """Keep training on `threads` cores (a shared machine): before TensorFlow or JAX start."""
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ[name] = str(threads)
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
                               f"{'true' if threads > 1 else 'false'} "
                               f"intra_op_parallelism_threads={threads}").strip()
    try:
        import tensorflow as tf
    except ImportError:  # a JAX-only environment
        return
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


if __name__ == "__main__":
    sys.exit(train_main())
