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
from consumers.services import Services, guarded

log = logging.getLogger(__name__)


@dataclass
class _Frame:
    """One 2-D frame of a job's image on its way through the model."""

    shape: tuple[int, int]
    preview: np.ndarray
    layout: TileLayout
    outputs: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Job:
    key: str
    request: JobRequest
    frames: list[_Frame]
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
    image = read_image(data, request.original_name, max_pixels=settings.max_image_pixels,
                       max_channels=settings.max_channels,
                       dimension_order=request.dimension_order or None)
    pixels = select_channels(image, list(request.channels) or None, spec.channels or 1,
                             model_name=request.model_name)
    tile = spec.tile_height or settings.tile_size
    frames, tiles = [], []
    for frame in pixels:
        normalised = normalize(frame)
        scaled = rescale(normalised, request.scale, max_pixels=settings.max_image_pixels)
        frame_tiles, layout = tile_image(scaled, tile=tile, overlap=min(settings.tile_overlap, tile // 2))
        frames.append(_Frame(frame.shape[:2], normalised.max(axis=-1), layout))
        tiles.append(frame_tiles)
    job = _Job(key, request, frames, np.concatenate(tiles))
    job.timings["download_time"] = download_time
    return job


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
    start = 0
    for job in group:
        for frame in job.frames:
            end = start + frame.layout.count
            frame.outputs = {name: values[start:end] for name, values in result.outputs.items()}
            start = end
        job.timings["prediction_time"] = elapsed
        job.predict_retries = result.retries
    return group


def _finish(services: Services, job: _Job) -> None:
    store, key, request = services.store, job.key, job.request
    store.set_status(key, JobStatus.POSTPROCESSING)
    started = time.monotonic()
    labels = np.stack([_labels(frame) for frame in job.frames])
    job.timings["postprocess_time"] = time.monotonic() - started

    store.set_status(key, JobStatus.SAVING)
    started = time.monotonic()
    stem = result_stem(request.original_name)
    overlays = [overlay_png(frame.preview, frame_labels)
                for frame, frame_labels in zip(job.frames, labels)]
    files = {f"{stem}_labels.tif": label_tiff(labels[0] if len(labels) == 1 else labels)}
    if len(overlays) == 1:
        files[f"{stem}_overlay.png"] = overlays[0]
    else:
        files.update({f"{stem}_overlay_{i:03d}.png": png for i, png in enumerate(overlays)})
    folder = f"output/{parse_job_key(key)[1]}"
    archive_key, preview_key = f"{folder}/{stem}.zip", f"{folder}/{stem}_overlay.png"
    archive = zip_bytes(files)
    services.retry.call(lambda: services.storage.write(preview_key, overlays[0]), "saving the preview")
    services.retry.call(lambda: services.storage.write(archive_key, archive), "saving the results")
    job.timings["upload_time"] = time.monotonic() - started

    finished = time.time()
    store.set_status(
        key, JobStatus.DONE, progress=100, output_file_name=archive_key,
        output_url=services.storage.download_url(archive_key, services.settings.signed_url_seconds),
        preview_file_name=preview_key, nuclei=sum(len(np.unique(f[f > 0])) for f in labels),
        finished_at=f"{finished:.6f}", total_time=f"{finished - request.created_at:.6f}",
        predict_retries=job.predict_retries,
        **{name: f"{seconds:.6f}" for name, seconds in job.timings.items()})


def _labels(frame: _Frame) -> np.ndarray:
    fgbg = stitch_tiles(frame.outputs["fgbg"], frame.layout)[..., 0]
    inner = stitch_tiles(frame.outputs["inner_distance"], frame.layout)[..., 0]
    return restore_labels(labels_from_predictions(fgbg, inner), frame.shape)


def result_stem(name: str) -> str:
    """A file-name stem for results, safe in any archive or bucket path."""
    stem = PurePosixPath(name.replace("\\", "/")).stem
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip("._")
    return safe or "image"
