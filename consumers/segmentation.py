"""Segmentation jobs: download → pre-process → predict → post-process → save.

Jobs claimed together are predicted together: their tiles share Predict
batches, so a GPU sees full batches when the queue is deep. Each job still
succeeds or fails on its own.

A job without a scale is rescaled so that its nuclei are the size the model was
trained at (`consumers.processing.diameter`); when the nuclei the model finds are
still far from that size, the job is rescaled by them and predicted once more.
"""

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path, PurePosixPath

import numpy as np

from consumers import sizing
from consumers.errors import JobInputError
from consumers.filetypes import is_ome_zarr_name
from consumers.jobs import JobRequest, JobStatus, parse_job_key
from consumers.processing.archive import label_tiff, zip_bytes
from consumers.processing.channels import select_channels
from consumers.processing.diameter import ScaleChoice, choose_scale, refined_scale
from consumers.processing.imageio import read_image
from consumers.processing.large import Header, LargeResult, probe, segment_large, zip_files
from consumers.processing.measurements import measurements_csv
from consumers.processing.messages import image_size, pixel_count
from consumers.processing.normalize import normalize
from consumers.processing.overlay import grey_png, overlay_png
from consumers.processing.postprocess import labels_from_outputs
from consumers.processing.resize import rescale, restore_labels
from consumers.processing.tiling import TileLayout, predict_in_batches, tile_image
from consumers.model_client import ModelServerUnavailable, ModelSpec
from consumers.services import Services, defer, guarded
from consumers.settings import ConsumerSettings

log = logging.getLogger(__name__)

PREVIEW_NAME = "preview.png"  # the first frame with the nuclei outlined
PREVIEW_IMAGE_NAME = "preview_image.png"  # the same without outlines, for the portal's toggle


@dataclass
class Frame:
    """One 2-D frame of an image on its way through the model.

    raw: the frame's selected channels (H, W, C) as uploaded, for the measurements;
    normalised: the same scaled to [0, 1]; tiles/layout: what the model is fed at the
    job's scale; outputs: what it answered per tile; labels: the instance labels at the
    model's scale, once post-processed.
    """

    raw: np.ndarray
    normalised: np.ndarray
    layout: TileLayout
    tiles: np.ndarray
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    labels: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """The frame's original (H, W)."""
        return self.raw.shape[:2]


@dataclass
class Preprocessed:
    """An image ready for the model: its frames, the scale they were resampled by, its pixel size."""

    frames: list[Frame]
    scale: ScaleChoice
    pixel_size_um: float | None

    @property
    def tiles(self) -> np.ndarray:
        """Every frame's tiles, in frame order."""
        return np.concatenate([frame.tiles for frame in self.frames])


@dataclass
class _Job:
    key: str
    request: JobRequest
    spec: ModelSpec
    image: Preprocessed
    timings: dict[str, float] = field(default_factory=dict)
    predict_retries: int = 0


def run_segmentation(services: Services, keys: list[str]) -> None:
    """Segment the images of jobs `keys`; every job ends `done` or `failed`."""
    prepared = [job for key in keys if (job := guarded(services, key, _prepare, services, key))]
    by_model = lambda job: (job.request.model_name, job.request.model_version)  # noqa: E731
    for _, group in groupby(sorted(prepared, key=by_model), key=by_model):
        predicted = _predict_isolated(services, list(group))
        rescaled = [job for job in predicted if guarded(services, job.key, _rescale_if_off, services, job)]
        predicted = [job for job in predicted if job not in rescaled] + _predict_isolated(services, rescaled)
        for job in predicted:
            guarded(services, job.key, _finish, services, job)


def _prepare(services: Services, key: str) -> _Job | None:
    """A job's image ready for the model; None when it was a large image, segmented here and then."""
    store, settings = services.store, services.settings
    request = JobRequest.from_fields(store.get(key))
    store.set_status(key, JobStatus.PREPROCESSING)
    if is_ome_zarr_name(request.original_name):  # read lazily whatever its size
        _segment_large(services, key, request)
        return None
    header = services.retry.call(lambda: _probe(services, request), "reading the input")
    if header is not None and header.pixels > settings.large_image_pixels:
        _refuse_unstreamable(services, request, header)
        _segment_large(services, key, request)
        return None
    started = time.monotonic()
    data = services.retry.call(lambda: _read_input(services, request), "downloading the input")
    download_time = time.monotonic() - started
    spec = services.model.metadata(request.model_name, request.model_version or None)
    job = _Job(key, request, spec, preprocess(data, request, settings, spec))
    job.timings["download_time"] = download_time
    return job


