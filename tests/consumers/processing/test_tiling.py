"""Tiling images and stitching predictions back without seams."""

import numpy as np
import pytest
import scipy.ndimage

from consumers.processing.tiling import stitch_tiles, tile_image

rng = np.random.default_rng(11)
SIZES = [(1, 1), (17, 300), (255, 257), (256, 256), (700, 513), (1100, 900)]


def random_image(height: int, width: int, channels: int = 2) -> np.ndarray:
    return rng.random((height, width, channels), dtype=np.float32)


def mean_3x3(pixels: np.ndarray) -> np.ndarray:
    """A local filter; 'mirror' is the reflection tiling pads with, so even borders match."""
    return scipy.ndimage.uniform_filter(pixels, size=(3, 3, 1), mode="mirror")


@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("overlap", [0, 32, 64])
def test_stitching_the_tiles_gives_back_the_image(size, overlap):
    image = random_image(*size)
    tiles, layout = tile_image(image, overlap=overlap)
    assert tiles.shape[1:] == (256, 256, 2) and tiles.dtype == np.float32
    np.testing.assert_allclose(stitch_tiles(tiles, layout), image, rtol=1e-6)


def test_an_image_of_one_tile_is_one_tile():
    assert tile_image(random_image(256, 256))[1].count == 1
    assert tile_image(random_image(40, 90))[1].count == 1


@pytest.mark.parametrize("size", SIZES, ids=str)
def test_a_per_pixel_operation_stitches_without_seams(size):
    image = random_image(*size)
    tiles, layout = tile_image(image)
    stitched = stitch_tiles(np.sin(3 * tiles) + tiles**2, layout)
    np.testing.assert_allclose(stitched, np.sin(3 * image) + image**2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", SIZES, ids=str)
def test_a_local_filter_applied_per_tile_stitches_without_seams(size):
    image = random_image(*size)
    tiles, layout = tile_image(image, overlap=32)
    stitched = stitch_tiles(np.stack([mean_3x3(tile) for tile in tiles]), layout)
    np.testing.assert_allclose(stitched, mean_3x3(image), rtol=1e-5, atol=1e-6)


def test_a_filter_as_wide_as_the_margin_is_still_exact():
    image = random_image(700, 600)
    tiles, layout = tile_image(image, overlap=64)
    size = 2 * layout.margin + 1

    def wide(pixels):
        return scipy.ndimage.uniform_filter(pixels, size=(size, size, 1), mode="mirror")

    stitched = stitch_tiles(np.stack([wide(tile) for tile in tiles]), layout)
    np.testing.assert_allclose(stitched, wide(image), rtol=1e-5, atol=1e-6)


def test_tiles_without_overlap_do_show_seams():
    # The check above is sharp: plain tiling breaks the filter along every tile edge.
    image = random_image(700, 513)
    tiles, layout = tile_image(image, overlap=0)
    stitched = stitch_tiles(np.stack([mean_3x3(tile) for tile in tiles]), layout)
    assert np.abs(stitched - mean_3x3(image)).max() > 0.05


def test_tiles_of_several_images_share_one_batch():
    images = [random_image(300, 200), random_image(50, 60), random_image(600, 700)]
    tiled = [tile_image(image, overlap=32) for image in images]
    batch = np.concatenate([tiles for tiles, _ in tiled])
    start = 0
    for image, (_, layout) in zip(images, tiled):
        np.testing.assert_allclose(stitch_tiles(batch[start : start + layout.count], layout), image, rtol=1e-6)
        start += layout.count
    assert start == len(batch)


def test_predictions_may_have_other_channels_than_the_image():
    image = random_image(400, 300, channels=1)
    tiles, layout = tile_image(image)
    stitched = stitch_tiles(np.concatenate([tiles, 1 - tiles, 2 * tiles], axis=-1), layout)
    np.testing.assert_allclose(stitched, np.concatenate([image, 1 - image, 2 * image], axis=-1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("overlap", [-1, 129])
def test_an_overlap_beyond_half_a_tile_is_refused(overlap):
    with pytest.raises(ValueError, match="overlap"):
        tile_image(random_image(10, 10), overlap=overlap)


def test_stitching_tiles_of_another_layout_is_refused():
    tiles, layout = tile_image(random_image(600, 600))
    with pytest.raises(ValueError, match="tiles of 256×256"):
        stitch_tiles(tiles[:-1], layout)
