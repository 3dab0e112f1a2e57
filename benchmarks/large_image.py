"""Large-image benchmark: wall time, megapixels/s and peak RSS of one consumer per image size.

Images of 10, 40, 160 and 640 megapixels (a synthetic 1024×1024 nuclei image tiled,
written as tiled 16-bit TIFFs straight into the bucket) go one after another through
one consumer process, Redis and the gRPC model server (NuclearSegmentation), after a
4-megapixel image through the small-image path (whole in memory) as the reference.
For each it prints the job's wall time (created → done), megapixels per second, that
as a ratio of the reference's, and the consumer's peak resident memory so far (VmHWM
from /proc; sizes run smallest first, so it is that size's peak). Goals: peak RSS
under 2 GB at every size, megapixels per second at least 0.8 of the reference's.

Run: `python -m benchmarks.large_image [--sizes 10 40 160 640] [--whole]`.
"""

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
import tifffile

from consumers.jobs import JobRequest, JobStatus, new_job_key
from consumers.sizing import MALLOC_ENV
from consumers.storage import Storage
from tests.fixtures.consumers import ConsumerPool, JobClient
from tests.fixtures.model_server import PROJECT_ROOT, ModelServerProcess
from tests.fixtures.servers import RedisServer, wait_until
from training.synthetic import make_sample

MODEL = "NuclearSegmentation"
SIDE = 1024  # px: the synthetic image that is tiled
REFERENCE_MP = 4  # through the small-image path
STREAMED_ABOVE = 8_000_000  # px: the consumer's large_image_pixels here


def write_tiled(path: Path, megapixels: int) -> tuple[int, int]:
    """Write a square-ish tiled TIFF of about `megapixels` MP (whole 1024² pieces), one piece at a time."""
    piece = np.clip(make_sample(np.random.default_rng(0), (SIDE, SIDE))[0], 0, 65535).astype(np.uint16)
    height = max(1, round(math.sqrt(megapixels * 1e6) / SIDE)) * SIDE
    width = max(1, round(megapixels * 1e6 / height / SIDE)) * SIDE
    pieces = (piece for _ in range(height // SIDE) for _ in range(width // SIDE))
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, pieces, shape=(height, width), dtype=np.uint16, tile=(SIDE, SIDE),
                     bigtiff=True, photometric="minisblack", compression="zlib")
    return height, width


def peak_rss_mb(pid: int) -> float:
    """VmHWM of process `pid` in MB."""
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 40, 160, 640], help="megapixels")
    parser.add_argument("--models", type=Path, default=PROJECT_ROOT / "models")
    parser.add_argument("--whole", action="store_true", help="every size through the small-image path (whole "
                                                             "image in memory), for comparison; otherwise "
                                                             "every size is streamed")
    args = parser.parse_args()
    limit = 2 * max(args.sizes) * 1_000_000
    redis_server = RedisServer()
    model_server = ModelServerProcess(args.models).start()
    bucket = tempfile.mkdtemp(prefix="kiosk-bench-large-")
    pool = ConsumerPool(redis_server.url, bucket, model_server.address, KIOSK_LEASE_SECONDS="30", **MALLOC_ENV,
                        KIOSK_MAX_IMAGE_PIXELS=str(limit),
                        KIOSK_LARGE_IMAGE_PIXELS=str(limit if args.whole else STREAMED_ABOVE))
    client = JobClient(redis_server.url, Storage(bucket))
    try:
        (consumer,) = pool.start(1)
        wait_until(lambda: "serving queue" in pool.log(consumer), 300, "the consumer")
        pid = pool.processes[consumer].pid
        print(f"{'MP':>6} {'size':>13} {'wall s':>8} {'MP/s':>6} {'ratio':>6} {'peak RSS MB':>12}")
        reference = None
        for megapixels in [REFERENCE_MP, *sorted(args.sizes)]:
            key = new_job_key("segmentation")
            upload = f"uploads/{key.split(':')[1]}/large.tif"
            height, width = write_tiled(Path(bucket) / upload, megapixels)
            request = JobRequest(job_type="segmentation", input_file_name=upload, original_name="large.tif",
                                 model_name=MODEL, scale=1.0)
            client.queue.submit(key, {**request.to_fields(), "status": JobStatus.NEW.value})
            job = client.wait_final(key, 6 * 3600)
            assert job["status"] == "done", job.get("reason")
            wall = float(job["finished_at"]) - float(job["created_at"])
            pixels = height * width / 1e6
            reference = reference or pixels / wall
            print(f"{pixels:6.0f} {width:>6}×{height:<6} {wall:8.1f} {pixels / wall:6.2f} "
                  f"{pixels / wall / reference:6.2f} {peak_rss_mb(pid):12.0f}", flush=True)
    finally:
        pool.stop()
        model_server.stop()
        client.close()
        redis_server.stop()


if __name__ == "__main__":
    main()
