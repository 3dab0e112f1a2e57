"""The `kiosk` console script against a real `python -m frontend` process."""

import json
import re
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import redis

from tests.fixtures.servers import free_port
from tests.frontend.helpers import KIOSK, ApiProcess, StandInConsumer, tiff_bytes

TOKEN = "cli-test-token-0123456789abcdef"


@pytest.fixture
def api_process(redis_url, bucket_dir, tmp_path):
    """Start `python -m frontend` with extra settings; stopped after the test."""
    started = []

    def start(**env: str) -> ApiProcess:
        started.append(ApiProcess({"KIOSK_REDIS_URL": redis_url, "KIOSK_STORAGE_URL": str(bucket_dir),
                                   **env}, tmp_path / f"api-{len(started)}.log"))
        return started[-1]

    yield start
    for process in started:
        process.stop()


def kiosk(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([KIOSK, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=env)


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    (folder / "plate 2").mkdir(parents=True)
    (folder / "a.tif").write_bytes(tiff_bytes())
    (folder / "plate 2" / "b.tif").write_bytes(tiff_bytes())
    (folder / "notes.txt").write_text("not an image: skipped when a folder is expanded")
    return folder


def test_submit_folder_waits_and_downloads(api_process, consumer, images, tmp_path):
    api = api_process()
    host = api.url.removeprefix("http://")  # no scheme: the client adds it
    result = kiosk("--url", host, "submit", str(images), "--output", "out", "--poll", "0.2", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 job(s): 2 done, 0 failed" in result.stdout
    done = [line for line in result.stdout.splitlines() if line.startswith("done")]
    assert len(done) == 2 and all(re.search(r"\(\d+ nuclei, ~[\d.]+ px across, scale [\d.]+ \(estimated\)\)$", line)
                                  for line in done), done
    for stem in ("a", "b"):
        with zipfile.ZipFile(tmp_path / "out" / f"{stem}.zip") as archive:
            assert f"{stem}_labels.tif" in archive.namelist()


def test_a_failed_job_sets_the_exit_status(api_process, consumer, images, tmp_path):
    api = api_process()
    (images / "fail-me.tif").write_bytes(tiff_bytes())
    unsupported = tmp_path / "doc.txt"
    unsupported.write_text("hello")
    result = kiosk("--url", api.url, "submit", str(images), str(unsupported), "--output", "out",
                   "--poll", "0.2", "--quiet", cwd=tmp_path)
    assert result.returncode == 1
    assert "FAILED" in result.stdout and "the file is not a readable TIFF image" in result.stdout
    assert "only TIFF, PNG, JPEG or ZIP files are accepted" in result.stdout
    assert "4 job(s): 2 done, 2 failed" in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.zip", "b.zip"]


def test_same_names_do_not_overwrite_results(api_process, consumer, tmp_path):
    api = api_process()
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "cells.tif").write_bytes(tiff_bytes())
    result = kiosk("--url", api.url, "submit", "x", "y", "--output", "out", "--poll", "0.2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cells-2.zip", "cells.zip"]


def test_token_from_the_environment(api_process, consumer, images, tmp_path):
    api = api_process(KIOSK_AUTH_TOKEN=TOKEN)
    refused = kiosk("--url", api.url, "submit", str(images / "a.tif"), cwd=tmp_path,
                    env={"PATH": "/usr/bin:/bin"})
    assert refused.returncode == 1 and "bearer token" in refused.stdout
    accepted = kiosk("--url", api.url, "submit", str(images / "a.tif"), "--poll", "0.2", cwd=tmp_path,
                     env={"PATH": "/usr/bin:/bin", "KIOSK_AUTH_TOKEN": TOKEN})
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert (tmp_path / "results" / "a.zip").exists()


def test_nothing_to_run_is_exit_status_2(images, tmp_path):
    unreachable = kiosk("--url", f"127.0.0.1:{free_port()}", "submit", str(images), cwd=tmp_path)
    assert unreachable.returncode == 2 and "cannot reach" in unreachable.stderr
    missing = kiosk("submit", str(tmp_path / "nope.tif"), cwd=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert kiosk("submit", str(empty), cwd=tmp_path).returncode == 2
    assert kiosk("submit", cwd=tmp_path).returncode == 2
    assert kiosk("benchmark", str(images / "a.tif"), "--jobs", "0", cwd=tmp_path).returncode == 2


def test_benchmark_reports_throughput_latency_and_timings(api_process, consumer, images, tmp_path):
    api = api_process()
    result = kiosk("--url", api.url, "benchmark", str(images / "a.tif"), "--jobs", "6",
                   "--concurrency", "3", "--poll", "0.1", "--report", "bench.json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 jobs, concurrency 3" in result.stdout and "latency p50" in result.stdout
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["num_jobs"] == 6 and report["failures"] == 0
    assert report["images_per_second"] > 0
    assert 0 < report["latency_seconds"]["p50"] <= report["latency_seconds"]["p99"]
    jobs = report["job_data"]
    assert len({job["job_id"] for job in jobs}) == 6
    assert all(job["status"] == "done" and job["prediction_time"] == 0.05 for job in jobs)
    assert all(job["download_url"].startswith(api.url) for job in jobs)
    # Every key of kiosk-client's Job.json(), with its defaults.
    kiosk_client_keys = {"input_file", "status", "total_time", "total_jobs", "download_url", "created_at",
                         "finished_at", "prediction_time", "postprocess_time", "upload_time",
                         "download_time", "predict_retries", "cleanup_time", "children_upload_time",
                         "model", "postprocess", "preprocess", "reason", "job_id"}
    assert all(kiosk_client_keys <= set(job) for job in jobs)
    assert all(job["preprocess"] == "" and job["postprocess"] == "" for job in jobs)


class GatedConsumer(StandInConsumer):
    """A stand-in consumer that finishes jobs only `hold` at a time: it waits until it holds
    `hold`, watches the queue for a while for jobs beyond them, then finishes them all.
    `most` is the largest number of outstanding jobs (the queue's length) it saw."""

    WATCH_SECONDS = 1.0  # long enough for a client ignoring its concurrency to submit more

    def __init__(self, redis_url: str, bucket_dir: Path, hold: int, total: int) -> None:
        self.hold, self.total, self.most = hold, total, 0
        super().__init__(redis_url, bucket_dir)

    def _run(self) -> None:
        held, finished = [], 0
        while not self.stopping.is_set() and finished < self.total:
            held += self.queue.claim("gated", self.total, 0.05)
            self.most = max(self.most, self.queue.length())
            if len(held) < min(self.hold, self.total - finished):
                continue
            watch_until = time.monotonic() + self.WATCH_SECONDS
            while time.monotonic() < watch_until and self.most <= self.hold:
                self.most = max(self.most, self.queue.length())
                self.stopping.wait(0.02)
            for delivery in held:
                self._process(delivery.job_key)
                self.queue.ack(delivery)
            finished, held = finished + len(held), []


def test_benchmark_keeps_its_concurrency_in_flight_and_expires_jobs(api_process, redis_url, bucket_dir,
                                                                    images, tmp_path):
    gated = GatedConsumer(redis_url, bucket_dir, hold=3, total=6)
    api = api_process()
    started = time.monotonic()
    try:
        result = kiosk("--url", api.url, "benchmark", str(images / "a.tif"), "--jobs", "6",
                       "--concurrency", "3", "--expire", "600", "--poll", "0.05", "--report", "bench.json",
                       "--quiet", cwd=tmp_path)
    finally:
        gated.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert gated.most == 3  # never more than --concurrency at once, and that many
    stored = redis.Redis.from_url(redis_url, decode_responses=True)
    jobs = json.loads((tmp_path / "bench.json").read_text())["job_data"]
    assert len(jobs) == 6 and {job["status"] for job in jobs} == {"done"}
    for job in jobs:  # --expire, counted from when the client asked for it
        assert 600 - (time.monotonic() - started) - 1 <= stored.ttl(job["job_id"]) <= 600


def test_benchmark_records_the_processing_functions(api_process, consumer, images, tmp_path, redis_url):
    api = api_process()
    result = kiosk("--url", api.url, "benchmark", str(images / "a.tif"), "--jobs", "2", "--poll", "0.1",
                   "--preprocess", "normalize", "--postprocess", "watershed", "--expire", "600",
                   "--report", "bench.json", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = json.loads((tmp_path / "bench.json").read_text())["job_data"]
    assert [(job["preprocess"], job["postprocess"]) for job in jobs] == [("normalize", "watershed")] * 2
    stored = redis.Redis.from_url(redis_url, decode_responses=True)
    for job in jobs:  # what the report says is what the jobs asked for
        assert stored.hmget(job["job_id"], ["preprocess_function", "postprocess_function"]) \
            == ["normalize", "watershed"]


def test_models_command(api_process, tmp_path):
    api = api_process()
    result = kiosk("--url", api.url, "models", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["Mesmer: 7", "NuclearSegmentation: 1, 2"]
