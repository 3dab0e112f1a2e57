"""Result files (label TIFFs, result ZIPs) and safe reading of uploaded ZIP archives."""

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import BinaryIO

import numpy as np
import tifffile

from consumers.errors import JobInputError
from consumers.filetypes import MAX_STEM_LENGTH
from consumers.processing.messages import byte_count

IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg"}
# Files that operating systems add to archives behind people's backs.
JUNK_FOLDERS = {"__MACOSX"}
JUNK_FILES = {".DS_Store", "Thumbs.db", "desktop.ini"}
# Nested folders are flattened into one file name joined by this.
FOLDER_SEPARATOR = "__"

# Already-compressed formats gain nothing from deflate (label TIFFs are zlib-compressed).
_STORED_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".zip", ".gz"}
# The earliest time a ZIP can record: a fixed stamp makes re-runs byte-identical.
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_READ_CHUNK = 1 << 20
# What zipfile raises for data that is not a (whole) ZIP archive; storage errors are not among them.
_CORRUPT = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, struct.error)
# A member may always unpack to this much, whatever its compression ratio (a blank image compresses well).
_RATIO_FLOOR_BYTES = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
# Control characters and those Windows forbids in names, replaced by '_'.
_UNSAFE_CHARACTERS = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')


def label_tiff(labels: np.ndarray, pixel_size_um: float | None = None) -> bytes:
    """Encode (H, W) or (F, H, W) instance labels as a zlib-compressed TIFF,
    uint16 when the largest label fits, else uint32; with `pixel_size_um`, the
    resolution tags (per centimetre) and ImageJ's unit say the pixel size."""
    if labels.ndim not in (2, 3) or labels.dtype.kind not in "biu":
        raise ValueError(f"expected (H, W) or (F, H, W) integer labels, got {labels.dtype} {labels.shape}")
    low, high = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
    if low < 0 or high > np.iinfo(np.uint32).max:
        raise ValueError(f"labels must lie in 0..{np.iinfo(np.uint32).max}, got {low}..{high}")
    dtype = np.uint16 if high <= np.iinfo(np.uint16).max else np.uint32
    buffer = io.BytesIO()
    resolution = {}
    if pixel_size_um:
        per_cm = 1e4 / pixel_size_um
        resolution = {"resolution": (per_cm, per_cm), "resolutionunit": tifffile.RESUNIT.CENTIMETER}
    tifffile.imwrite(buffer, labels.astype(dtype, copy=False), photometric="minisblack", compression="zlib",
                     **resolution)
    return buffer.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """Pack `files` (name → content) into a ZIP archive that is byte-identical for the
    same files: members sorted by name, fixed timestamps, images stored, others deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            reason = _unsafe_reason(name)
            if reason:
                raise ValueError(f"result file name {name!r} {reason}")
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            stored = PurePosixPath(name).suffix.lower() in _STORED_SUFFIXES
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16  # rw-r--r-- when unpacked
            archive.writestr(info, files[name])
    return buffer.getvalue()


class ZipImages:
    """The images (TIFF, PNG, JPEG by name) of an uploaded ZIP archive, unpacked one at a time.

    Opening checks every name and lists the images as `members`: (name, info) pairs sorted
    by path, named by the path with folders joined by '__' ('a/b/img.tif' → 'a__b__img.tif'),
    characters unsafe in file names replaced by '_', stems cut to `MAX_STEM_LENGTH` and
    '-2', '-3'... added before the suffix if names collide, so a name never holds a separator
    nor escapes a folder. Folders, other files and operating-system junk (__MACOSX/, ._*,
    .DS_Store, Thumbs.db) are skipped. `chunks` unpacks one member in pieces of 1 MiB, so
    memory holds one piece whatever the archive's size. JobInputError for a corrupt or
    non-ZIP archive, an unsafe member name (absolute, drive letter, '..'), an encrypted
    image, more than `max_members` images, no image at all, more than `max_total_bytes`
    unpacked (the bytes actually produced, not the headers' sizes) or a member inflating
    more than `max_ratio` times its compressed size.
    """

    def __init__(self, source: BinaryIO, *, max_members: int, max_total_bytes: int,
                 max_ratio: float) -> None:
        try:
            self.archive = zipfile.ZipFile(source)
        except _CORRUPT as error:
            raise JobInputError("the upload is not a readable ZIP archive (it may be truncated or corrupt)") from error
        images = _image_members(self.archive.infolist())
        if not images:
            raise JobInputError(
                "the ZIP archive contains no TIFF, PNG or JPEG images (files named .tif, .tiff, .png, .jpg or .jpeg)"
            )
        if len(images) > max_members:
            raise JobInputError(f"the ZIP archive contains {len(images)} images; the limit is {max_members}")
        names = _unique_names(_short(FOLDER_SEPARATOR.join(_sanitised_parts(info.filename))) for info in images)
        self.members = list(zip(names, images))
        self.max_total_bytes = max_total_bytes
        self.max_ratio = max_ratio
        self.unpacked = 0  # bytes of the members unpacked in full so far

    def __enter__(self) -> "ZipImages":
        return self

    def __exit__(self, *_: object) -> None:
        self.archive.close()

    def head(self, info: zipfile.ZipInfo, size: int) -> bytes:
        """A member's first `size` bytes (to tell its kind before unpacking it)."""
        with self._reading(info) as member:
            return member.read(size)

    def chunks(self, info: zipfile.ZipInfo) -> Iterator[bytes]:
        """A member's bytes, a piece at a time; it counts towards the total once read in full,
        so reading a member again (a retried write) counts it once."""
        remaining = self.max_total_bytes - self.unpacked
        allowed = max(info.compress_size * self.max_ratio, _RATIO_FLOOR_BYTES)
        produced = 0
        with self._reading(info) as member:
            while chunk := member.read(min(_READ_CHUNK, remaining - produced + 1)):
                produced += len(chunk)
                if produced > remaining:
                    raise JobInputError(f"the images in the ZIP archive unpack to more than "
                                        f"{byte_count(self.max_total_bytes)}, the limit")
                if produced > allowed:
                    raise JobInputError(
                        f"the image '{info.filename}' in the ZIP archive unpacks to more than "
                        f"{self.max_ratio:g} times its compressed size, the limit (a ZIP bomb?)")
                yield chunk
        self.unpacked += produced

    @contextmanager
    def _reading(self, info: zipfile.ZipInfo) -> Iterator[zipfile.ZipExtFile]:
        """A member opened for reading; corrupt data and unsupported methods are the input's fault,
        anything else (a storage read failing) is not."""
        try:
            with self.archive.open(info) as member:
                yield member
        except NotImplementedError as error:  # zipfile's answer to e.g. Deflate64
            raise JobInputError(
                f"the image '{info.filename}' in the ZIP archive uses a compression method that is not "
                "supported; re-create the archive with standard (deflate) compression"
            ) from error
        except _CORRUPT as error:
            raise JobInputError(
                f"the image '{info.filename}' in the ZIP archive is corrupt (the archive may be truncated)"
            ) from error


def _image_members(infos: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """The image members, sorted by path, after checking every member's name is safe."""
    images = []
    for info in infos:
        reason = _unsafe_reason(info.filename)
        if reason:
            raise JobInputError(f"the ZIP archive is unsafe: the member '{info.filename}' {reason}")
        parts = _parts(info.filename)
        if info.is_dir() or not parts or _is_junk(parts):
            continue
        if PurePosixPath(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if info.flag_bits & 0x1:
            raise JobInputError(f"the image '{info.filename}' in the ZIP archive is password-protected")
        images.append(info)
    # Stable sort: same-named members keep their order in the archive.
    return sorted(images, key=lambda info: "/".join(_parts(info.filename)))


def _parts(name: str) -> list[str]:
    """A member name's path components; backslashes count as separators too."""
    return [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]


def _unsafe_reason(name: str) -> str | None:
    """Why a member name could escape the folder it is unpacked into, or None if it cannot."""
    unified = name.replace("\\", "/")
    if unified.startswith("/"):
        return "is an absolute path"
    if _DRIVE.match(unified):
        return "starts with a drive letter"
    if ".." in _parts(name):
        return "climbs out of its folder with '..'"
    return None


def _is_junk(parts: list[str]) -> bool:
    return any(part in JUNK_FOLDERS for part in parts) or parts[-1].startswith("._") or parts[-1] in JUNK_FILES


def _sanitised_parts(name: str) -> list[str]:
    return [_UNSAFE_CHARACTERS.sub("_", part) for part in _parts(name)]


def _short(name: str) -> str:
    """`name` with its stem cut to `MAX_STEM_LENGTH` characters, as uploads' names are."""
    path = PurePosixPath(name)
    return f"{path.stem[:MAX_STEM_LENGTH]}{path.suffix[:MAX_STEM_LENGTH]}"


def _unique_names(names: Iterable[str]) -> list[str]:
    """The names, with '-2', '-3'... before the suffix of repeats."""
    seen: set[str] = set()
    unique = []
    for name in names:
        candidate, number = name, 1
        while candidate in seen:
            number += 1
            path = PurePosixPath(name)
            candidate = f"{path.stem}-{number}{path.suffix}"
        seen.add(candidate)
        unique.append(candidate)
    return unique
