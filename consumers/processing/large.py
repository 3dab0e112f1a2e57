"""Large images segmented in bounded memory: single-frame TIFFs and zipped OME-Zarr images.

The input is read lazily from a local file (`consumers.processing.sources`: one strip,
tile or chunk at a time), normalised by percentiles of a strided subsample, scaled
from its central square (and refined by the nuclei found there), and segmented block
by block (`consumers.processing.blocks`), each block predicted in batches of tiles.
The labels go into an on-disk Zarr array; the label TIFF (tiled BigTIFF), the
OME-Zarr labels pyramid and the measurements CSV are written from it piece by piece.
Memory is bounded by the block, not the image.
"""

import csv
import math
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import PIL.Image
import tifffile
import zarr

from consumers.jobs import JobRequest
from consumers.model_client import ModelSpec
from consumers.processing.blocks import Block, blocks, merge, owned
from consumers.processing.diameter import SAMPLE_SIDE, ScaleChoice, ScaleSource, choose_scale, refined_scale
from consumers.processing.imageio import CHANNEL_AXES
from consumers.processing.measurements import measurements, measurements_csv
from consumers.processing.ngff import write_label_pyramid
from consumers.processing.normalize import HIGH_PERCENTILE, LOW_PERCENTILE
from consumers.processing.overlay import grey_png, overlay_png
from consumers.processing.postprocess import labels_from_outputs
from consumers.processing.resize import rescale, rescaled_shape, restore_labels
from consumers.processing.sources import RegionSource, open_source
from consumers.processing.tiling import predict_in_batches, tile_count, tile_image
from consumers.settings import ConsumerSettings
from consumers.sizing import check_size, pixel_limit

SAMPLE_PIXELS = 4_000_000  # the normalisation's percentiles are taken over at most about this many pixels
PREVIEW_SIDE = 2048  # px: the preview's longest side at most
TIFF_TILE = 512  # px: the label TIFF's tiles and the label array's chunks
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # every result member's date: the archive depends on its content only

