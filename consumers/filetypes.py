"""File kinds told by their first bytes, never by their names: what uploads, zip members
and downloads are taken to be."""

SIGNATURES = {
    b"II*\x00": "tif", b"MM\x00*": "tif", b"II+\x00": "tif", b"MM\x00+": "tif",
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpg",
    b"PK\x03\x04": "zip", b"PK\x05\x06": "zip",
}
SNIFF_BYTES = max(len(s) for s in SIGNATURES)
IMAGE_KINDS = frozenset({"tif", "png", "jpg"})
MAX_STEM_LENGTH = 120
"""Stored files keep at most this many characters of their name before the extension."""
MEDIA_TYPES = {"tif": "image/tiff", "png": "image/png", "jpg": "image/jpeg", "zip": "application/zip"}


def file_kind(head: bytes) -> str | None:
    """`tif`, `png`, `jpg` or `zip` from a file's first bytes (at least `SNIFF_BYTES`); None otherwise."""
    return next((kind for signature, kind in SIGNATURES.items() if head.startswith(signature)), None)


OME_ZARR_SUFFIXES = (".zarr.zip", ".ozx")
"""Upload names read as one zipped OME-Zarr image, not as a zip of images."""


def is_ome_zarr_name(name: str) -> bool:
    """True for an upload named as a zipped OME-Zarr image (`.zarr.zip`, `.ozx`)."""
    return name.lower().endswith(OME_ZARR_SUFFIXES)
