"""Jobs as clients see them: created from `/api/predict`, read back field by field or whole."""

import asyncio
import logging
import math
import re
from datetime import datetime, timezone

import redis.asyncio as aredis

from consumers.jobs import (JOB_TYPES, READABLE_FIELDS, JobRequest, JobStatus, is_job_key,
                            new_job_key, parse_job_key)
from consumers.jobstore import finished_children_key
from frontend.core.config import FrontendSettings
from frontend.core.errors import BadRequest
from frontend.core.logging import note_for_access_log
from frontend.core.metrics import ApiMetrics
from frontend.core.security import is_ascii_number
from frontend.schemas import JobForm, JobView, PredictRequest
from frontend.services.bucket import Bucket
from frontend.services.catalogue import ModelCatalogue
from frontend.services.redis_async import AsyncJobQueue, AutoPipeline
from frontend.services.waiting import WAITING_STATUSES, ModelServerView

logger = logging.getLogger(__name__)

STAGE_PROGRESS = {
    JobStatus.NEW: 0, JobStatus.STARTED: 5, JobStatus.PREPROCESSING: 15,
    JobStatus.PREDICTING: 40, JobStatus.POSTPROCESSING: 75, JobStatus.SAVING: 90,
    JobStatus.DONE: 100,
}
"""How far a single job is at each status (a zip job reports its own `progress`)."""
TIME_FIELDS = frozenset({"created_at", "finished_at", "updated_at"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NO_FORM = JobForm()


def iso_time(value: str | None) -> str | None:
    """An epoch-seconds field as ISO 8601 UTC (what DeepCell Kiosk clients parse); else unchanged."""
    try:
        moment = datetime.fromtimestamp(float(value), timezone.utc)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return value
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _int(value: str | None) -> int | None:
    return int(value) if value and is_ascii_number(value) else None


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _progress(status: str | None, progress: str | None) -> int | None:
    if status == JobStatus.DONE:
        return 100
    return _int(progress) if progress else STAGE_PROGRESS.get(status)


class Jobs:
    """Creates, reads and expires job hashes; checks inputs and models before queueing."""

    def __init__(self, client: aredis.Redis, bucket: Bucket, catalogue: ModelCatalogue,
                 settings: FrontendSettings, metrics: ApiMetrics) -> None:
        self.redis = client
        self.bucket = bucket
        self.catalogue = catalogue
        self.default_model = settings.default_model
        self.metrics = metrics
        self.pipeline = AutoPipeline(client)  # concurrent calls share round trips and a connection
        self.waiting: ModelServerView | None = None  # set when the app can read its namespace
        self.queues = {job_type: AsyncJobQueue(client, job_type, self.pipeline) for job_type in JOB_TYPES}
        self._created = {job_type: metrics.jobs_created.labels(job_type) for job_type in JOB_TYPES}

    async def start(self) -> None:
        """Create each job type's stream and consumer group."""
        for queue in self.queues.values():
            await queue.ensure_group()

    async def create(self, request: PredictRequest) -> str:
        """Check a predict request, then create and queue its job; returns the job key."""
        input_key = await self._input_key(request)
        model_name, model_version = await self._model(request.model_name, request.model_version)
        form = request.job_form or _NO_FORM
        scale = form.scale if form.scale is not None else request.data_rescale
        job = JobRequest(
            job_type=request.job_type, input_file_name=input_key, original_name=request.image_name,
            model_name=model_name, model_version=model_version, scale=scale,
            image_mpp=form.image_mpp if form.image_mpp is not None else request.image_mpp,
            dimension_order=form.dimension_order or "", channels=tuple(form.selected_channels or ()),
            segmentation_type=form.segmentation_type or "",
            preprocess_function=request.preprocess_function or "",
            postprocess_function=request.postprocess_function or "",
            label=request.data_label or "", url=request.image_url or "")
        key = new_job_key(request.job_type)
        if not await self.queues[request.job_type].submit(key, {**job.to_fields(), "status": JobStatus.NEW}):
            raise RuntimeError(f"job key {key} already exists")
        self._created[request.job_type].inc()
        # One log line per submission: the access-log line carries the job and its model.
        note_for_access_log(job=key, model=f"{model_name}:{model_version}")
        return key

    async def _input_key(self, request: PredictRequest) -> str:
        if not self._is_upload_key(f"uploads/{request.image_name}"):
            raise BadRequest(f"imageName '{request.image_name}' is not a valid file name")
        key = request.uploaded_name or f"uploads/{request.image_name}"
        if not self._is_upload_key(key):
            raise BadRequest(f"uploadedName '{key}' is not a storage key under uploads/")
        if not await self.bucket.is_file(key):
            if await self.bucket.exists(key):  # a folder such as `uploads/<id>`: no input either
                raise BadRequest(f"'{key}' is a folder, not an uploaded file; name the file inside it")
            raise BadRequest(f"no uploaded file '{key}'; upload it with POST /api/upload first")
        return key

    def _is_upload_key(self, key: str) -> bool:
        return key.startswith("uploads/") and not _CONTROL.search(key) and self.bucket.is_valid_key(key)

    async def _model(self, name: str | None, version: str | None) -> tuple[str, str]:
        models = await self.catalogue.models()
        name = name or self.default_model
        versions = models.get(name)
        if versions is None:
            raise BadRequest(f"unknown model '{name}'; models in storage: {_listing(models)}")
        if version is None:
            return name, versions[-1]
        match = next((v for v in versions if int(v) == int(version)), None)
        if match is None:
            raise BadRequest(f"model '{name}' has no version {version}; models in storage: {_listing(models)}")
        return name, match

    async def fields(self, key: str, names: list[str]) -> list[str | None] | None:
        """The values of readable fields of a job (None when the job does not exist).

        `output_url` is signed afresh from `output_file_name`; times are ISO 8601.
        """
        _check_key(key)
        unreadable = [name for name in names if name not in READABLE_FIELDS]
        if unreadable:
            raise BadRequest(f"field '{unreadable[0]}' cannot be read; readable fields: "
                             f"{', '.join(sorted(READABLE_FIELDS))}")
        wanted = [*names, "status", "output_file_name"]
        values = dict(zip(wanted, await self.pipeline.execute("HMGET", key, *wanted)))
        if values["status"] is None:
            return None
        return [await self._shown(name, values) for name in names]

    async def _shown(self, name: str, values: dict[str, str | None]) -> str | None:
        if name == "output_url" and values["output_file_name"]:
            return await self.bucket.link(values["output_file_name"])
        return iso_time(values[name]) if name in TIME_FIELDS else values[name]

    async def status(self, key: str) -> str | None:
        """A job's status (None when it does not exist)."""
        _check_key(key)
        return await self.pipeline.execute("HGET", key, "status")

    async def expire(self, key: str, seconds: int) -> bool:
        """Let a job (and its zip bookkeeping) expire in `seconds`; False when it does not exist."""
        _check_key(key)
        existed, _ = await asyncio.gather(self.pipeline.execute("EXPIRE", key, seconds),
                                          self.pipeline.execute("EXPIRE", finished_children_key(key), seconds))
        return bool(existed)

    async def view(self, key: str) -> JobView | None:
        """A job with its results and, for a zip job, its children (None when it does not exist)."""
        _check_key(key)
        fields = await self.pipeline.execute("HGETALL", key)
        if not fields:
            return None
        children_keys = [child for child in fields.get("children", "").split(",") if child]
        rows = await asyncio.gather(*(self.pipeline.execute("HGETALL", child) for child in children_keys))
        children = [await self._view(child, row, []) for child, row in zip(children_keys, rows) if row]
        view = await self._view(key, fields, children)
        if self.waiting is not None and view.status in WAITING_STATUSES:
            view.waiting = await self.waiting.reason()
        return view

    async def _view(self, key: str, fields: dict[str, str], children: list[JobView]) -> JobView:
        status = fields.get("status")
        output, preview = fields.get("output_file_name"), fields.get("preview_file_name")
        model = fields.get("model_name")
        return JobView(
            key=key, jobType=parse_job_key(key)[0], name=fields.get("original_name"), status=status,
            progress=_progress(status, fields.get("progress")),
            reason=fields.get("reason"), failures=fields.get("failures"),
            model=f"{model}:{fields.get('model_version', '')}" if model else None,
            createdAt=iso_time(fields.get("created_at")), finishedAt=iso_time(fields.get("finished_at")),
            outputFileName=output,
            outputUrl=await self.bucket.link(output) if output else fields.get("output_url"),
            previewUrl=await self.bucket.link(preview) if preview else None,
            previewImageUrl=await self.bucket.link(plain) if (plain := fields.get("preview_image_file_name")) else None,
            nuclei=_int(fields.get("nuclei")), parent=fields.get("parent") or None,
            estimatedDiameter=_float(fields.get("estimated_diameter")), scaleUsed=_float(fields.get("scale_used")),
            scaleSource=fields.get("scale_source") or None, pixelSizeUm=_float(fields.get("pixel_size_um")),
            totalJobs=_int(fields.get("total_jobs")),
            children=children)


def _listing(models: dict[str, list[str]]) -> str:
    return "; ".join(f"{n} (versions {', '.join(v)})" for n, v in models.items()) or "none"


def _check_key(key: str) -> None:
    if not is_job_key(key):
        raise BadRequest(f"'{key}' is not a job key")
