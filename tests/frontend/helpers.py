"""Test data and servers for the API: synthetic images, a running API, a stand-in consumer."""

import asyncio
import io
import os
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import redis
import tifffile
import uvicorn
from PIL import Image
from skimage.draw import disk
from skimage.measure import label

from consumers.jobs import JobStatus
from consumers.processing.diameter import choose_scale
from consumers.processing.measurements import measurements_csv
from consumers.processing.normalize import normalize
from consumers.processing.overlay import grey_png, overlay_png
from consumers.jobstore import JobStore
from consumers.queue import JobQueue
from consumers.storage import Storage
from frontend.core.config import FrontendSettings
from frontend.core.metrics import ApiMetrics
from frontend.main import create_app
from frontend.services.bucket import Bucket
from frontend.services.catalogue import ModelCatalogue
from frontend.services.jobs import Jobs
from tests.fixtures.servers import free_port, wait_until

PROJECT_ROOT = Path(__file__).parents[2]
KIOSK = str(Path(sys.executable).with_name("kiosk"))
"""The `kiosk` console script of this virtualenv."""


def run_async(function):
    """`asyncio.run(function())` in a thread of its own: Playwright's sync API (the portal
    tests) may hold an event loop in the main thread of this test process."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(function())).result(60)


def jobs_service(settings: FrontendSettings, client) -> Jobs:
    """The API's `Jobs` over `client`, wired as the app's lifespan wires it: the settings'
    storage, a model list read afresh on every call."""
    bucket = Bucket(Storage.from_settings(settings), settings)
    return Jobs(client, bucket, ModelCatalogue(bucket, 0), settings, ApiMetrics())
DISK_CENTRES = ((16, 16), (16, 48), (48, 30))


def nuclei_image(size: int = 64) -> np.ndarray:
    """A uint16 image with one bright disk per centre in DISK_CENTRES."""
    image = np.full((size, size), 100, np.uint16)
    for centre in DISK_CENTRES:
        image[disk(centre, 7, shape=image.shape)] = 3000
    return image


def tiff_bytes(image: np.ndarray | None = None) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, nuclei_image() if image is None else image)
    return buffer.getvalue()


def png_bytes(image: np.ndarray | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((nuclei_image() // 12).astype(np.uint8) if image is None else image).save(buffer, "PNG")
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def add_model(bucket_dir: Path, name: str, version: str) -> None:
    """A model version in local storage, as the model list sees it."""
    folder = bucket_dir / "models" / name / version
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "saved_model.pb").write_bytes(b"a SavedModel would be here")


class ApiThread:
    """The app under real uvicorn in a thread of the test process (the app object stays reachable)."""

    def __init__(self, settings: FrontendSettings) -> None:
        self.app = create_app(settings)
        self.url = f"http://127.0.0.1:{settings.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=settings.port, log_config=None,
                                access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), 20, "API server")
        if not self.server.started:
            raise RuntimeError("the API did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


class ApiProcess:
    """`python -m frontend` in a subprocess with `KIOSK_*` settings from `env`."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = int(env.get("KIOSK_PORT") or free_port())
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "frontend"], cwd=PROJECT_ROOT, stdout=self.log,
            stderr=subprocess.STDOUT, env={**os.environ, **env, "KIOSK_PORT": str(self.port)})
        wait_until(self._healthy, 120, f"python -m frontend (log: {log_path})")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"python -m frontend exited: {self.log_path.read_text()}")
        try:
            return httpx.get(f"{self.url}/api/health-check", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)
        self.log.close()


class StandInConsumer:
    """Plays a consumer over the real queue: claims jobs, labels bright objects, stores the
    result archive and its previews (the consumers' own overlay, measurements and scale
    estimate), and writes the job fields as consumers do.
    Inputs whose name contains `fail` end `failed` with a two-line reason."""

    def __init__(self, redis_url: str, bucket_dir: Path) -> None:
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.queue = JobQueue(self.redis, "segmentation")
        self.store = JobStore(self.redis, ttl_seconds=3600)
        self.bucket_dir = bucket_dir
        self.stopping = threading.Event()
        self.queue.ensure_group()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            for delivery in self.queue.claim("stand-in", 4, 0.2):
                self._process(delivery.job_key)
                self.queue.ack(delivery)

    def _process(self, key: str) -> None:
        job = self.store.get(key)
        self.store.set_status(key, JobStatus.PREDICTING)
        if "fail" in job["original_name"]:
            self.store.fail(key, "Traceback: decoder error\nthe file is not a readable TIFF image")
            return
        data = (self.bucket_dir / job["input_file_name"]).read_bytes()
        try:
            image = tifffile.imread(io.BytesIO(data)) if data[:2] in (b"II", b"MM") \
                else np.asarray(Image.open(io.BytesIO(data)))
        except Exception as error:  # the stand-in reads plain images only
            self.store.fail(key, f"the stand-in consumer cannot read this file: {error}")
            return
        labels = label(image > image.mean()).astype(np.uint16)
        stem = Path(job["original_name"]).stem
        grey = image if image.ndim == 2 else image.max(axis=-1)
        overlay, plain = overlay_png(grey, labels if labels.ndim == 2 else labels.max(axis=-1)), grey_png(grey)
        folder = f"output/{key.split(':')[1]}"
        output, preview, preview_image = f"{folder}/{stem}.zip", f"{folder}/{stem}_overlay.png", f"{folder}/preview_image.png"
        scale = choose_scale(None, None, normalize(grey[..., None])[..., 0], pixels=grey.size, max_pixels=10**9)
        files = {f"{stem}_labels.tif": tiff_bytes(labels), f"{stem}_overlay.png": overlay}
        if labels.ndim == 2:
            files[f"{stem}_measurements.csv"] = measurements_csv(labels[None], grey[None, ..., None], None)
        for name, content in ((output, zip_bytes(files)), (preview, overlay), (preview_image, plain)):
            (self.bucket_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (self.bucket_dir / name).write_bytes(content)
        diameter = {"estimated_diameter": f"{scale.estimated_diameter:.1f}"} if scale.estimated_diameter else {}
        self.store.set_status(key, JobStatus.DONE, output_file_name=output, preview_file_name=preview,
                              preview_image_file_name=preview_image, scale_used=f"{scale.scale:.4g}",
                              scale_source=str(scale.source), nuclei=str(int(labels.max())), **diameter,
                              output_url=f"http://stale.example/{output}", finished_at=f"{time.time():.6f}",
                              total_time="0.1", prediction_time="0.05")

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)
        self.redis.close()
