"""Choose the image channels a model is fed."""

import re

import numpy as np

from consumers.errors import JobInputError
from consumers.processing.imageio import Image

# Channel names of DNA stains and nuclear markers: a one-channel nuclear model takes the one so named.
NUCLEAR_CHANNEL = re.compile(r"dapi|hoechst|\bdna\b|nucle|draq ?5|sytox|\bh2b|propidium|\bpi\b", re.IGNORECASE)


def select_channels(
    image: Image,
    selected: list[int] | None,
    model_channels: int,
    *,
    model_name: str = "the model",
) -> np.ndarray:
    """Return the (F, H, W, model_channels) pixels to feed a model.

    `selected` lists channel indices (0-based, one per model channel); without it
    (None or empty) an image with exactly `model_channels` channels is used as is,
    a colour picture feeding a one-channel model becomes the per-pixel maximum of its
    colours (a stain in any colour), and a one-channel model given an image whose
    channels are named (OME metadata) takes the one channel named as a nuclear stain
    (DAPI, Hoechst...). Anything else raises JobInputError.
    """
    channels = image.pixels.shape[-1]
    if selected:
        return _explicit(image.pixels, selected, model_channels, model_name)
    if channels == model_channels:
        return image.pixels
    if image.colour and model_channels == 1:
        return image.pixels.max(axis=-1, keepdims=True)
    nuclear = [i for i, name in enumerate(image.channel_names or ()) if NUCLEAR_CHANNEL.search(name)]
    if model_channels == 1 and len(nuclear) == 1:
        return image.pixels[..., nuclear]
    raise JobInputError(
        f"the image has {_count(channels, 'channel')}{_names(image)} but model {model_name} expects "
        f"{model_channels}: choose the channel(s) to use{_frames_hint(image, model_channels)}"
    )


def _names(image: Image) -> str:
    """The channels' names, numbered as the choice numbers them, when the file names them."""
    if not image.channel_names:
        return ""
    return " (" + ", ".join(f"{i}: {name}" for i, name in enumerate(image.channel_names)) + ")"


def _explicit(pixels: np.ndarray, selected: list[int], model_channels: int, model_name: str) -> np.ndarray:
    channels = pixels.shape[-1]
    if len(selected) != model_channels:
        raise JobInputError(
            f"model {model_name} expects {_count(model_channels, 'channel')} but the choice lists {len(selected)}"
        )
    wrong = [index for index in selected if not 0 <= index < channels]
    if wrong:
        numbering = "numbered 0" if channels == 1 else f"numbered 0 to {channels - 1}"
        raise JobInputError(
            f"channel {wrong[0]} was chosen but the image has {_count(channels, 'channel')} ({numbering})"
        )
    return pixels[..., selected]


def _frames_hint(image: Image, model_channels: int) -> str:
    """Explain a stack read as frames when its planes may really be channels."""
    frames = image.pixels.shape[0]
    if frames == 1 or image.pixels.shape[-1] >= model_channels:
        return ""
    return (
        f"; its {frames} planes (axes '{image.axes}') were read as Z slices or time points: "
        "if they are channels, set the dimension order (e.g. 'CYX')"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
