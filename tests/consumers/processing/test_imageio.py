"""Reading uploaded TIFF, PNG and JPEG files."""

import io

import numpy as np
import PIL.Image
import pytest
import tifffile

from consumers.errors import JobInputError
from consumers.processing.imageio import read_image
from tests.consumers.processing.samples import pillow_bytes, png_bomb, tiff_bomb, tiff_bytes

LIMITS = {"max_pixels": 10_000_000, "max_channels": 8}
rng = np.random.default_rng(7)


def planes(*shape: int, dtype=np.uint16) -> np.ndarray:
    """Random pixels, so any mix-up of axes shows."""
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)


def read(data: bytes, name: str = "cells.tif", **options):
    return read_image(data, name, **{**LIMITS, **options})


# --- TIFF layouts -------------------------------------------------------------------------


def test_a_grey_tiff_is_one_frame_of_one_channel():
    pixels = planes(30, 40)
    image = read(tiff_bytes(pixels))
    assert image.axes == "YX" and not image.colour
    assert image.pixels.shape == (1, 30, 40, 1) and image.pixels.dtype == np.uint16
    np.testing.assert_array_equal(image.pixels[0, ..., 0], pixels)


@pytest.mark.parametrize(
    ("options", "axes"),
    [
        ({"imagej": True, "metadata": {"axes": "ZCYX"}}, "ZCYX"),
        ({"metadata": {"axes": "TCYX"}}, "TCYX"),
        ({"ome": True, "metadata": {"axes": "TCYX"}}, "TCYX"),
    ],
    ids=["imagej", "shaped", "ome"],
)
def test_a_stack_becomes_frames_of_channels(options, axes):
    pixels = planes(4, 3, 20, 24)
    image = read(tiff_bytes(pixels, **options))
    assert image.axes == axes and not image.colour
    assert image.pixels.shape == (4, 20, 24, 3)
    np.testing.assert_array_equal(image.pixels, np.moveaxis(pixels, 1, -1))


def test_a_channel_stack_keeps_its_channels_last():
    pixels = planes(5, 20, 24)
    image = read(tiff_bytes(pixels, imagej=True, metadata={"axes": "CYX"}))
    assert image.axes == "CYX"
    np.testing.assert_array_equal(image.pixels[0], np.moveaxis(pixels, 0, -1))


def test_a_z_stack_becomes_frames():
    pixels = planes(6, 20, 24)
    image = read(tiff_bytes(pixels, imagej=True, metadata={"axes": "ZYX"}))
    assert image.axes == "ZYX"
    np.testing.assert_array_equal(image.pixels[..., 0], pixels)


@pytest.mark.parametrize("options", [{}, {"metadata": None}], ids=["shaped-QYX", "plain-pages-IYX"])
def test_planes_of_unknown_meaning_are_frames(options):
    pixels = planes(5, 20, 24)
    image = read(tiff_bytes(pixels, **options))
    assert image.axes in {"QYX", "IYX"}
    np.testing.assert_array_equal(image.pixels[..., 0], pixels)


def test_an_rgb_tiff_is_colour():
    pixels = planes(20, 24, 3, dtype=np.uint8)
    image = read(tiff_bytes(pixels, photometric="rgb"))
    assert image.axes == "YXS" and image.colour
    np.testing.assert_array_equal(image.pixels[0], pixels)


def test_an_rgba_tiff_loses_its_alpha():
    pixels = planes(20, 24, 4, dtype=np.uint8)
    image = read(tiff_bytes(pixels, photometric="rgb", extrasamples=["unassalpha"]))
    assert image.colour
    np.testing.assert_array_equal(image.pixels[0], pixels[..., :3])


def test_a_palette_tiff_is_expanded_to_its_colours():
    indices = planes(20, 24, dtype=np.uint8)
    colormap = planes(3, 256, dtype=np.uint16)
    image = read(tiff_bytes(indices, photometric="palette", colormap=colormap))
    assert image.colour
    np.testing.assert_array_equal(image.pixels[0], colormap[:, indices].transpose(1, 2, 0))


def test_an_lzw_compressed_tiff_is_read():
    # LZW is what many microscope programs write; tifffile needs imagecodecs for it.
    pixels = planes(30, 40)
    np.testing.assert_array_equal(read(tiff_bytes(pixels, compression="lzw")).pixels[0, ..., 0], pixels)


def test_big_endian_pixels_come_back_in_native_order():
    pixels = planes(10, 12)
    image = read(tiff_bytes(pixels, byteorder=">"))
    assert image.pixels.dtype == np.dtype("uint16")  # native
    np.testing.assert_array_equal(image.pixels[0, ..., 0], pixels)


