"""Intensity normalisation shared by training and inference.

The model is trained on images normalised by exactly this function, so the
consumer must use it too; keep it the single definition.
"""

import numpy as np

LOW_PERCENTILE = 1.0
HIGH_PERCENTILE = 99.8


def normalize(image: np.ndarray) -> np.ndarray:
    """Scale each channel of an (H, W, C) image to [0, 1] by robust percentiles.

    Values below the 1st percentile map to 0 and above the 99.8th to 1, so a
    few hot pixels or a dim background do not dominate. A flat channel maps to 0.
    """
    if image.ndim != 3:
        raise ValueError(f"expected an (H, W, C) image, got shape {image.shape}")
    pixels = image.astype(np.float32, copy=False)
    low, high = np.percentile(pixels, [LOW_PERCENTILE, HIGH_PERCENTILE], axis=(0, 1))
    span = np.where(high > low, high - low, 1.0).astype(np.float32)
    scaled = (pixels - low.astype(np.float32)) / span
    return np.clip(scaled, 0.0, 1.0, out=scaled)
