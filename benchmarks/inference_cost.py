"""Inference cost: milliseconds per input megapixel through the consumers' steps, in this process.

Prints, for the real validation images (`--data`, as `training.evaluate`) or, without
them, 16 synthetic 512×512 images: total input megapixels, wall time, ms per megapixel
for the whole job (decode, scale, tiling, model, post-processing, results) and for the
model calls alone.

    python -m benchmarks.inference_cost [--model models/NuclearSegmentation/1] [--scale S]
                                        [--object-graph]

`--scale` sends a scale as an old client would (the kiosk's default is to estimate
it); `--object-graph` loads the SavedModel with `tf.saved_model.load` instead of the
session loader, for models TF-Serving cannot run (the kiosk's model before real-data
training).
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from consumers.jobs import JobRequest  # noqa: E402
from consumers.model_client import ModelSpec  # noqa: E402
from consumers.segmentation import result_files, segment_in_process  # noqa: E402
from consumers.settings import ConsumerSettings  # noqa: E402
from training.evaluate import DEFAULT_DATA, held_out_samples, load_model, tiff_bytes  # noqa: E402
from training.real_data import pair_paths  # noqa: E402
from training.train_nuclear_segmentation import DATA_ENV, DEFAULT_OUTPUT, OUTPUTS  # noqa: E402


def images(data: Path) -> list[tuple[str, bytes]]:
    """(name, TIFF bytes) of the validation images, or of synthetic ones when there are none."""
    if (data / "val").is_dir():
        return [(image.name, image.read_bytes()) for _, image, _ in pair_paths(data / "val")]
    return [(f"synthetic{i}.tif", tiff_bytes(image)) for i, (image, _) in enumerate(held_out_samples(16, (512, 512)))]


def object_graph_model(path: Path):
    """The SavedModel's signature through `tf.saved_model.load`."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    return lambda tiles: {name: value.numpy() for name, value in signature(image=tf.constant(tiles)).items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(DATA_ENV) or DEFAULT_DATA))
    parser.add_argument("--scale", type=float, help="send this scale (default: none, estimated)")
    parser.add_argument("--object-graph", action="store_true", help="load with tf.saved_model.load")
    args = parser.parse_args(argv)
    model = object_graph_model(args.model) if args.object_graph else load_model(args.model)
    model_seconds = 0.0

    def timed(tiles: np.ndarray) -> dict[str, np.ndarray]:
        nonlocal model_seconds
        started = time.perf_counter()
        outputs = model(tiles)
        model_seconds += time.perf_counter() - started
        return outputs

    settings = ConsumerSettings()
    spec = ModelSpec("NuclearSegmentation", 1, "image", np.dtype(np.float32), None, None, 1, OUTPUTS)
    inputs = images(args.data)
    model(np.zeros((1, 256, 256, 1), np.float32))  # warm-up
    megapixels, started = 0.0, time.perf_counter()
    for name, data in inputs:
        job = JobRequest(job_type="segmentation", input_file_name=f"uploads/{name}", original_name=name,
                         model_name=spec.name, scale=args.scale)
        image, labels = segment_in_process(data, job, settings, spec, timed)
        result_files("x", image, labels)
        megapixels += labels[0].size / 1e6
    elapsed = time.perf_counter() - started
    print(f"{len(inputs)} images, {megapixels:.1f} input megapixels, {elapsed:.1f} s: "
          f"{1000 * elapsed / megapixels:.0f} ms/MP whole job, {1000 * model_seconds / megapixels:.0f} ms/MP model calls")


if __name__ == "__main__":
    main()
