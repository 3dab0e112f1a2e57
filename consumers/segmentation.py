"""Segmentation jobs: download → pre-process → predict → post-process → save.

Jobs claimed together are predicted together: their tiles share Predict
batches, so a GPU sees full batches when the queue is deep. Each job still
succeeds or fails on its own.
"""

import logging
import time
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import PurePosixPath

import numpy as np

from consumers.errors import JobInputError
from consumers.jobs import JobRequest, JobStatus, parse_job_key
from consumers.processing.archive import label_tiff, zip_bytes
from consumers.processing.channels import select_channels
from consumers.processing.imageio import read_image
from consumers.processing.normalize import normalize
from consumers.processing.overlay import overlay_png
from consumers.processing.postprocess import labels_from_predictions
from consumers.processing.resize import rescale, restore_labels
from consumers.processing.tiling import TileLayout, stitch_tiles, tile_image
from consumers.model_client import ModelServerUnavailable, ModelSpec
from consumers.services import Services, defer, guarded
from consumers.settings import ConsumerSettings

log = logging.getLogger(__name__)

PREVIEW_NAME = "preview.png"


@dataclass
class Frame:
    """One 2-D frame of an image on its way through the model.

    shape: the frame's original (H, W); preview: its normalised grey pixels for the
    overlay; tiles/layout: what the model is fed; outputs: what it answered per tile.
    """

    shape: tuple[int, int]
    preview: np.ndarray
    layout: TileLayout
    tiles: np.ndarray
    outputs: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Job:
    key: str
    request: JobRequest
    frames: list[Frame]
    tiles: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    predict_retries: int = 0


def run_segmentation(services: Services, keys: list[str]) -> None:
    """Segment the images of jobs `keys`; every job ends `done` or `failed`."""
    prepared = [job for key in keys if (job := guarded(services, key, _prepare, services, key))]
    by_model = lambda job: (job.request.model_name, job.request.model_version)  # noqa: E731
    for _, group in groupby(sorted(prepared, key=by_model), key=by_model):
        predicted = _predict_isolated(services, list(group))
        for job in predicted:
            guarded(services, job.key, _finish, services, job)


def _prepare(services: Services, key: str) -> _Job:
    store, settings = services.store, services.settings
    request = JobRequest.from_fields(store.get(key))
    store.set_status(key, JobStatus.PREPROCESSING)
    started = time.monotonic()
    data = services.retry.call(lambda: _read_input(services, request), "downloading the input")
    download_time = time.monotonic() - started
    spec = services.model.metadata(request.model_name, request.model_version or None)
    frames = preprocess(data, request, settings, spec)
    job = _Job(key, request, frames, np.concatenate([frame.tiles for frame in frames]))
    job.timings["download_time"] = download_time
    return job


