"""A quick-look PNG: the image in grey with the segmented objects outlined."""

import io

import numpy as np
import PIL.Image
import skimage.segmentation

from consumers.processing.normalize import normalize

# Magenta stands out on grey and is distinguishable with the common colour-vision deficiencies.
OUTLINE_COLOUR = (255, 0, 255)
# Previews are throw-away: fast encoding matters more than a few percent of size.
PNG_COMPRESS_LEVEL = 1

# A palette image (one byte a pixel) encodes about three times faster than RGB:
# indices 0-254 are a grey ramp from black to white, 255 is the outline colour.
_OUTLINE_INDEX = 255
_GREY_LEVELS = np.rint(np.arange(_OUTLINE_INDEX) * 255 / (_OUTLINE_INDEX - 1)).astype(np.uint8)
_PALETTE = np.concatenate([np.repeat(_GREY_LEVELS, 3), OUTLINE_COLOUR]).astype(np.uint8).tobytes()


def overlay_png(image: np.ndarray, labels: np.ndarray) -> bytes:
    """Encode an (H, W) image, contrast-stretched to grey, with the outlines of the
    (H, W) instance `labels` drawn over it, as PNG bytes."""
    if image.shape != labels.shape or image.ndim != 2:
        raise ValueError(f"expected an (H, W) image and labels of the same shape, got {image.shape} and {labels.shape}")
    indices = _grey_indices(image)
    indices[skimage.segmentation.find_boundaries(labels, mode="inner")] = _OUTLINE_INDEX
    return _png(indices)


def grey_png(image: np.ndarray) -> bytes:
    """The (H, W) image of `overlay_png` without the outlines, pixel for pixel, as PNG bytes."""
    if image.ndim != 2:
        raise ValueError(f"expected an (H, W) image, got shape {image.shape}")
    return _png(_grey_indices(image))


def _grey_indices(image: np.ndarray) -> np.ndarray:
    # The stretch the model saw, so the preview shows what was segmented.
    stretched = normalize(image[..., None])[..., 0]
    return np.rint(stretched * (_OUTLINE_INDEX - 1)).astype(np.uint8)


def _png(indices: np.ndarray) -> bytes:
    picture = PIL.Image.fromarray(indices)
    picture.putpalette(_PALETTE)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()
