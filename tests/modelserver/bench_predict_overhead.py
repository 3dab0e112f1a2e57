"""Benchmark: Predict round trip through `python -m modelserver` versus the SavedModel in-process.

Run: `python -m tests.modelserver.bench_predict_overhead [--model-repository DIR --model NAME]`.
Without a repository it measures the tiny model (pure serialisation and gRPC cost).
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from consumers.model_client import ModelClient
from tests.fixtures.model_server import TINY_MODEL, ModelServerProcess, make_tiny_model


def interleaved_medians_ms(runs: dict[str, Callable[[], object]], repeats: int,
                           warmup: int = 2) -> dict[str, float]:
    """Median wall time of each run; the runs alternate so that they share the machine's load."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_number in range(warmup + repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            if round_number >= warmup:
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-repository", type=Path)
    parser.add_argument("--model", default=TINY_MODEL)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    repository = args.model_repository
    if repository is None:
        repository = Path(tempfile.mkdtemp(prefix="bench-models-"))
        make_tiny_model(repository / TINY_MODEL / "1")
    versions = sorted(int(path.name) for path in (repository / args.model).iterdir()
                      if path.name.isdigit())
    batch = np.random.default_rng(0).random((args.batch_size, 256, 256, 1), dtype=np.float32)

    import tensorflow as tf
    serving = tf.saved_model.load(str(repository / args.model / str(versions[-1]))).signatures[
        "serving_default"]
    server = ModelServerProcess(repository, max_batch_size=args.batch_size).start()
    try:
        with ModelClient(server.address, max_batch_size=args.batch_size) as client:
            medians = interleaved_medians_ms({
                "in-process": lambda: {name: tensor.numpy()
                                       for name, tensor in serving(image=batch).items()},
                "grpc": lambda: client.predict(args.model, None, batch),
            }, args.repeats)
    finally:
        server.stop()
    in_process, remote = medians["in-process"], medians["grpc"]

    megabytes = batch.nbytes / 2**20
    print(f"{args.model}, batch of {args.batch_size} float32 256x256 tiles "
          f"({megabytes:.0f} MiB in, outputs back), median of {args.repeats}:")
    print(f"  in-process SavedModel call: {in_process:8.1f} ms")
    print(f"  Predict over gRPC:          {remote:8.1f} ms")
    print(f"  overhead:                   {remote - in_process:8.1f} ms")


if __name__ == "__main__":
    main()
