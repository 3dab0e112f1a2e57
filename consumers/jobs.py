"""The job schema: one Redis hash per job, as the DeepCell Kiosk kept it.

Fields written at creation describe the request; `status` moves the job along;
the result and timing fields are what clients (and kiosk-client's benchmark
mode) read. Every value is a string in Redis.
"""

import re
import time
import uuid
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from enum import StrEnum

from consumers.filetypes import is_ome_zarr_name

JOB_TYPES = ("segmentation",)
"""Job types; each is a queue (a Redis stream) served by its own consumers."""

_KEY = re.compile(r"(?P<type>[a-z][a-z0-9-]*):(?P<id>[0-9a-f]{32})")  # used with fullmatch
_CHILD_NAMESPACE = uuid.UUID("6f2c1d0e-4b7a-4f39-9a53-2d7c1e8b5a10")


class JobStatus(StrEnum):
    """Where a job is. `done` and `failed` are final."""

    NEW = "new"
    STARTED = "started"
    PREPROCESSING = "pre-processing"
    PREDICTING = "predicting"
    POSTPROCESSING = "post-processing"
    SAVING = "saving-results"
    WAITING = "waiting"
    DONE = "done"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED)


# The image scales a job may ask for (the API refuses others with 400).
MIN_SCALE = 0.1
MAX_SCALE = 10.0

RESULT_FIELDS = (
    "status", "progress", "reason", "failures", "output_url", "output_file_name",
    "created_at", "finished_at", "total_time", "total_jobs", "prediction_time",
    "predict_retries", "postprocess_time", "upload_time", "download_time",
    "children_upload_time", "cleanup_time", "updated_at", "children", "attempts", "identity",
    "preview_file_name", "preview_image_file_name", "nuclei", "estimated_diameter", "scale_used", "scale_source", "pixel_size_um",
)
"""Fields the pipeline writes after creation."""


@dataclass(frozen=True)
class JobRequest:
    """What a client asked for; written once when the job is created."""

    job_type: str
    input_file_name: str
    original_name: str
    model_name: str
    model_version: str = ""
    scale: float | None = None  # None: estimated from the image
    image_mpp: float | None = None  # µm per pixel, if the client knows it
    dimension_order: str = ""
    channels: tuple[int, ...] = ()
    segmentation_type: str = ""
    preprocess_function: str = ""
    postprocess_function: str = ""
    label: str = ""
    url: str = ""
    parent: str = ""
    created_at: float = field(default_factory=time.time)

    @property
    def is_zip(self) -> bool:
        """A zip of images (fanned out), not a zipped OME-Zarr image (`.zarr.zip`, one image)."""
        return self.original_name.lower().endswith(".zip") and not is_ome_zarr_name(self.original_name)

    def to_fields(self) -> dict[str, str]:
        """The hash fields for Redis (strings only)."""
        # A shallow read of the fields: asdict's deep copy is a measurable part of a submission.
        values = {f.name: getattr(self, f.name) for f in _FIELDS}
        values["channels"] = ",".join(str(c) for c in self.channels)
        values["scale"] = "" if self.scale is None else repr(float(self.scale))
        values["image_mpp"] = "" if self.image_mpp is None else repr(float(self.image_mpp))
        values["created_at"] = repr(float(self.created_at))
        return {k: str(v) for k, v in values.items()}

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> "JobRequest":
        """Read a request back from its hash fields."""
        channels = tuple(int(c) for c in fields.get("channels", "").split(",") if c.strip())
        return cls(
            job_type=fields["job_type"],
            input_file_name=fields["input_file_name"],
            original_name=fields.get("original_name", ""),
            model_name=fields["model_name"],
            model_version=fields.get("model_version", ""),
            scale=_optional_float(fields.get("scale")),
            image_mpp=_optional_float(fields.get("image_mpp")),
            dimension_order=fields.get("dimension_order", ""),
            channels=channels,
            segmentation_type=fields.get("segmentation_type", ""),
            preprocess_function=fields.get("preprocess_function", ""),
            postprocess_function=fields.get("postprocess_function", ""),
            label=fields.get("label", ""),
            url=fields.get("url", ""),
            parent=fields.get("parent", ""),
            created_at=float(fields.get("created_at") or time.time()),
        )


_FIELDS = dataclass_fields(JobRequest)


def _optional_float(text: str | None) -> float | None:
    return float(text) if text else None


PRIVATE_FIELDS = frozenset({"identity"})
"""Fields clients never read: `identity` names the consumer (its host and PID, a pod's name)."""

READABLE_FIELDS = (frozenset(JobRequest.__dataclass_fields__) | frozenset(RESULT_FIELDS)) - PRIVATE_FIELDS
"""Every field a client may read with `/api/redis`; nothing else is exposed."""


def new_job_key(job_type: str) -> str:
    """A fresh, unguessable job key `<jobType>:<32 hex>`."""
    if job_type not in JOB_TYPES:
        raise ValueError(f"unknown job type {job_type!r}; known: {', '.join(JOB_TYPES)}")
    return f"{job_type}:{uuid.uuid4().hex}"


def child_job_key(parent_key: str, index: int) -> str:
    """The key of a zip job's index-th child: the same every time, so fan-out is idempotent."""
    job_type = parse_job_key(parent_key)[0]
    return f"{job_type}:{uuid.uuid5(_CHILD_NAMESPACE, f'{parent_key}/{index}').hex}"


def parse_job_key(key: str) -> tuple[str, str]:
    """Split a job key into (job type, id); ValueError when it is not one."""
    match = _KEY.fullmatch(key)  # `$` would let a trailing newline pass
    if match is None or match["type"] not in JOB_TYPES:
        raise ValueError(f"{key!r} is not a job key")
    return match["type"], match["id"]


def is_job_key(key: str) -> bool:
    """True when `key` has the shape of a job key of a known type."""
    try:
        parse_job_key(key)
    except ValueError:
        return False
    return True
