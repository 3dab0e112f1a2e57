"""Helpers for the messages shown to people when an input is rejected."""

from collections.abc import Iterator
from contextlib import contextmanager

from consumers.errors import JobInputError


@contextmanager
def blame_input(message: str) -> Iterator[None]:
    """Turn any failure inside the block into JobInputError(message).

    Only for parsing bytes already in memory: that does no I/O, so a failure is the
    input's fault. MemoryError is the machine's state and passes through to be retried.
    """
    try:
        yield
    except (JobInputError, MemoryError):
        raise
    except Exception as error:
        raise JobInputError(message) from error


def pixel_count(count: int) -> str:
    """'512 pixels', '16.8 megapixels', '1.6 gigapixels'."""
    return _scaled(count, "pixels", "megapixels", "gigapixels")


def byte_count(count: int) -> str:
    """'512 bytes', '16.8 MB', '1.6 GB'."""
    return _scaled(count, "bytes", "MB", "GB")


def dimensions(shape: tuple[int, ...]) -> str:
    """'3×512×512'."""
    return "×".join(str(size) for size in shape)


def image_size(width: int, height: int, frames: int = 1) -> str:
    """'640×480', or '640×480×3 frames' for a stack."""
    return f"{width}×{height}" + (f"×{frames} frames" if frames > 1 else "")


def _scaled(count: int, unit: str, mega: str, giga: str) -> str:
    if count >= 10**9:
        return f"{count / 10**9:.3g} {giga}"
    if count >= 10**6:
        return f"{count / 10**6:.3g} {mega}"
    return f"{count:,} {unit}"
