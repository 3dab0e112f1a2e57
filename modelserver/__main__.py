"""Command line: `python -m modelserver --model-repository DIR [--port 8500] ...`."""

import argparse
import logging
import os
from pathlib import Path

# TensorFlow's C++ INFO lines would bury our one line per startup and model load;
# this must be set before tensorflow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from modelserver.server import serve  # noqa: E402


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _directory(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a directory")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m modelserver",
        description="Serve the SavedModels at DIR/<ModelName>/<version>/ over TensorFlow "
                    "Serving's gRPC API (PredictionService, ModelService).")
    parser.add_argument("--model-repository", type=_directory, required=True, metavar="DIR")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8500, help="0 picks a free port")
    parser.add_argument("--max-batch-size", type=_positive_int, default=16,
                        help="larger batches are refused with TF-Serving's batching error")
    parser.add_argument("--workers", type=_positive_int, default=4,
                        help="threads answering requests")
    parser.add_argument("--poll-seconds", type=float, default=5.0,
                        help="how often to look for new model versions (0: only when a "
                             "request names an unknown one)")
    args = parser.parse_args()
    logging.basicConfig(level=os.environ.get("LOGLEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(args.model_repository, host=args.host, port=args.port,
          max_batch_size=args.max_batch_size, workers=args.workers,
          poll_seconds=args.poll_seconds)


if __name__ == "__main__":
    main()
