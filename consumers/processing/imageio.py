"""Decode an uploaded TIFF, PNG or JPEG into a (frames, height, width, channels) array.

Sizes are checked from the file header before any pixel data is decoded, so a
decompression bomb is rejected without allocating its pixels.
"""

import io
import logging
import math
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import PIL.Image
import tifffile

from consumers.errors import JobInputError
from consumers.filetypes import file_kind
from consumers.processing.messages import blame_input, dimensions, pixel_count
from consumers.processing.ome_xml import ome_channel_names
from consumers.processing.pixel_size import tiff_pixel_size

# Letters a person may use in the web form's dimension order.
ORDER_LETTERS = "ZTCYX"
# tifffile's channel (C) and colour-sample (S) axes; every axis but these and Y, X is a frame axis.
CHANNEL_AXES = "CS"
_NON_FRAME_AXES = "YX" + CHANNEL_AXES

# The file kinds (consumers.filetypes) decoded here, by the format names Pillow and the messages use.
_FORMATS = {"tif": "TIFF", "png": "PNG", "jpg": "JPEG"}
# Pillow modes decoded as they are; bilevel and grey+alpha become 8-bit grey, all
# others (palette, RGBA, CMYK...) become RGB, which drops alpha and expands palettes.
_NATIVE_MODES = {"L", "I", "I;16", "I;16B", "I;16L", "F", "RGB"}
_TO_GREY = {"1", "LA", "La"}
_TIFF_COLOUR = {tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.YCBCR}


@dataclass(frozen=True)
class Image:
    """A decoded image.

    pixels: (F, H, W, C) in the file's own dtype; F frames are the Z slices or time
        points of a stack (1 for a plain image), C the channels.
    colour: True for an RGB picture (PNG/JPEG colour, or an RGB TIFF); alpha is dropped.
    axes: the file's axes as decoded, in tifffile's letters (Y, X; C channel; S colour
        sample; Z, T, Q, I... frame axes), or the dimension order given by the user.
    pixel_size_um: µm per pixel as the file declares it (TIFF metadata), None if it does not.
    channel_names: the channels' names as the file declares them (OME metadata), one per
        channel of `pixels`, or None.
    """

    pixels: np.ndarray
    colour: bool
    axes: str
    pixel_size_um: float | None = None
    channel_names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class _Header:
    """What a file declares before its pixels are decoded."""

    shape: tuple[int, ...]
    axes: str
    colour: bool
    pixel_size_um: float | None = None
    channel_names: tuple[str, ...] | None = None


def read_image(
    data: bytes,
    name: str,
    *,
    max_pixels: int,
    max_channels: int,
    dimension_order: str | None = None,
) -> Image:
    """Decode a TIFF, PNG or JPEG file into an `Image`.

    `dimension_order` (letters Z, T, C, Y, X, e.g. 'CYX'; blank means infer) overrides
    the axes read from the file. Raises JobInputError for empty, unreadable, truncated
    or unsupported files, for more than `max_pixels` pixels (height × width × frames)
    or more than `max_channels` channels, and for a dimension order that does not fit.
    """
    if not data:
        raise JobInputError(f"the file '{name}' is empty (0 bytes)")
    kind = _sniff(data, name)
    order = dimension_order.strip().upper() if dimension_order and dimension_order.strip() else None

    def check(header: _Header) -> _Header:
        return _checked(header, name, order, max_pixels, max_channels)

    with blame_input(f"the file '{name}' is not a readable {kind} image (it may be truncated or corrupt)"):
        if kind == "TIFF":
            pixels, header = _read_tiff(data, name, check)
        else:
            pixels, header = _read_picture(data, name, kind, check)
    return _arrange(pixels, header)


def _sniff(data: bytes, name: str) -> str:
    kind = _FORMATS.get(file_kind(data))
    if kind is None:
        raise JobInputError(f"the file '{name}' is not a TIFF, PNG or JPEG image; only these formats are supported")
    return kind


def _read_tiff(data: bytes, name: str, check: Callable[[_Header], _Header]) -> tuple[np.ndarray, _Header]:
    # tifffile reads what it can of a damaged file: it logs an error and keeps the pages
    # before a broken directory chain, or drops a tag whose value lies past the end (losing
    # OME or ImageJ axes). Either would silently lose planes or misread the axes.
    with _tifffile_errors() as errors:
        tif = tifffile.TiffFile(io.BytesIO(data))
        end = _declared_end(tif)  # parses every page's directory
    with tif:
        if errors or end > len(data):
            raise JobInputError(f"the file '{name}' is an incomplete TIFF file (it may be truncated)")
        series = tif.series[0]
        page = series.keyframe
        palette = page.photometric == tifffile.PHOTOMETRIC.PALETTE
        _check_dtype(series.dtype, name)
        pixel_size = tiff_pixel_size(tif)
        if palette:
            header = _Header((*series.shape, 3), series.axes + "S", True, pixel_size)
        else:
            colour = "S" in series.axes and page.photometric in _TIFF_COLOUR
            header = _Header(tuple(series.shape), series.axes, colour, pixel_size, ome_channel_names(tif))
        header = check(header)
        pixels = series.asarray()
        if palette:
            pixels = np.moveaxis(page.colormap[:, pixels], 0, -1)
    return pixels, header