# --- PNG and JPEG ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_a_grey_png_keeps_its_bit_depth(dtype):
    pixels = planes(30, 40, dtype=dtype)
    image = read(pillow_bytes(pixels, "PNG"), "cells.png")
    assert image.axes == "YX" and not image.colour and image.pixels.dtype == dtype
    np.testing.assert_array_equal(image.pixels[0, ..., 0], pixels)


def test_an_rgb_png_is_colour():
    pixels = planes(30, 40, 3, dtype=np.uint8)
    image = read(pillow_bytes(pixels, "PNG"), "cells.png")
    assert image.axes == "YXS" and image.colour
    np.testing.assert_array_equal(image.pixels[0], pixels)


def test_an_rgba_png_loses_its_alpha():
    pixels = planes(30, 40, 4, dtype=np.uint8)
    image = read(pillow_bytes(pixels, "PNG"), "cells.png")
    assert image.pixels.shape == (1, 30, 40, 3)
    np.testing.assert_array_equal(image.pixels[0], pixels[..., :3])


def test_a_palette_png_is_expanded_to_its_colours():
    data = pillow_bytes(planes(30, 40, 3, dtype=np.uint8), "PNG", mode="P")
    image = read(data, "cells.png")
    expected = np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGB"))
    assert image.colour
    np.testing.assert_array_equal(image.pixels[0], expected)


def test_a_grey_png_with_alpha_is_grey():
    data = pillow_bytes(planes(30, 40, 2, dtype=np.uint8), "PNG", mode="LA")
    image = read(data, "cells.png")
    assert image.pixels.shape == (1, 30, 40, 1) and not image.colour


@pytest.mark.parametrize(("shape", "colour"), [((48, 64), False), ((48, 64, 3), True)])
def test_a_jpeg_is_decoded_close_to_the_original(shape, colour):
    smooth = np.linspace(0, 255, 48 * 64).reshape(48, 64)
    pixels = np.stack([smooth] * 3, axis=-1) if colour else smooth
    image = read(pillow_bytes(pixels.astype(np.uint8), "JPEG", quality=95), "cells.jpg")
    assert image.colour is colour and image.pixels.shape == (1, 48, 64, 3 if colour else 1)
    assert np.abs(image.pixels[0].astype(float) - pixels.reshape(48, 64, -1)).mean() < 2


def test_the_format_comes_from_the_content_not_the_name():
    pixels = planes(10, 12, dtype=np.uint8)
    np.testing.assert_array_equal(read(pillow_bytes(pixels, "PNG"), "looks-like.tif").pixels[0, ..., 0], pixels)


# --- dimension order ----------------------------------------------------------------------


def test_a_dimension_order_turns_frames_into_channels():
    pixels = planes(3, 20, 24)
    image = read(tiff_bytes(pixels), dimension_order="cyx")
    assert image.axes == "CYX" and image.pixels.shape == (1, 20, 24, 3)
    np.testing.assert_array_equal(image.pixels[0], np.moveaxis(pixels, 0, -1))


def test_a_dimension_order_with_channels_last_keeps_a_colour_picture_colour():
    image = read(pillow_bytes(planes(20, 24, 3, dtype=np.uint8), "PNG"), "c.png", dimension_order="YXC")
    assert image.colour and image.axes == "YXC"


def test_a_dimension_order_that_moves_the_colour_axis_is_no_longer_colour():
    data = pillow_bytes(planes(20, 24, 3, dtype=np.uint8), "PNG")
    image = read(data, "c.png", dimension_order="CYX", max_channels=32)
    # The picture's rows are now read as its channels, as the person asked.
    assert image.pixels.shape == (1, 24, 3, 20) and not image.colour
    with pytest.raises(JobInputError, match="has 20 channels"):
        read(data, "c.png", dimension_order="CYX")


def test_a_blank_dimension_order_means_infer():
    assert read(tiff_bytes(planes(3, 20, 24)), dimension_order="  ").axes == "QYX"


@pytest.mark.parametrize("order", ["CYW", "CCX", "ZCY", "C-YX", "YX C"])
def test_a_malformed_dimension_order_is_rejected(order):
    with pytest.raises(JobInputError, match="is not valid: use the letters Z, T, C, Y and X"):
        read(tiff_bytes(planes(3, 20, 24)), dimension_order=order)


def test_a_dimension_order_of_the_wrong_length_is_rejected():
    with pytest.raises(JobInputError, match=r"'ZCYX' names 4 axes but the image 'cells.tif' has 3 \(shape 3×20×24\)"):
        read(tiff_bytes(planes(3, 20, 24)), dimension_order="ZCYX")


# --- limits -------------------------------------------------------------------------------