def preprocess(data: bytes, request: JobRequest, settings: ConsumerSettings,
               spec: ModelSpec) -> list[Frame]:
    """Decode an uploaded image into normalised, rescaled, tiled frames for `spec`'s model."""
    image = read_image(data, request.original_name, max_pixels=settings.max_image_pixels,
                       max_channels=settings.max_channels,
                       dimension_order=request.dimension_order or None)
    pixels = select_channels(image, list(request.channels) or None, spec.channels or 1,
                             model_name=request.model_name)
    tile = spec.tile_height or settings.tile_size
    frames = []
    for frame in pixels:
        normalised = normalize(frame)
        scaled = rescale(normalised, request.scale, max_pixels=settings.max_image_pixels)
        tiles, layout = tile_image(scaled, tile=tile, overlap=min(settings.tile_overlap, tile // 2))
        frames.append(Frame(frame.shape[:2], normalised.max(axis=-1), layout, tiles))
    return frames


def _read_input(services: Services, request: JobRequest) -> bytes:
    try:
        return services.storage.read(request.input_file_name)
    except FileNotFoundError:
        raise JobInputError(f"the uploaded file '{request.original_name}' is no longer in storage "
                            "(uploads expire; please upload it again)") from None


def _predict_isolated(services: Services, group: list[_Job]) -> list[_Job]:
    """Predict a group's tiles in shared batches; if that fails, each job alone.

    Falling back to one job at a time keeps one bad job from failing the others.
    """
    if len(group) > 1:
        try:
            return _predict(services, group)
        except ModelServerUnavailable as error:  # the server, not a job: all wait for it
            for job in group:
                defer(services, job.key, error)
            return []
        except Exception:
            log.warning("shared prediction of %d jobs failed; predicting each job alone", len(group))
    return [job for job in group if guarded(services, job.key, _predict, services, [job])]


def _predict(services: Services, group: list[_Job]) -> list[_Job]:
    request = group[0].request
    for job in group:
        services.store.set_status(job.key, JobStatus.PREDICTING)
    started = time.monotonic()
    result = services.model.predict(request.model_name, request.model_version or None,
                                    np.concatenate([job.tiles for job in group]))
    elapsed = time.monotonic() - started
    assign_outputs([frame for job in group for frame in job.frames], result.outputs)
    for job in group:
        job.timings["prediction_time"] = elapsed
        job.predict_retries = result.retries
    return group


def _finish(services: Services, job: _Job) -> None:
    store, key, request = services.store, job.key, job.request
    store.set_status(key, JobStatus.POSTPROCESSING)
    started = time.monotonic()
    labels = postprocess(job.frames)
    job.timings["postprocess_time"] = time.monotonic() - started

    store.set_status(key, JobStatus.SAVING)
    started = time.monotonic()
    files = result_files(result_stem(request.original_name), job.frames, labels)
    folder = f"output/{parse_job_key(key)[1]}"
    archive_key = f"{folder}/{result_stem(request.original_name)}.zip"
    preview_key = f"{folder}/{PREVIEW_NAME}"
    archive = zip_bytes(files)
    preview = next(data for name, data in files.items() if name.endswith(".png"))
    services.retry.call(lambda: services.storage.write(preview_key, preview), "saving the preview")
    services.retry.call(lambda: services.storage.write(archive_key, archive), "saving the results")
    job.timings["upload_time"] = time.monotonic() - started

    finished = time.time()
    store.set_status(
        key, JobStatus.DONE, progress=100, output_file_name=archive_key,
        output_url=services.storage.download_url(archive_key, services.settings.signed_url_seconds),
        preview_file_name=preview_key, nuclei=sum(len(np.unique(f[f > 0])) for f in labels),
        finished_at=f"{finished:.6f}", total_time=f"{finished - request.created_at:.6f}",
        predict_retries=job.predict_retries, total_jobs=1,
        **{name: f"{seconds:.6f}" for name, seconds in job.timings.items()})


def assign_outputs(frames: list[Frame], outputs: dict[str, np.ndarray]) -> None:
    """Hand each frame its share of a batch's outputs (the tiles were sent in frame order)."""
    start = 0
    for frame in frames:
        end = start + frame.layout.count
        frame.outputs = {name: values[start:end] for name, values in outputs.items()}
        start = end


def postprocess(frames: list[Frame]) -> np.ndarray:
    """Instance labels (F, H, W) at the original size from the frames' model outputs."""
    return np.stack([_labels(frame) for frame in frames])


def result_files(stem: str, frames: list[Frame], labels: np.ndarray) -> dict[str, bytes]:
    """The result archive's members: the label image and an overlay preview per frame."""
    overlays = [overlay_png(frame.preview, frame_labels) for frame, frame_labels in zip(frames, labels)]
    files = {f"{stem}_labels.tif": label_tiff(labels[0] if len(labels) == 1 else labels)}
    if len(overlays) == 1:
        files[f"{stem}_overlay.png"] = overlays[0]
    else:
        files.update({f"{stem}_overlay_{i:03d}.png": png for i, png in enumerate(overlays)})
    return files


def _labels(frame: Frame) -> np.ndarray:
    fgbg = stitch_tiles(frame.outputs["fgbg"], frame.layout)[..., 0]
    inner = stitch_tiles(frame.outputs["inner_distance"], frame.layout)[..., 0]
    return restore_labels(labels_from_predictions(fgbg, inner), frame.shape)


def result_stem(name: str) -> str:
    """A file-name stem for results, safe in any archive or bucket path."""
    stem = PurePosixPath(name.replace("\\", "/")).stem
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip("._")
    return safe or "image"