Predictor = Callable[[np.ndarray], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Header:
    """An upload's size, read from its header: frames × height × width; streamable if a single-frame TIFF."""

    frames: int
    height: int
    width: int
    streamable: bool

    @property
    def pixels(self) -> int:
        """Pixels of all frames."""
        return self.frames * self.height * self.width


def probe(stream: BinaryIO) -> Header | None:
    """The size an uploaded image declares, None if its header is unreadable (the normal
    reader then says why)."""
    try:
        with tifffile.TiffFile(stream) as tif:
            series = tif.series[0]
            sizes = dict(zip(series.axes, series.shape))
            frames = math.prod(size for axis, size in sizes.items() if axis not in "YX" + CHANNEL_AXES)
            return Header(frames, sizes["Y"], sizes["X"], frames == 1 and len(tif.series) == 1)
    except Exception:  # not a TIFF, or a broken one
        pass
    try:
        stream.seek(0)
        with PIL.Image.open(stream) as picture:
            width, height = picture.size
        return Header(1, height, width, False)
    except Exception:
        return None


@dataclass
class LargeResult:
    """A large image's results: the archive's members as files, and what the job records."""

    files: dict[str, Path]
    preview: bytes
    preview_image: bytes
    scale: ScaleChoice
    pixel_size_um: float | None
    nuclei: int


def segment_large(path: Path, stem: str, request: JobRequest, settings: ConsumerSettings, spec: ModelSpec,
                  predict: Predictor, workdir: Path,
                  progress: Callable[[int, int], None] = lambda done, total: None) -> LargeResult:
    """Segment the image at `path` (a single-frame TIFF or a zipped OME-Zarr) block by block,
    writing the results into `workdir`.

    `progress(tiles done, tiles total)` is called after each block.
    """
    source = open_source(path, request, spec)
    try:
        check_size(request.original_name, source.shape[1], source.shape[0], 1, settings)
        return _segment(source, stem, request, settings, spec, predict, workdir, progress)
    finally:
        source.close()


def _segment(source: RegionSource, stem: str, request: JobRequest, settings: ConsumerSettings, spec: ModelSpec,
             predict: Predictor, workdir: Path, progress: Callable[[int, int], None]) -> LargeResult:
    height, width = source.shape
    pixel_size = request.image_mpp or source.pixel_size_um
    low, high = _percentiles(source)
    model = _Model(predict, spec.tile_height or settings.tile_size, settings)
    choice = _scale(source, request, settings, model, low, high)
    plan = list(blocks(source.shape, *_block_geometry(settings, choice.scale)))
    total = sum(model.tiles(rescaled_shape(_shape(block), choice.scale)) for block in plan)

    labels = zarr.create_array(workdir / "labels.zarr", shape=source.shape, chunks=(TIFF_TILE, TIFF_TILE),
                               dtype=np.uint32, fill_value=0)
    step = max(1, math.ceil(max(height, width) / PREVIEW_SIDE))
    preview = np.zeros((math.ceil(height / step), math.ceil(width / step)), np.float32)
    table = workdir / f"{stem}_measurements.csv"
    offset, done = 0, 0
    with open(table, "w", newline="") as file:
        writer = _table_writer(file, spec.channels or 1, pixel_size)
        for block in plan:
            raw = source.read(*block.slices)
            normalised = _normalised(raw, low, high)
            _preview_part(preview, normalised, block, step)
            found, tiles = model.labels(normalised, choice.scale)
            kept = owned(restore_labels(found, _shape(block)), block)
            merged, next_offset = merge(labels[block.slices], kept, offset)
            labels[block.slices] = merged
            ours = np.where(merged > offset, merged, 0)
            _write_rows(writer, ours, raw, block, pixel_size)
            offset = next_offset
            done += tiles
            progress(done, total)

    label_path = workdir / f"{stem}_labels.tif"
    _write_label_tiff(labels, label_path, offset, pixel_size)
    ome_zarr = workdir / f"{stem}_labels.ome.zarr"
    write_label_pyramid(labels, ome_zarr, pixel_size)
    preview_labels = labels[::step, ::step]  # zarr reads chunk by chunk, keeping only these
    files = {label_path.name: label_path, table.name: table, ome_zarr.name: ome_zarr}
    overlay = workdir / f"{stem}_overlay.png"
    overlay.write_bytes(overlay_png(preview, preview_labels))
    files[overlay.name] = overlay
    return LargeResult(files, overlay.read_bytes(), grey_png(preview), choice, pixel_size, _count(labels, offset))


class _Model:
    """The model applied to a normalised region: tiled, predicted in batches, post-processed."""

    def __init__(self, predict: Predictor, tile: int, settings: ConsumerSettings) -> None:
        self._predict, self._tile, self._batch = predict, tile, settings.max_batch_size
        self._overlap = min(settings.tile_overlap, tile // 2)

    def tiles(self, shape: tuple[int, int]) -> int:
        """Tiles of a region of `shape` (at the model's scale)."""
        return tile_count(shape, self._tile, self._overlap)

    def labels(self, normalised: np.ndarray, scale: float) -> tuple[np.ndarray, int]:
        """Instance labels of `normalised` (h, w, C) at the model's scale (`scale`), and the tiles predicted."""
        tiles, layout = tile_image(rescale(normalised, scale), tile=self._tile, overlap=self._overlap)
        return labels_from_outputs(predict_in_batches(self._predict, tiles, self._batch), layout), layout.count


def _scale(source: RegionSource, request: JobRequest, settings: ConsumerSettings, model: _Model,
           low: np.ndarray, high: np.ndarray) -> ScaleChoice:
    """The job's scale, chosen as for a small image from the central square, and refined as for one
    by the nuclei the model finds there."""
    height, width = source.shape
    top, left = (max(0, (size - SAMPLE_SIDE) // 2) for size in source.shape)
    centre = _normalised(source.read(slice(top, top + SAMPLE_SIDE), slice(left, left + SAMPLE_SIDE)), low, high)
    pixel_size = request.image_mpp or source.pixel_size_um
    limits = {"pixels": height * width, "max_pixels": pixel_limit(settings)}
    choice = choose_scale(request.scale, pixel_size, centre.max(axis=-1), **limits)
    if choice.source != ScaleSource.ESTIMATED:
        return choice
    found, _ = model.labels(centre, choice.scale)
    return refined_scale(choice, found, **limits) or choice


def _block_geometry(settings: ConsumerSettings, scale: float) -> tuple[int, int]:
    """Block side and halo in the image's pixels: `block_size` and `block_halo` are at the model's scale
    (so memory does not grow with the scale), a block's side at most twice `block_size`."""
    size = min(2 * settings.block_size, max(64, math.ceil(settings.block_size / scale)))
    return size, min(math.ceil(settings.block_halo / scale), size)


def _shape(block: Block) -> tuple[int, int]:
    top, bottom, left, right = block.crop
    return bottom - top, right - left


def _percentiles(source: RegionSource) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel normalisation bounds from every n-th row and column."""
    height, width = source.shape
    stride = max(1, math.ceil(math.sqrt(height * width / SAMPLE_PIXELS)))
    band = max(stride, (TIFF_TILE // stride) * stride)
    samples = [source.read(slice(top, min(top + band, height)), slice(None))[::stride, ::stride]
               for top in range(0, height, band)]
    sample = np.concatenate(samples).astype(np.float32)
    low, high = np.percentile(sample, [LOW_PERCENTILE, HIGH_PERCENTILE], axis=(0, 1))
    return low.astype(np.float32), high.astype(np.float32)


def _normalised(pixels: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    span = np.where(high > low, high - low, 1.0).astype(np.float32)
    scaled = (pixels.astype(np.float32) - low) / span
    return np.clip(scaled, 0.0, 1.0, out=scaled)


def _preview_part(preview: np.ndarray, normalised: np.ndarray, block: Block, step: int) -> None:
    """Copy a block's core, every `step`-th pixel, into the preview."""
    top, bottom, left, right = block.core
    first_row, first_col = -(-top // step) * step, -(-left // step) * step
    part = normalised[first_row - block.crop[0]:bottom - block.crop[0]:step,
                      first_col - block.crop[2]:right - block.crop[2]:step].max(axis=-1)
    preview[first_row // step:first_row // step + part.shape[0],
            first_col // step:first_col // step + part.shape[1]] = part


def _count(labels: zarr.Array, offset: int) -> int:
    """Nuclei with at least one pixel in the final labels."""
    present = np.zeros(offset + 1, bool)
    for top in range(0, labels.shape[0], TIFF_TILE):
        present[np.unique(labels[top:top + TIFF_TILE])] = True
    return int(present[1:].sum())


def _table_writer(file, channels: int, pixel_size: float | None) -> csv.DictWriter:
    header = measurements_csv(np.zeros((1, 1, 1), np.int32), np.zeros((1, 1, 1, channels)), pixel_size)
    writer = csv.DictWriter(file, fieldnames=header.decode().strip().split(","), lineterminator="\n")
    writer.writeheader()
    return writer


def _write_rows(writer: csv.DictWriter, labels: np.ndarray, raw: np.ndarray, block: Block,
                pixel_size: float | None) -> None:
    """The measurements of a block's own nuclei, in the whole image's coordinates."""
    top, left = block.crop[0], block.crop[2]
    shift = {"centroid_y": top, "centroid_x": left, "bbox_min_y": top, "bbox_max_y": top,
             "bbox_min_x": left, "bbox_max_x": left}
    for row in measurements(labels[None], raw[None], pixel_size):
        row.update({name: row[name] + value for name, value in shift.items()})
        writer.writerow({name: str(value) if isinstance(value, int) else f"{value:.6g}"
                         for name, value in row.items()})


def _write_label_tiff(labels: zarr.Array, path: Path, largest: int, pixel_size: float | None) -> None:
    """A zlib-compressed, tiled BigTIFF of the labels, written tile by tile."""
    dtype = np.uint16 if largest <= np.iinfo(np.uint16).max else np.uint32
    height, width = labels.shape

    def tiles():
        for top in range(0, height, TIFF_TILE):
            for left in range(0, width, TIFF_TILE):
                tile = np.zeros((TIFF_TILE, TIFF_TILE), dtype)
                part = labels[top:top + TIFF_TILE, left:left + TIFF_TILE]
                tile[:part.shape[0], :part.shape[1]] = part
                yield tile

    resolution = {}
    if pixel_size:
        per_cm = 1e4 / pixel_size
        resolution = {"resolution": (per_cm, per_cm), "resolutionunit": tifffile.RESUNIT.CENTIMETER}
    tifffile.imwrite(path, tiles(), shape=(height, width), dtype=dtype, tile=(TIFF_TILE, TIFF_TILE),
                     bigtiff=True, photometric="minisblack", compression="zlib", **resolution)


def zip_files(files: dict[str, Path], target: Path) -> None:
    """Pack `files` (name → file or folder) into the ZIP `target`, streaming each: images and Zarr
    chunks stored, others deflated. The same files give the same bytes (fixed dates, sorted names)."""
    members = sorted((f"{name}/{path.relative_to(source).as_posix()}" if source.is_dir() else name, path)
                     for name, source in files.items()
                     for path in (sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir()
                                  else [source]))
    with zipfile.ZipFile(target, "w", allowZip64=True) as archive:
        for name, path in members:
            stored = name.endswith((".tif", ".png")) or ".zarr/" in name
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(path, "rb") as file, archive.open(info, "w", force_zip64=True) as member:
                shutil.copyfileobj(file, member, 1 << 20)