def preprocess(data: bytes, request: JobRequest, settings: ConsumerSettings, spec: ModelSpec) -> Preprocessed:
    """Decode an uploaded image into normalised, rescaled, tiled frames for `spec`'s model.

    The scale is the job's own, else the pixel size's (the job's, else the file's),
    else the one that makes the first frame's nuclei the model's size.
    """
    image = read_image(data, request.original_name, max_pixels=sizing.pixel_limit(settings),
                       max_channels=settings.max_channels,
                       dimension_order=request.dimension_order or None)
    pixels = select_channels(image, list(request.channels) or None, spec.channels or 1,
                             model_name=request.model_name)
    pixel_size = request.image_mpp or image.pixel_size_um
    normalised = [normalize(frame) for frame in pixels]
    choice = choose_scale(request.scale, pixel_size, normalised[0].max(axis=-1),
                          pixels=pixels.shape[1] * pixels.shape[2], max_pixels=sizing.whole_scaled_pixels(settings))
    frames = [Frame(raw, frame, *_tiled(frame, choice.scale, settings, spec))
              for raw, frame in zip(pixels, normalised)]
    return Preprocessed(frames, choice, pixel_size)


def _tiled(normalised: np.ndarray, scale: float, settings: ConsumerSettings,
           spec: ModelSpec) -> tuple[TileLayout, np.ndarray]:
    tile = spec.tile_height or settings.tile_size
    scaled = rescale(normalised, scale, max_pixels=sizing.whole_scaled_pixels(settings))
    tiles, layout = tile_image(scaled, tile=tile, overlap=min(settings.tile_overlap, tile // 2))
    return layout, tiles


def rescale_if_off(image: Preprocessed, settings: ConsumerSettings, spec: ModelSpec) -> bool:
    """Re-tile `image` at a refined scale if the nuclei predicted in its first frame are far
    from the model's size (see `refined_scale`); True if it was, and needs predicting again."""
    first = image.frames[0]
    first.labels = frame_labels(first)
    better = refined_scale(image.scale, first.labels, pixels=first.raw.shape[0] * first.raw.shape[1],
                           max_pixels=sizing.whole_scaled_pixels(settings))
    if better is None:
        return False
    image.scale = better
    for frame in image.frames:
        frame.layout, frame.tiles = _tiled(frame.normalised, better.scale, settings, spec)
        frame.outputs, frame.labels = {}, None
    return True


def _rescale_if_off(services: Services, job: _Job) -> bool:
    first_scale, started = job.image.scale.scale, time.monotonic()
    rescaled = rescale_if_off(job.image, services.settings, job.spec)
    job.timings["postprocess_time"] = time.monotonic() - started
    if rescaled:
        log.info("job %s: nuclei far from the model's size at scale %.3g; predicting again at %.3g",
                 job.key, first_scale, job.image.scale.scale)
    return rescaled


def _read_input(services: Services, request: JobRequest) -> bytes:
    try:
        return services.storage.read(request.input_file_name)
    except FileNotFoundError:
        raise _missing(request) from None


def _probe(services: Services, request: JobRequest) -> Header | None:
    try:
        with services.storage.open(request.input_file_name) as stream:
            return probe(stream)
    except FileNotFoundError:
        raise _missing(request) from None


def _missing(request: JobRequest) -> JobInputError:
    return JobInputError(f"the uploaded file '{request.original_name}' is no longer in storage "
                         "(uploads expire; please upload it again)")


def _refuse_unstreamable(services: Services, request: JobRequest, header: Header) -> None:
    """Fail a large image from its header alone: over the limit, not streamable, or too big for
    the scratch space."""
    name, settings = request.original_name, services.settings
    sizing.check_size(name, header.width, header.height, header.frames, settings)
    if not header.streamable:
        size = image_size(header.width, header.height, header.frames)
        raise JobInputError(f"the image '{name}' is {size} = {pixel_count(header.pixels)}; the limit for stacks, "
                            f"PNG and JPEG images is {pixel_count(settings.large_image_pixels)}: above it only "
                            "single-frame TIFF and OME-Zarr images can be processed (save it as one, or crop it)")
    input_bytes = services.retry.call(lambda: services.storage.size(request.input_file_name), "reading the input")
    sizing.check_scratch(name, header.pixels, input_bytes)


def _segment_large(services: Services, key: str, request: JobRequest) -> None:
    """Segment a large image block by block in a scratch folder, reporting progress."""
    store, settings, name = services.store, services.settings, request.original_name
    spec = services.model.metadata(request.model_name, request.model_version or None)
    retries = 0

    def predict(tiles: np.ndarray) -> dict[str, np.ndarray]:
        nonlocal retries
        result = services.model.predict(request.model_name, request.model_version or None, tiles)
        retries += result.retries
        return result.outputs

    def progress(done: int, total: int) -> None:
        store.update(key, progress=min(99, 100 * done // total))

    with tempfile.TemporaryDirectory(prefix="kiosk-large-") as folder:
        workdir, started = Path(folder), time.monotonic()
        source = workdir / "input"
        services.retry.call(lambda: _download(services, request, source), "downloading the input")
        timings = {"download_time": time.monotonic() - started}
        store.set_status(key, JobStatus.PREDICTING, progress=0)
        started = time.monotonic()
        result = segment_large(source, result_stem(name), request, settings, spec, predict, workdir, progress)
        timings["prediction_time"] = time.monotonic() - started
        store.set_status(key, JobStatus.SAVING)
        started = time.monotonic()
        archive_key, preview_key, preview_image_key = _output_keys(key, request)
        archive = workdir / "result.zip"
        zip_files(result.files, archive)
        services.retry.call(lambda: services.storage.write(preview_key, result.preview), "saving the preview")
        services.retry.call(lambda: services.storage.write(preview_image_key, result.preview_image),
                            "saving the preview")
        services.retry.call(lambda: services.storage.write_chunks(archive_key, _chunks(archive)),
                            "saving the results")
        timings["upload_time"] = time.monotonic() - started
    _mark_done(services, key, request, result.nuclei, retries, scale_fields(result), timings)


def _download(services: Services, request: JobRequest, target: Path) -> None:
    try:
        with services.storage.open(request.input_file_name) as stream, open(target, "wb") as file:
            while chunk := stream.read(1 << 20):
                file.write(chunk)
    except FileNotFoundError:
        raise _missing(request) from None


def _chunks(path: Path):
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            yield chunk


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
                                    np.concatenate([job.image.tiles for job in group]))
    elapsed = time.monotonic() - started
    assign_outputs([frame for job in group for frame in job.image.frames], result.outputs)
    for job in group:
        job.timings["prediction_time"] = job.timings.get("prediction_time", 0.0) + elapsed
        job.predict_retries += result.retries
    return group


def _finish(services: Services, job: _Job) -> None:
    store, key, request, image = services.store, job.key, job.request, job.image
    store.set_status(key, JobStatus.POSTPROCESSING)
    started = time.monotonic()
    labels = postprocess(image.frames)
    job.timings["postprocess_time"] = job.timings.get("postprocess_time", 0.0) + time.monotonic() - started

    store.set_status(key, JobStatus.SAVING)
    started = time.monotonic()
    files = result_files(result_stem(request.original_name), image, labels)
    archive_key, preview_key, preview_image_key = _output_keys(key, request)
    archive = zip_bytes(files)
    preview = next(data for name, data in files.items() if name.endswith(".png"))
    preview_image = grey_png(image.frames[0].normalised.max(axis=-1))
    services.retry.call(lambda: services.storage.write(preview_key, preview), "saving the preview")
    services.retry.call(lambda: services.storage.write(preview_image_key, preview_image), "saving the preview")
    services.retry.call(lambda: services.storage.write(archive_key, archive), "saving the results")
    job.timings["upload_time"] = time.monotonic() - started
    _mark_done(services, key, request, sum(len(np.unique(f[f > 0])) for f in labels), job.predict_retries,
               scale_fields(image), job.timings)


def _output_keys(key: str, request: JobRequest) -> tuple[str, str, str]:
    """Where a job's result archive, preview and preview without outlines are stored."""
    folder = f"output/{parse_job_key(key)[1]}"
    return (f"{folder}/{result_stem(request.original_name)}.zip", f"{folder}/{PREVIEW_NAME}",
            f"{folder}/{PREVIEW_IMAGE_NAME}")


def _mark_done(services: Services, key: str, request: JobRequest, nuclei: int, predict_retries: int,
               scale: dict[str, str], timings: dict[str, float]) -> None:
    archive_key, preview_key, preview_image_key = _output_keys(key, request)
    finished = time.time()
    services.store.set_status(
        key, JobStatus.DONE, progress=100, output_file_name=archive_key,
        output_url=services.storage.download_url(archive_key, services.settings.signed_url_seconds),
        preview_file_name=preview_key, preview_image_file_name=preview_image_key, nuclei=nuclei,
        finished_at=f"{finished:.6f}", total_time=f"{finished - request.created_at:.6f}",
        predict_retries=predict_retries, total_jobs=1, **scale,
        **{name: f"{seconds:.6f}" for name, seconds in timings.items()})


def scale_fields(image: Preprocessed | LargeResult) -> dict[str, str]:
    """The job fields that say how an image was scaled: scale_used, scale_source,
    estimated_diameter (px, when measured) and pixel_size_um (when known)."""
    fields = {"scale_used": f"{image.scale.scale:.4g}", "scale_source": str(image.scale.source)}
    if image.scale.estimated_diameter is not None:
        fields["estimated_diameter"] = f"{image.scale.estimated_diameter:.1f}"
    if image.pixel_size_um:
        fields["pixel_size_um"] = f"{image.pixel_size_um:.4g}"
    return fields


Predictor = Callable[[np.ndarray], dict[str, np.ndarray]]
"""A model called directly: a batch of tiles in, its named output arrays out."""


def segment_in_process(data: bytes, request: JobRequest, settings: ConsumerSettings, spec: ModelSpec,
                       predict: Predictor) -> tuple[Preprocessed, np.ndarray]:
    """The consumer's steps for one image with `predict` in place of the model server:
    pre-process, predict in batches, rescale once if the nuclei are off, post-process.
    Returns the pre-processed image and its (F, H, W) labels."""
    image = preprocess(data, request, settings, spec)
    _predict_directly(image, predict, settings.max_batch_size)
    if rescale_if_off(image, settings, spec):
        _predict_directly(image, predict, settings.max_batch_size)
    return image, postprocess(image.frames)


def _predict_directly(image: Preprocessed, predict: Predictor, batch_size: int) -> None:
    assign_outputs(image.frames, predict_in_batches(predict, image.tiles, batch_size))


def assign_outputs(frames: list[Frame], outputs: dict[str, np.ndarray]) -> None:
    """Hand each frame its share of a batch's outputs (the tiles were sent in frame order)."""
    start = 0
    for frame in frames:
        end = start + frame.layout.count
        frame.outputs = {name: values[start:end] for name, values in outputs.items()}
        start = end


def postprocess(frames: list[Frame]) -> np.ndarray:
    """Instance labels (F, H, W) at the original size from the frames' model outputs."""
    return np.stack([restore_labels(frame_labels(frame), frame.shape) for frame in frames])


def frame_labels(frame: Frame) -> np.ndarray:
    """A frame's instance labels at the model's scale (post-processed once, then kept)."""
    if frame.labels is None:
        frame.labels = labels_from_outputs(frame.outputs, frame.layout)
    return frame.labels


def result_files(stem: str, image: Preprocessed, labels: np.ndarray) -> dict[str, bytes]:
    """The result archive's members: the label image (with the input's pixel size), an
    overlay preview per frame and the per-nucleus measurements table."""
    frames = image.frames
    overlays = [overlay_png(frame.normalised.max(axis=-1), frame_labels)
                for frame, frame_labels in zip(frames, labels)]
    files = {f"{stem}_labels.tif": label_tiff(labels[0] if len(labels) == 1 else labels, image.pixel_size_um),
             f"{stem}_measurements.csv": measurements_csv(labels, np.stack([frame.raw for frame in frames]),
                                                          image.pixel_size_um)}
    if len(overlays) == 1:
        files[f"{stem}_overlay.png"] = overlays[0]
    else:
        files.update({f"{stem}_overlay_{i:03d}.png": png for i, png in enumerate(overlays)})
    return files


def result_stem(name: str) -> str:
    """A file-name stem for results, safe in any archive or bucket path."""
    stem = PurePosixPath(name.replace("\\", "/")).stem
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip("._")
    return safe or "image"