def test_a_tiff_decompression_bomb_is_rejected_from_its_header():
    # 2.7 gigapixels in a few megabytes: decoding it would allocate 2.7 GB.
    bomb = tiff_bomb(51200)
    assert len(bomb) < 5_000_000
    with pytest.raises(JobInputError, match=r"'bomb.tif' is 51200×51200 = 2.62 gigapixels; the limit is 10 megapixels"):
        read(bomb, "bomb.tif")


def test_a_png_decompression_bomb_is_rejected_from_its_header():
    bomb = png_bomb(5000, 5000, complete=True)  # 25 megapixels in about 25 kB
    assert len(bomb) < 100_000
    with pytest.raises(JobInputError, match=r"is 5000×5000 = 25 megapixels; the limit is 10 megapixels"):
        read(bomb, "bomb.png")


@pytest.mark.parametrize("side", [10_000, 20_000], ids=["pillow-warning", "pillow-error"])
def test_pillows_own_bomb_guard_becomes_an_input_error(side):
    with pytest.raises(JobInputError, match="is larger than 89.5 megapixels, the limit for PNG files"):
        read(png_bomb(side, side, complete=False), "huge.png", max_pixels=10**9)


def test_the_frames_of_a_stack_count_towards_the_pixel_limit():
    data = tiff_bytes(planes(30, 100, 100, dtype=np.uint8), imagej=True, metadata={"axes": "ZYX"})
    with pytest.raises(JobInputError, match=r"is 30 frames of 100×100 = 300,000 pixels; the limit is 100,000 pixels"):
        read(data, max_pixels=100_000)
    assert read(data, max_pixels=300_000).pixels.shape == (30, 100, 100, 1)


def test_too_many_channels_are_rejected():
    data = tiff_bytes(planes(9, 10, 12), imagej=True, metadata={"axes": "CYX"})
    with pytest.raises(JobInputError, match=r"has 9 channels .*at most 8 are supported.*dimension order"):
        read(data)


def test_complex_pixels_are_rejected():
    data = tiff_bytes(np.ones((10, 12), np.complex64))
    with pytest.raises(JobInputError, match="holds complex64 pixels"):
        read(data)


# --- unreadable files ---------------------------------------------------------------------


def test_an_empty_file_is_rejected():
    with pytest.raises(JobInputError, match=r"the file 'cells.tif' is empty \(0 bytes\)"):
        read(b"")


@pytest.mark.parametrize(
    "data",
    [
        b"cell_id,area\n1,20\n",
        pillow_bytes(planes(10, 12, dtype=np.uint8), "GIF"),
        pillow_bytes(planes(10, 12, dtype=np.uint8), "BMP"),
    ],
    ids=["text", "gif", "bmp"],
)
def test_other_formats_are_rejected(data):
    with pytest.raises(JobInputError, match="'cells.tif' is not a TIFF, PNG or JPEG image"):
        read(data)


def _multipage_cut_at_second_page() -> bytes:
    data = tiff_bytes(planes(3, 20, 24), metadata=None)
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        return data[: tif.pages[1].offset]


def _ome_cut_in_description() -> bytes:
    data = tiff_bytes(planes(2, 3, 20, 24), ome=True, metadata={"axes": "TCYX"})
    return data[:-100]  # tifffile puts the OME-XML last


@pytest.mark.parametrize(
    "data",
    [
        tiff_bytes(planes(30, 40))[:1000],
        tiff_bytes(planes(30, 40), compression="zlib")[:-500],
        tiff_bytes(planes(30, 40))[:6],
        _multipage_cut_at_second_page(),
        _ome_cut_in_description(),
        pillow_bytes(planes(30, 40, dtype=np.uint8), "PNG")[:600],
        pillow_bytes(planes(30, 40, 3, dtype=np.uint8), "JPEG")[:-300],
        pillow_bytes(planes(30, 40, dtype=np.uint8), "JPEG")[:200],
    ],
    ids=["tiff", "tiff-zlib", "tiff-header", "tiff-lost-pages", "ome-lost-axes", "png", "jpeg", "jpeg-header"],
)
def test_a_truncated_file_is_rejected(data):
    with pytest.raises(JobInputError, match="'cells.tif' is (not a readable|an incomplete) .*truncated"):
        read(data)


def _flip_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(255 - byte for byte in data[middle : middle + 16]) + data[middle + 16 :]


@pytest.mark.parametrize(
    "data",
    [
        tiff_bytes(planes(30, 40), compression="zlib"),
        pillow_bytes(planes(30, 40, dtype=np.uint8), "PNG"),
    ],
    ids=["tiff-zlib", "png"],
)
def test_a_corrupt_file_is_rejected(data):
    with pytest.raises(JobInputError, match="is not a readable (TIFF|PNG) image"):
        read(_flip_middle(data))
