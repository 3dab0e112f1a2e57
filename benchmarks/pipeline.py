"""Pipeline benchmark: the in-process limit against the whole kiosk, on the same images.

Prints
  (a) in-process images/s: decode, pre-process, the SavedModel called directly,
      post-process and result encoding, one image after another in this process;
  (b) end-to-end images/s: the same images submitted at once through Redis,
      N consumer processes and the gRPC model server, first created → last done;
  their ratio (goal ≥ 0.85 on a 2-core machine), and
  the latency of one 512×512 image from submit to `done` on an idle kiosk
  against its in-process compute time (goal: at most compute + 50 ms).

Run: `make bench` or `python -m benchmarks.pipeline [--images 24] [--consumers N]`.
"""

import argparse
import io
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tifffile

from consumers.jobs import JobRequest
from consumers.model_client import ModelSpec
from consumers.processing.archive import zip_bytes
from consumers.segmentation import result_files, segment_in_process
from consumers.settings import ConsumerSettings
from consumers.storage import Storage
from tests.fixtures.consumers import ConsumerPool, JobClient
from tests.fixtures.model_server import PROJECT_ROOT, ModelServerProcess
from tests.fixtures.servers import RedisServer, wait_until
from training.synthetic import make_sample

MODEL = "NuclearSegmentation"
STEP_FIELDS = ("download_time", "prediction_time", "postprocess_time", "upload_time")


def synthetic_images(count: int, size: int) -> list[bytes]:
    """`count` different synthetic nuclei images as 16-bit TIFF bytes."""
    images = []
    for seed in range(count):
        pixels, _ = make_sample(np.random.default_rng(500 + seed), (size, size))
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, np.clip(pixels, 0, 65535).astype(np.uint16))
        images.append(buffer.getvalue())
    return images


class InProcess:
    """The consumer's own processing steps with the SavedModel called in this process."""

    def __init__(self, model_dir: Path, settings: ConsumerSettings) -> None:
        import tensorflow as tf

        self.predict_fn = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
        self.settings = settings
        self.spec = ModelSpec(MODEL, 1, "image", np.dtype(np.float32), None, None, 1,
                              ("fgbg", "inner_distance"))

    def run(self, data: bytes) -> bytes:
        request = JobRequest(job_type="segmentation", input_file_name="uploads/x.tif",
                             original_name="x.tif", model_name=MODEL)
        image, labels = segment_in_process(data, request, self.settings, self.spec, self.predict)
        return zip_bytes(result_files("x", image, labels))

    def predict(self, tiles: np.ndarray) -> dict[str, np.ndarray]:
        return {name: value.numpy() for name, value in self.predict_fn(image=tiles).items()}


def measure_in_process(pipeline: InProcess, images: list[bytes]) -> float:
    """Images/s over all images, one after another."""
    pipeline.run(images[0])  # warm-up: traces the model
    started = time.perf_counter()
    for data in images:
        pipeline.run(data)
    return len(images) / (time.perf_counter() - started)


@contextmanager
def running_kiosk(consumers: int, repository: Path) -> Iterator[JobClient]:
    """Redis, the model server and `consumers` consumer processes, warmed up."""
    redis_server = RedisServer()
    model_server = ModelServerProcess(repository).start()
    bucket = tempfile.mkdtemp(prefix="kiosk-bench-")
    pool = ConsumerPool(redis_server.url, bucket, model_server.address, KIOSK_LEASE_SECONDS="30")
    client = JobClient(redis_server.url, Storage(bucket))
    try:
        ids = pool.start(consumers)
        wait_until(lambda: all("serving queue" in pool.log(i) for i in ids), 300, "consumers")
        yield client
    finally:
        pool.stop()
        model_server.stop()
        client.close()
        redis_server.stop()


def measure_end_to_end(client: JobClient, images: list[bytes], consumers: int) -> float:
    """Images/s through the kiosk: all images submitted at once, first created → last done."""
    for key in [client.submit(images[0], "warm.tif") for _ in range(consumers)]:
        client.wait_final(key, 300)
    keys = [client.submit(data, f"image-{index}.tif") for index, data in enumerate(images)]
    jobs = [client.wait_final(key, 900) for key in keys]
    assert all(job["status"] == "done" for job in jobs), [j.get("reason") for j in jobs]
    span = max(float(j["finished_at"]) for j in jobs) - min(float(j["created_at"]) for j in jobs)
    return len(images) / span


def measure_latency(client: JobClient, pipeline: InProcess, image: bytes,
                    rounds: int = 7) -> tuple[float, float, dict[str, float]]:
    """Median idle latency and median in-process compute of one image, measured alternately
    so both see the same machine load; and the median step times the job reported."""
    latencies, computes, steps = [], [], {}
    for _ in range(rounds):
        started = time.perf_counter()
        pipeline.run(image)
        computes.append(time.perf_counter() - started)
        job = client.wait_final(client.submit(image, "single.tif"), 300)
        latencies.append(float(job["finished_at"]) - float(job["created_at"]))
        for field in STEP_FIELDS:
            steps.setdefault(field, []).append(float(job[field]))
    return (statistics.median(latencies), statistics.median(computes),
            {field: statistics.median(values) for field, values in steps.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--consumers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--models", type=Path, default=PROJECT_ROOT / "models",
                        help="model repository holding NuclearSegmentation/<version>/")
    args = parser.parse_args()
    images = synthetic_images(args.images, args.size)
    version = max((p for p in (args.models / MODEL).iterdir() if p.name.isdigit()),
                  key=lambda p: int(p.name))
    in_process = InProcess(version, ConsumerSettings())
    limit = measure_in_process(in_process, images)
    with running_kiosk(args.consumers, args.models) as client:
        throughput = measure_end_to_end(client, images, args.consumers)
        latency, compute, steps = measure_latency(client, in_process, images[0])
    print(f"images: {args.images} synthetic {args.size}x{args.size}, consumers: {args.consumers}, "
          f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    print(f"(a) in-process limit:        {limit:7.2f} images/s")
    print(f"(b) end-to-end (kiosk):      {throughput:7.2f} images/s")
    print(f"ratio (b)/(a):               {throughput / limit:7.2f}   (goal >= 0.85)")
    print(f"single {args.size}x{args.size} compute:      {compute * 1000:7.0f} ms (in-process, median)")
    print(f"single {args.size}x{args.size} idle latency: {latency * 1000:7.0f} ms (submit -> done, median)"
          f"   overhead {1000 * (latency - compute):+.0f} ms (goal <= +50 ms)")
    print("  the job's own steps: " + ", ".join(f"{field} {seconds * 1000:.0f} ms"
                                               for field, seconds in steps.items()))

if __name__ == "__main__":
    main()
