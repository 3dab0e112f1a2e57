"""Run many jobs against a kiosk: N at a time, each uploaded, created, awaited, summarised."""

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from frontend.client.api import KioskClient, KioskError

IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".zip", ".ozx"}
ZARR_SUFFIX = ".zarr"  # a folder named so is one OME-Zarr image, uploaded zipped
SUMMARY_FIELDS = [
    "status", "reason", "failures", "output_url", "output_file_name", "created_at", "finished_at",
    "total_time", "total_jobs", "prediction_time", "predict_retries", "postprocess_time",
    "upload_time", "download_time", "children_upload_time", "cleanup_time",
    "nuclei", "estimated_diameter", "scale_used", "scale_source",
]


@dataclass(frozen=True)
class JobOptions:
    """What every job of a run asks for (None: the kiosk's default)."""

    job_type: str = "segmentation"
    model_name: str | None = None
    model_version: str | None = None
    scale: float | None = None
    image_mpp: float | None = None
    poll_seconds: float = 2.0
    expire_seconds: int = 3600
    preprocess: str = ""
    postprocess: str = ""

    def predict_body(self, uploaded_name: str) -> dict:
        body = {"jobType": self.job_type, "imageName": uploaded_name.removeprefix("uploads/"),
                "uploadedName": uploaded_name, "modelName": self.model_name,
                "modelVersion": self.model_version, "dataRescale": self.scale, "imageMpp": self.image_mpp,
                "preprocessFunction": self.preprocess or None, "postprocessFunction": self.postprocess or None}
        return {name: value for name, value in body.items() if value is not None}


@dataclass
class JobRun:
    """One input's journey; `error` is set when the client could not finish it."""

    source: Path
    key: str | None = None
    status: str | None = None
    fields: dict[str, str | None] = field(default_factory=dict)
    error: str | None = None
    latency_seconds: float | None = None
    result: Path | None = None

    @property
    def failed_images(self) -> list[str]:
        """The images of a zip job that failed (its result holds the others)."""
        return json.loads(self.fields.get("failures") or "[]")  # a JSON list: names may hold commas

    @property
    def succeeded(self) -> bool:
        return self.status == "done" and self.error is None and not self.failed_images

    @property
    def problem(self) -> str:
        """Why it failed, in one line."""
        if self.status == "done" and self.failed_images:
            return f"{len(self.failed_images)} image(s) failed: {', '.join(self.failed_images)}"
        reason = self.error or self.fields.get("reason") or self.status or "unknown"
        return reason.strip().splitlines()[-1] if reason.strip() else "unknown"


def collect_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; `.zarr` folders (OME-Zarr images) as given; other folders expanded to the
    images, zips and `.zarr` folders inside (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir() and path.suffix.lower() == ZARR_SUFFIX:
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(_inputs_in(path)))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return found


def _inputs_in(folder: Path):
    for path in folder.iterdir():
        if path.is_dir() and path.suffix.lower() == ZARR_SUFFIX:
            yield path
        elif path.is_dir():
            yield from _inputs_in(path)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            yield path


def _free_path(folder: Path, name: str, taken: set[Path]) -> Path:
    candidate, stem, suffix, number = folder / name, Path(name).stem, Path(name).suffix, 1
    while candidate in taken or candidate.exists():
        number += 1
        candidate = folder / f"{stem}-{number}{suffix}"
    taken.add(candidate)
    return candidate


class Runner:
    """Runs jobs with at most `concurrency` in flight; `on_finished` is called after each."""

    def __init__(self, client: KioskClient, options: JobOptions, concurrency: int,
                 download_to: Path | None = None, on_finished: Callable[[JobRun], None] = lambda run: None):
        self.client = client
        self.options = options
        self.slots = asyncio.Semaphore(concurrency)
        self.download_to = download_to
        self.on_finished = on_finished
        self._taken: set[Path] = set()

    async def run(self, sources: list[Path], uploaded_name: str | None = None) -> list[JobRun]:
        """One job per source; with `uploaded_name` every job reuses that upload (benchmarks)."""
        return list(await asyncio.gather(*(self._run(JobRun(source), uploaded_name) for source in sources)))

    async def _run(self, run: JobRun, uploaded_name: str | None) -> JobRun:
        async with self.slots:
            try:
                await self._steps(run, uploaded_name)
            except (KioskError, OSError) as error:
                run.error = str(error)
        self.on_finished(run)
        return run

    async def _steps(self, run: JobRun, uploaded_name: str | None) -> None:
        name = uploaded_name or await self.client.upload(run.source)
        run.key = await self.client.predict(self.options.predict_body(name))
        started = time.monotonic()
        run.status = await self.client.wait(run.key, self.options.poll_seconds)
        run.latency_seconds = time.monotonic() - started
        run.fields = await self.client.fields(run.key, SUMMARY_FIELDS)
        if run.status == "done" and self.download_to is not None and run.fields["output_url"]:
            output = run.fields["output_file_name"] or f"{run.source.stem}.zip"
            target = _free_path(self.download_to, Path(output).name, self._taken)
            run.result = await self.client.download(run.fields["output_url"], target)
        await self.client.expire(run.key, self.options.expire_seconds)
