"""Choosing the channels a model is fed."""

import numpy as np
import pytest

from consumers.errors import JobInputError
from consumers.processing.channels import select_channels
from consumers.processing.imageio import Image, read_image
from tests.consumers.processing.samples import pillow_bytes

rng = np.random.default_rng(3)


def image(frames: int, channels: int, *, colour: bool = False, axes: str = "CYX") -> Image:
    return Image(rng.integers(0, 4000, (frames, 12, 16, channels), dtype=np.uint16), colour, axes)


def test_chosen_channels_are_taken_in_the_order_given():
    picture = image(2, 4)
    selected = select_channels(picture, [3, 1], 2, model_name="Mesmer")
    np.testing.assert_array_equal(selected, picture.pixels[..., [3, 1]])


def test_a_channel_may_be_chosen_twice():
    picture = image(1, 1)
    np.testing.assert_array_equal(select_channels(picture, [0, 0], 2), np.repeat(picture.pixels, 2, axis=-1))


@pytest.mark.parametrize("selected", [[4], [-1]])
def test_a_channel_the_image_lacks_is_rejected(selected):
    with pytest.raises(JobInputError, match=r"but the image has 4 channels \(numbered 0 to 3\)"):
        select_channels(image(1, 4), selected, 1)


def test_the_only_channel_is_named_plainly():
    with pytest.raises(JobInputError, match=r"^channel 1 was chosen but the image has 1 channel \(numbered 0\)$"):
        select_channels(image(1, 1), [1], 1)


def test_choosing_the_wrong_number_of_channels_is_rejected():
    with pytest.raises(JobInputError, match="model Mesmer expects 2 channels but the choice lists 1"):
        select_channels(image(1, 4), [0], 2, model_name="Mesmer")


@pytest.mark.parametrize("selected", [None, []])
def test_without_a_choice_matching_channels_are_used_as_they_are(selected):
    picture = image(3, 2)
    assert select_channels(picture, selected, 2) is picture.pixels


def test_a_colour_picture_feeds_a_one_channel_model_its_brightest_colour():
    # Nuclei stained green in an RGB photo must not vanish into a red channel.
    picture = read_image(
        pillow_bytes(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), "PNG"),
        "nuclei.png",
        max_pixels=10**6,
        max_channels=4,
    )
    selected = select_channels(picture, None, 1)
    np.testing.assert_array_equal(selected, picture.pixels.max(axis=-1, keepdims=True))


def test_a_multichannel_image_without_a_choice_is_rejected():
    with pytest.raises(
        JobInputError,
        match="^the image has 4 channels but model NuclearSegmentation expects 1: choose the channel\\(s\\) to use$",
    ):
        select_channels(image(1, 4), None, 1, model_name="NuclearSegmentation")


def test_a_colour_picture_cannot_feed_a_two_channel_model_unasked():
    with pytest.raises(JobInputError, match="has 3 channels but model Mesmer expects 2"):
        select_channels(image(1, 3, colour=True, axes="YXS"), None, 2, model_name="Mesmer")


def test_planes_read_as_frames_get_a_hint_about_the_dimension_order():
    with pytest.raises(JobInputError, match=r"its 2 planes \(axes 'QYX'\) were read as .* set the dimension order"):
        select_channels(image(2, 1, axes="QYX"), None, 2, model_name="Mesmer")
