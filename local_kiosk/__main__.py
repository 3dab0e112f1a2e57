"""`make run`: Redis, the model server, N consumers and the API on this machine.

Data lives under KIOSK_HOME (default ./.kiosk); KIOSK_PORT (default 8080) is the
portal's port. On start it segments a synthetic sample image so a newcomer sees
a result at once. Ctrl-C stops everything.
"""

import logging
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import redis
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from consumers.jobstore import JobStore
from consumers.queue import JobQueue
from consumers.sizing import MALLOC_ENV
from consumers.storage import Storage
from local_kiosk.readiness import free_port, wait_until
from local_kiosk.samples import ensure_samples, submit_file, wait_for
from local_kiosk.supervisor import Supervisor

PROJECT = Path(__file__).resolve().parents[1]
log = logging.getLogger("kiosk")


class LocalSettings(BaseSettings):
    """How the one-machine kiosk is laid out (env prefix KIOSK_)."""

    model_config = SettingsConfigDict(env_prefix="KIOSK_", extra="ignore")

    home: Path = Path(".kiosk")
    port: int = 8080
    consumers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    redis_port: int = Field(0, description="0 picks a free port")
    model_server_port: int = Field(0, description="0 picks a free port")
    max_batch_size: int = 16
    sample: bool = Field(True, description="segment a sample image on start")
    default_model: str = "NuclearSegmentation"


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    settings = LocalSettings()
    home = settings.home.resolve()
    bucket = home / "bucket"
    _install_models(bucket / "models")
    supervisor = Supervisor(PROJECT, home / "logs")
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())

    redis_port = settings.redis_port or free_port()
    (home / "redis").mkdir(parents=True, exist_ok=True)
    redis_child = supervisor.start("redis", [
        shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
        "--bind", "127.0.0.1", "--dir", str(home / "redis"), "--appendonly", "yes",
        "--save", ""], {})
    model_port = settings.model_server_port or free_port()
    model_child = supervisor.start("model-server", [
        sys.executable, "-m", "modelserver", "--model-repository", str(bucket / "models"),
        "--port", str(model_port), "--max-batch-size", str(settings.max_batch_size)], {})
    public_url = f"http://127.0.0.1:{settings.port}"
    shared_env = {
        "KIOSK_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "KIOSK_STORAGE_URL": str(bucket),
        "KIOSK_PUBLIC_URL": public_url, "KIOSK_DEFAULT_MODEL": settings.default_model,
    }
    workers = [supervisor.start(f"consumer-{index + 1}", [sys.executable, "-m", "consumers"], {
        **shared_env, **MALLOC_ENV, "KIOSK_MODEL_SERVER": f"127.0.0.1:{model_port}", "KIOSK_METRICS_PORT": "0",
        "KIOSK_MAX_BATCH_SIZE": str(settings.max_batch_size)}) for index in range(settings.consumers)]
    api = supervisor.start("api", [sys.executable, "-m", "frontend"],
                           {**shared_env, "KIOSK_PORT": str(settings.port)})
    log.info("kiosk starting in %s: redis :%d, model server :%d, %d consumer(s), API :%d (logs: %s)",
             home, redis_port, model_port, settings.consumers, settings.port, home / "logs")
    threading.Thread(target=_announce_portal, args=(public_url,), daemon=True).start()

    client = redis.Redis(port=redis_port, decode_responses=True)
    wait_until(lambda: _pings(client), 30, "redis-server")
    if settings.sample:
        threading.Thread(target=_show_sample, daemon=True, args=(
            home, client, Storage(str(bucket), public_url=public_url), settings)).start()
    try:
        while not stopping.wait(0.5):
            supervisor.restart_dead()
    finally:
        log.info("stopping: consumers finish or hand back their jobs")
        supervisor.stop([*workers, api])
        supervisor.stop([model_child])
        supervisor.stop([redis_child])
        log.info("stopped")


def _install_models(models: Path) -> None:
    """Copy the models shipped in the repository into the local bucket's `models/`."""
    models.mkdir(parents=True, exist_ok=True)
    for version in sorted((PROJECT / "models").glob("*/*/saved_model.pb")):
        target = models / version.parent.relative_to(PROJECT / "models")
        if not target.exists():
            shutil.copytree(version.parent, target)


def _announce_portal(public_url: str) -> None:
    """Print the portal's URL once the API answers."""
    wait_until(lambda: _answers(f"{public_url}/api/health-check"), 300, "the API")
    log.info("portal ready: %s  (API docs: %s/docs)", public_url, public_url)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def _show_sample(home: Path, client: redis.Redis, storage: Storage, settings: LocalSettings) -> None:
    """Segment a sample image and say where its result is."""
    sample = ensure_samples(home / "samples")[0]
    queue = JobQueue(client, "segmentation")
    queue.ensure_group()
    started = time.monotonic()
    key = submit_file(queue, storage, sample, settings.default_model)
    log.info("segmenting sample %s (job %s)", sample, key)
    job = wait_for(JobStore(client, ttl_seconds=86400), key, timeout=300)
    if job.get("status") == "done":
        log.info("sample done in %.1f s: %s nuclei; result %s, preview %s",
                 time.monotonic() - started, job.get("nuclei"),
                 storage.path(job["output_file_name"]), storage.path(job["preview_file_name"]))
    else:
        log.error("sample job ended %s: %s", job.get("status"), job.get("reason", "no reason"))


if __name__ == "__main__":
    main()
