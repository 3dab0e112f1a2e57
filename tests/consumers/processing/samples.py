"""Real image and archive files, made in memory for the processing tests."""

import io
import struct
import zipfile
import zlib

import numpy as np
import PIL.Image
import tifffile


def tiff_bytes(array: np.ndarray, **options) -> bytes:
    """`array` written by tifffile with its keyword `options` (metadata, imagej, ome...);
    grey planes unless `photometric` says otherwise."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **{"photometric": "minisblack", **options})
    return buffer.getvalue()


def pillow_bytes(array: np.ndarray, format: str, mode: str | None = None, **options) -> bytes:
    """`array` saved by Pillow in `format`, converted to `mode` first if given."""
    picture = PIL.Image.fromarray(array)
    if mode is not None:
        picture = picture.convert(mode)
    buffer = io.BytesIO()
    picture.save(buffer, format=format, **options)
    return buffer.getvalue()


def tiff_bomb(side: int, tile: int = 1024) -> bytes:
    """A valid zlib-tiled TIFF of side × side black pixels, a few megabytes long."""
    encoded = zlib.compress(bytes(tile * tile), 9)
    tiles = (encoded for _ in range((side // tile) ** 2))  # pre-compressed tiles, written as they are
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, tiles, shape=(side, side), dtype=np.uint8, tile=(tile, tile), compression="zlib")
    return buffer.getvalue()


def png_bomb(width: int, height: int, *, complete: bool) -> bytes:
    """An 8-bit grey PNG of black pixels; if not `complete`, its data stops after a few rows
    (enough for code that must only read the header)."""
    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte + pixels
    rows = height if complete else 4
    pixels = b"".join(compressor.compress(row) for _ in range(rows)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A ZIP archive holding `members` (name → content) in the given order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


# Offsets of fields in a ZIP's local file header and central directory entry.
_LOCAL, _CENTRAL = b"PK\x03\x04", b"PK\x01\x02"
_FIELDS = {  # name: (format, offset in local header, offset in central entry)
    "flags": ("<H", 6, 8),
    "method": ("<H", 8, 10),
    "size": ("<I", 22, 24),
}


def patch_zip_headers(data: bytes, **values: int) -> bytes:
    """Overwrite header fields (flags, method, size = uncompressed size) of every member,
    in both the local headers and the central directory, as a forger would."""
    patched = bytearray(data)
    for signature, column in ((_LOCAL, 1), (_CENTRAL, 2)):
        start = patched.find(signature)
        while start != -1:
            for field, value in values.items():
                layout = _FIELDS[field]
                struct.pack_into(layout[0], patched, start + layout[column], value)
            start = patched.find(signature, start + 4)
    return bytes(patched)
