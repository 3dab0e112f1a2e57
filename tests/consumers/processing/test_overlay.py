"""The quick-look PNG with outlines."""

import io

import numpy as np
import PIL.Image
import pytest
import skimage.draw
import skimage.segmentation

from consumers.processing.overlay import OUTLINE_COLOUR, overlay_png


def cells(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Bright discs on a dim, noisy background, and their labels."""
    labels = np.zeros((size, size), np.int32)
    for number, (row, col) in enumerate([(20, 20), (20, 60), (60, 40)], start=1):
        labels[skimage.draw.disk((row, col), 12, shape=labels.shape)] = number
    noise = np.random.default_rng(2).normal(0, 20, labels.shape)
    image = np.clip(300 + noise + (labels > 0) * 3000, 0, None).astype(np.uint16)
    return image, labels


def decode(png: bytes) -> np.ndarray:
    with PIL.Image.open(io.BytesIO(png)) as picture:
        assert picture.format == "PNG"
        return np.asarray(picture.convert("RGB"))


@pytest.mark.parametrize("scale", [None, "unit"], ids=["uint16", "float-0-1"])
def test_outlines_are_drawn_over_the_grey_image(scale):
    image, labels = cells()
    if scale == "unit":
        image = image.astype(np.float32) / image.max()
    rgb = decode(overlay_png(image, labels))
    assert rgb.shape == (96, 96, 3)
    outline = skimage.segmentation.find_boundaries(labels, mode="inner")
    assert (rgb[outline] == OUTLINE_COLOUR).all()
    grey = rgb[~outline]
    assert (grey[:, 0] == grey[:, 1]).all() and (grey[:, 1] == grey[:, 2]).all()
    inside, background = rgb[(labels > 0) & ~outline, 0], rgb[labels == 0, 0]
    # Contrast-stretched: the cells are near white, the background near black.
    assert inside.mean() > 200 and background.mean() < 60


def test_without_objects_there_are_no_outlines():
    image, _ = cells()
    rgb = decode(overlay_png(image, np.zeros(image.shape, np.int32)))
    assert not (rgb == OUTLINE_COLOUR).all(axis=-1).any()


def test_touching_objects_are_both_outlined():
    labels = np.zeros((20, 20), np.int32)
    labels[5:15, 2:10], labels[5:15, 10:18] = 1, 2
    rgb = decode(overlay_png(np.ones((20, 20)), labels))
    magenta = (rgb == OUTLINE_COLOUR).all(axis=-1)
    assert magenta[10, 9] and magenta[10, 10]


def test_an_image_and_labels_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        overlay_png(np.zeros((10, 10)), np.zeros((10, 11), np.int32))
