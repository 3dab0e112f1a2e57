"""Large single-frame TIFFs segmented in bounded memory.

The input is read lazily from a local file (tifffile's Zarr view: one strip or tile
at a time), normalised by percentiles of a strided subsample, scaled from its central
square, and segmented block by block (`consumers.processing.blocks`), each block
predicted in batches of tiles. The labels go into an on-disk Zarr array; the label
TIFF (tiled BigTIFF) and the measurements CSV are written from it piece by piece.
Memory is bounded by the block, not the image.
"""

import csv
import math
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
from consumers.processing.blocks import Block, blocks, merge, owned
from consumers.processing.channels import select_channels
from consumers.processing.diameter import SAMPLE_SIDE, ScaleChoice, choose_scale
from consumers.processing.imageio import CHANNEL_AXES, Image
from consumers.processing.measurements import measurements, measurements_csv
from consumers.processing.messages import blame_input
from consumers.processing.normalize import HIGH_PERCENTILE, LOW_PERCENTILE
from consumers.processing.overlay import grey_png, overlay_png
from consumers.processing.postprocess import labels_from_predictions
from consumers.processing.resize import rescale, rescaled_shape, restore_labels
from consumers.processing.tiling import stitch_tiles, tile_count, tile_image
from consumers.model_client import ModelSpec
from consumers.processing.pixel_size import tiff_pixel_size
from consumers.settings import ConsumerSettings

SAMPLE_PIXELS = 4_000_000  # the normalisation's percentiles are taken over at most about this many pixels
PREVIEW_SIDE = 2048  # px: the preview's longest side at most
TIFF_TILE = 512  # px: the label TIFF's tiles and the label array's chunks

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


class _Source:
    """A single-frame TIFF read region by region, as (h, w, C) pixels of the model's channels."""

    def __init__(self, path: Path, request: JobRequest, spec: ModelSpec) -> None:
        self._unreadable = (f"the file '{request.original_name}' is not a readable TIFF image "
                            "(it may be truncated or corrupt)")
        with blame_input(self._unreadable):
            self._tif = tifffile.TiffFile(path)
        series = self._tif.series[0]
        self.axes = series.axes
        self.pixels = zarr.open_array(series.aszarr(), mode="r")
        self.colour = "S" in self.axes and series.keyframe.photometric in (tifffile.PHOTOMETRIC.RGB,
                                                                          tifffile.PHOTOMETRIC.YCBCR)
        self.shape = (self.pixels.shape[self.axes.index("Y")], self.pixels.shape[self.axes.index("X")])
        self.pixel_size_um = tiff_pixel_size(self._tif)
        self._request, self._spec = request, spec

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """The model's channels of a region, in the file's dtype."""
        index = tuple(rows if axis == "Y" else cols if axis == "X" else slice(None) for axis in self.axes)
        with blame_input(self._unreadable):  # a local scratch copy: a failure is the file's
            region = self.pixels[index]
        order = [self.axes.index("Y"), self.axes.index("X"),
                 *(i for i, axis in enumerate(self.axes) if axis not in "YX")]
        region = np.transpose(region, order)
        region = region.reshape(*region.shape[:2], -1)
        if self.colour:
            region = region[..., :3]
        image = Image(region[None], self.colour, self.axes, self.pixel_size_um)
        return select_channels(image, list(self._request.channels) or None, self._spec.channels or 1,
                               model_name=self._request.model_name)[0]

    def close(self) -> None:
        self._tif.close()


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
    """Segment the single-frame TIFF at `path` block by block, writing the results into `workdir`.

    `progress(tiles done, tiles total)` is called after each block.
    """
    source = _Source(path, request, spec)
    try:
        return _segment(source, stem, request, settings, spec, predict, workdir, progress)
    finally:
        source.close()


def _segment(source: _Source, stem: str, request: JobRequest, settings: ConsumerSettings, spec: ModelSpec,
             predict: Predictor, workdir: Path, progress: Callable[[int, int], None]) -> LargeResult:
    height, width = source.shape
    pixel_size = request.image_mpp or source.pixel_size_um
    low, high = _percentiles(source)
    top, left = (max(0, (size - SAMPLE_SIDE) // 2) for size in source.shape)
    centre = _normalised(source.read(slice(top, top + SAMPLE_SIDE), slice(left, left + SAMPLE_SIDE)), low, high)
    choice = choose_scale(request.scale, pixel_size, centre.max(axis=-1), pixels=height * width,
                          max_pixels=settings.max_image_pixels)
    tile = spec.tile_height or settings.tile_size
    overlap = min(settings.tile_overlap, tile // 2)
    size, halo = settings.block_size, settings.block_halo
    plan = list(blocks(source.shape, size, halo))
    total = sum(tile_count(rescaled_shape(_shape(block), choice.scale), tile, overlap) for block in plan)

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
            scaled = rescale(normalised, choice.scale)
            tiles, layout = tile_image(scaled, tile=tile, overlap=overlap)
            outputs = _predicted(predict, tiles, settings.max_batch_size)
            found = labels_from_predictions(stitch_tiles(outputs["fgbg"], layout)[..., 0],
                                            stitch_tiles(outputs["inner_distance"], layout)[..., 0])
            kept = owned(restore_labels(found, _shape(block)), block)
            merged, next_offset = merge(labels[block.slices], kept, offset)
            labels[block.slices] = merged
            ours = np.where(merged > offset, merged, 0)
            _write_rows(writer, ours, raw, block, pixel_size)
            offset = next_offset
            done += layout.count
            progress(done, total)

    label_path = workdir / f"{stem}_labels.tif"
    _write_label_tiff(labels, label_path, offset, pixel_size)
    preview_labels = labels[::step, ::step]  # zarr reads chunk by chunk, keeping only these
    files = {label_path.name: label_path, table.name: table}
    overlay = workdir / f"{stem}_overlay.png"
    overlay.write_bytes(overlay_png(preview, preview_labels))
    files[overlay.name] = overlay
    return LargeResult(files, overlay.read_bytes(), grey_png(preview), choice, pixel_size, _count(labels, offset))


def _shape(block: Block) -> tuple[int, int]:
    top, bottom, left, right = block.crop
    return bottom - top, right - left


def _percentiles(source: _Source) -> tuple[np.ndarray, np.ndarray]:
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


def _predicted(predict: Predictor, tiles: np.ndarray, batch: int) -> dict[str, np.ndarray]:
    parts = [predict(tiles[start:start + batch]) for start in range(0, len(tiles), batch)]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


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
    """Pack `files` (name → path) into the ZIP `target`, streaming each: images stored, others deflated."""
    with zipfile.ZipFile(target, "w", allowZip64=True) as archive:
        for name in sorted(files):
            stored = name.endswith((".tif", ".png"))
            archive.write(files[name], name, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