def _read_picture(data: bytes, name: str, kind: str, check: Callable[[_Header], _Header]) -> tuple[np.ndarray, _Header]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
        try:
            picture = PIL.Image.open(io.BytesIO(data), formats=[kind])
        except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning) as error:
            raise JobInputError(
                f"the image '{name}' is larger than {pixel_count(PIL.Image.MAX_IMAGE_PIXELS)}, "
                f"the limit for {kind} files; save it as a TIFF or crop it"
            ) from error
    with picture:
        mode = picture.mode
        target = mode if mode in _NATIVE_MODES else "L" if mode in _TO_GREY else "RGB"
        colour = target == "RGB"
        width, height = picture.size
        header = check(_Header((height, width, 3), "YXS", True) if colour else _Header((height, width), "YX", False))
        pixels = np.asarray(picture if target == mode else picture.convert(target))
    return pixels, header


def _declared_end(tif: tifffile.TiffFile) -> int:
    """The furthest byte that the file's tags and pixel data reach."""
    end = 0
    for page in tif.pages:
        segments = zip(page.dataoffsets, page.databytecounts)
        tags = ((tag.valueoffset, tag.valuebytecount) for tag in page.tags)
        end = max(end, *(offset + count for offset, count in (*segments, *tags)))
    return end


def _check_dtype(dtype: np.dtype, name: str) -> None:
    if np.dtype(dtype).kind not in "buif":
        raise JobInputError(f"the file '{name}' holds {dtype} pixels; only integer and real pixel values are supported")


def _checked(header: _Header, name: str, order: str | None, max_pixels: int, max_channels: int) -> _Header:
    """Apply the user's dimension order and enforce the size limits, from the header alone."""
    if order is not None:
        header = _with_order(header, order, name)
    sizes = dict(zip(header.axes, header.shape))
    height, width = sizes["Y"], sizes["X"]
    frames = math.prod(size for axis, size in sizes.items() if axis not in _NON_FRAME_AXES)
    channels = 3 if header.colour else math.prod(sizes.get(axis, 1) for axis in CHANNEL_AXES)
    pixels = frames * height * width
    if pixels > max_pixels:
        stack = f"{frames} frames of " if frames > 1 else ""
        raise JobInputError(
            f"the image '{name}' is {stack}{width}×{height} = {pixel_count(pixels)}; "
            f"the limit is {pixel_count(max_pixels)}"
        )
    if channels > max_channels:
        raise JobInputError(
            f"the image '{name}' has {channels} channels (axes '{header.axes}', shape {dimensions(header.shape)}); "
            f"at most {max_channels} are supported. If that axis holds Z slices or time points, "
            "set the dimension order (e.g. 'ZYX')"
        )
    return header


def _with_order(header: _Header, order: str, name: str) -> _Header:
    if (
        any(letter not in ORDER_LETTERS for letter in order)
        or len(set(order)) != len(order)
        or not {"Y", "X"} <= set(order)
    ):
        raise JobInputError(
            f"the dimension order '{order}' is not valid: use the letters Z, T, C, Y and X, "
            "each at most once, including Y and X (e.g. 'CYX' or 'YXC')"
        )
    if len(order) != len(header.shape):
        raise JobInputError(
            f"the dimension order '{order}' names {len(order)} axes but the image '{name}' has "
            f"{len(header.shape)} (shape {dimensions(header.shape)})"
        )
    # Still a colour picture only if the user's channel axis is the file's colour-sample axis.
    colour = header.colour and "C" in order and order.index("C") == header.axes.index("S")
    return _Header(header.shape, order, colour, header.pixel_size_um)  # the file's channel names may not apply


def _arrange(pixels: np.ndarray, header: _Header) -> Image:
    """Reorder decoded pixels to (F, H, W, C), merging frame axes and channel axes."""
    axes = header.axes
    frame_axes = [i for i, axis in enumerate(axes) if axis not in _NON_FRAME_AXES]
    channel_axes = [i for i, axis in enumerate(axes) if axis in CHANNEL_AXES]
    arranged = np.transpose(pixels, [*frame_axes, axes.index("Y"), axes.index("X"), *channel_axes])
    height, width = pixels.shape[axes.index("Y")], pixels.shape[axes.index("X")]
    arranged = arranged.reshape(-1, height, width, math.prod(pixels.shape[i] for i in channel_axes))
    if header.colour:
        arranged = arranged[..., :3]  # drop alpha and other extra samples
    if arranged.dtype == bool:
        arranged = arranged.astype(np.uint8)
    native = arranged.dtype.newbyteorder("=")
    return Image(np.ascontiguousarray(arranged, dtype=native), header.colour, axes, header.pixel_size_um,
                 names_if_one_per_channel(header.channel_names, arranged.shape[-1]))


def names_if_one_per_channel(names: tuple[str, ...] | None, channels: int) -> tuple[str, ...] | None:
    """A file's channel names if it names each of `channels` (and nothing else), else None."""
    return names if names and len(names) == channels and all(names) else None


class _ErrorRecorder(logging.Handler):
    """Collects the error messages that tifffile logs from this thread."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


@contextmanager
def _tifffile_errors() -> Iterator[list[str]]:
    recorder = _ErrorRecorder()
    logger = logging.getLogger("tifffile")
    logger.addHandler(recorder)
    try:
        yield recorder.messages
    finally:
        logger.removeHandler(recorder)
