"""Resample images to the model's pixel size and labels back to the image's."""

import math

import numpy as np
import PIL.Image

from consumers.errors import JobInputError
from consumers.jobs import MAX_SCALE, MIN_SCALE
from consumers.processing.messages import pixel_count


def validate_scale(scale: float | str) -> float:
    """Return the user's scale as a float, or raise JobInputError if it is not in 0.1–10."""
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise JobInputError(f"the scale '{scale}' is not a number") from None
    if not (math.isfinite(value) and MIN_SCALE <= value <= MAX_SCALE):
        raise JobInputError(f"the scale {scale} is outside the supported range {MIN_SCALE:g} to {MAX_SCALE:g}")
    return value


def rescaled_shape(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    """The (height, width) of an image of `shape` after `rescale` by `scale`."""
    return tuple(max(1, round(size * scale)) for size in shape)


def rescale(frame: np.ndarray, scale: float, *, max_pixels: int | None = None) -> np.ndarray:
    """Resample an (H, W, C) float32 frame by `scale`, the image's pixel size relative
    to the model's training data (0.5: pixels half as large, so the frame halves).

    Scale 1 returns the frame itself. Bilinear, with anti-aliasing when shrinking.
    Raises JobInputError for a scale outside 0.1–10 or, when `max_pixels` is given,
    a result with more pixels than that.
    """
    scale = validate_scale(scale)
    if scale == 1:
        return frame
    height, width = rescaled_shape(frame.shape[:2], scale)
    if max_pixels is not None and height * width > max_pixels:
        raise JobInputError(
            f"rescaling the image by {scale:g} gives {width}×{height} = "
            f"{pixel_count(height * width)}; the limit is {pixel_count(max_pixels)}"
        )
    return resample(frame, (height, width))


def resample(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample an (H, W, C) float32 frame to `shape` (height, width): bilinear, anti-aliased when shrinking."""
    height, width = shape
    # Pillow's filters widen with the shrink factor, so shrinking averages instead of aliasing.
    channels = [
        PIL.Image.fromarray(np.ascontiguousarray(frame[..., channel], dtype=np.float32)).resize(
            (width, height), PIL.Image.Resampling.BILINEAR
        )
        for channel in range(frame.shape[2])
    ]
    return np.stack([np.asarray(channel) for channel in channels], axis=-1)


def restore_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample (..., h, w) instance labels to (..., H, W) by nearest neighbour.

    Label values are copied, never interpolated, so every label in the result is one of
    the input's; a label smaller than a pixel of the result may vanish when shrinking.
    """
    height, width = labels.shape[-2:]
    if (height, width) == tuple(shape):
        return labels
    # The source pixel whose centre is nearest each target pixel's centre.
    rows = np.minimum((np.arange(shape[0]) + 0.5) * height / shape[0], height - 1).astype(np.intp)
    cols = np.minimum((np.arange(shape[1]) + 0.5) * width / shape[1], width - 1).astype(np.intp)
    return labels[..., rows[:, None], cols]
