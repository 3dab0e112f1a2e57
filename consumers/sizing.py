"""What one consumer needs for an image, from the figures `benchmarks/large_image.py` measured
(README, "Large images"): the largest image a consumer takes follows from its memory and
scratch space, and the stacks size a consumer's memory and scratch volume from it."""

import math
import shutil
import tempfile

from consumers.errors import JobInputError
from consumers.processing.messages import image_size, pixel_count
from consumers.settings import ConsumerSettings

# glibc's allocator for a consumer: few arenas, and arrays above 1 MiB in their own mappings, so
# memory freed after each block goes back to the system instead of fragmenting the heap
# (a 629 MP image peaked at 2,229 MB without these, 1,849 MB with them).
MALLOC_ENV = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "1048576"}
# Peak RSS of one consumer streaming a large image (measured 2026-12-02 by
# benchmarks/large_image.py: 1,385 MB at 38 MP, 1,473 MB at 164 MP, 1,849 MB at 629 MP
# with MALLOC_ENV): a constant part (the block) and a slow growth, fitted above both.
STREAMED_PEAK_MIB = 1_400
STREAMED_MIB_PER_MEGAPIXEL = 0.8
# The small-image path holds the whole image several times over (issue 11: 3.8 GB at 40 MP).
WHOLE_BYTES_PER_PIXEL = 95
WHOLE_SCALE_FACTOR = 4  # a whole image may be rescaled to 4× its pixels (nuclei half the model's size)
BASE_MIB = 650  # a consumer before its first job
HEADROOM = 1.25  # memory asked for above the measured need
# Scratch space per pixel of a streamed image's results (labels Zarr, label TIFF, OME-Zarr
# pyramid, and the result zip holding a copy of them), beside the input itself: compressed
# labels measured 0.16 byte/pixel on synthetic nuclei; this allows dense real ones.
RESULT_SCRATCH_BYTES_PER_PIXEL = 3.0
INPUT_BYTES_PER_PIXEL = 2  # an uncompressed 16-bit, one-channel upload: what the stacks plan scratch for


def memory_needed_mib(max_image_pixels: int, large_image_pixels: int) -> int:
    """Memory (MiB) a consumer needs to stream images up to `max_image_pixels` and to hold
    images up to `large_image_pixels` whole, with `HEADROOM`."""
    streamed = STREAMED_PEAK_MIB + STREAMED_MIB_PER_MEGAPIXEL * max_image_pixels / 1e6
    whole = BASE_MIB + WHOLE_BYTES_PER_PIXEL * large_image_pixels / 2**20  # at scale 1
    return math.ceil(HEADROOM * max(streamed, whole))


def scratch_needed_bytes(pixels: int, input_bytes: int) -> int:
    """Scratch space (bytes) a streamed image of `pixels` uploaded as `input_bytes` needs."""
    return input_bytes + math.ceil(RESULT_SCRATCH_BYTES_PER_PIXEL * pixels)


def streamable_pixels(memory_mib: float) -> int:
    """The largest image whose streaming fits in `memory_mib` with `HEADROOM`."""
    return max(0, int((memory_mib / HEADROOM - STREAMED_PEAK_MIB) / STREAMED_MIB_PER_MEGAPIXEL * 1e6))


def pixel_limit(settings: ConsumerSettings) -> int:
    """The largest image this consumer takes: `max_image_pixels`, or less if its memory limit says so."""
    if settings.memory_limit_mib is None:
        return settings.max_image_pixels
    return min(settings.max_image_pixels, streamable_pixels(settings.memory_limit_mib))


def whole_scaled_pixels(settings: ConsumerSettings) -> int:
    """The most pixels an image on the small-image path may be rescaled to: its scale may double a side
    of the largest image held whole."""
    return min(pixel_limit(settings), WHOLE_SCALE_FACTOR * settings.large_image_pixels)


def check_size(name: str, width: int, height: int, frames: int, settings: ConsumerSettings) -> None:
    """Fail an image over this consumer's pixel limit, saying which limit it is."""
    pixels, limit = width * height * frames, pixel_limit(settings)
    if pixels <= limit:
        return
    why = "" if limit == settings.max_image_pixels else (
        f" (what a consumer with {settings.memory_limit_mib:,.0f} MiB of memory can stream)")
    raise JobInputError(f"the image '{name}' is {image_size(width, height, frames)} = {pixel_count(pixels)}; "
                        f"the limit is {pixel_count(limit)}{why}")


def check_scratch(name: str, pixels: int, input_bytes: int) -> None:
    """Fail an image whose streaming would not fit in the free scratch space, before downloading it."""
    needed, free = scratch_needed_bytes(pixels, input_bytes), shutil.disk_usage(tempfile.gettempdir()).free
    if needed > free:
        raise JobInputError(f"the image '{name}' ({pixel_count(pixels)}) needs about {needed / 1e9:.1f} GB of "
                            f"scratch space; a consumer has {free / 1e9:.1f} GB free")
