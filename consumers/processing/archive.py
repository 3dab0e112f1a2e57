"""Result files (label TIFFs, result ZIPs) and safe reading of uploaded ZIP archives."""

import io
import re
import zipfile
from collections.abc import Iterable
from pathlib import PurePosixPath

import numpy as np
import tifffile

from consumers.errors import JobInputError
from consumers.processing.messages import blame_input, byte_count

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
_DRIVE = re.compile(r"^[A-Za-z]:")
# Control characters and those Windows forbids in names, replaced by '_'.
_UNSAFE_CHARACTERS = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')


def label_tiff(labels: np.ndarray) -> bytes:
    """Encode (H, W) or (F, H, W) instance labels as a zlib-compressed TIFF,
    uint16 when the largest label fits, else uint32."""
    if labels.ndim not in (2, 3) or labels.dtype.kind not in "biu":
        raise ValueError(f"expected (H, W) or (F, H, W) integer labels, got {labels.dtype} {labels.shape}")
    low, high = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
    if low < 0 or high > np.iinfo(np.uint32).max:
        raise ValueError(f"labels must lie in 0..{np.iinfo(np.uint32).max}, got {low}..{high}")
    dtype = np.uint16 if high <= np.iinfo(np.uint16).max else np.uint32
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, labels.astype(dtype, copy=False), photometric="minisblack", compression="zlib")
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


def safe_zip_members(data: bytes, *, max_members: int, max_total_bytes: int) -> list[tuple[str, bytes]]:
    """Read the images (TIFF, PNG, JPEG by name) of an uploaded ZIP archive.

    Returns (name, content) pairs sorted by path, named by the path with folders joined
    by '__' ('a/b/img.tif' → 'a__b__img.tif'), characters unsafe in file names replaced
    by '_' and '-2', '-3'... added before the suffix if names collide, so a name never
    holds a separator nor escapes a folder. Folders, other files and operating-system
    junk (__MACOSX/, ._*, .DS_Store, Thumbs.db) are skipped. Raises JobInputError for a
    corrupt or non-ZIP archive, an unsafe member name (absolute, drive letter, '..'),
    an encrypted image, more than `max_members` images, more than `max_total_bytes`
    unpacked (counted on the bytes actually decompressed), or no image at all.
    """
    with blame_input("the upload is not a readable ZIP archive (it may be truncated or corrupt)"):
        archive = zipfile.ZipFile(io.BytesIO(data))
    with archive:
        images = _image_members(archive.infolist())
        if not images:
            raise JobInputError(
                "the ZIP archive contains no TIFF, PNG or JPEG images (files named .tif, .tiff, .png, .jpg or .jpeg)"
            )
        if len(images) > max_members:
            raise JobInputError(f"the ZIP archive contains {len(images)} images; the limit is {max_members}")
        names = _unique_names(FOLDER_SEPARATOR.join(_sanitised_parts(info.filename)) for info in images)
        remaining = max_total_bytes
        members = []
        for name, info in zip(names, images):
            content = _read_member(archive, info, remaining, max_total_bytes)
            remaining -= len(content)
            members.append((name, content))
    return members


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


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, remaining: int, limit: int) -> bytes:
    """Decompress one member, stopping as soon as the archive's total passes the limit.

    Sizes in the headers are not trusted: only the bytes actually produced count.
    """
    chunks = []
    with blame_input(f"the image '{info.filename}' in the ZIP archive is corrupt (the archive may be truncated)"):
        try:
            with archive.open(info) as member:
                while chunk := member.read(min(_READ_CHUNK, remaining + 1)):
                    remaining -= len(chunk)
                    if remaining < 0:
                        raise JobInputError(
                            f"the images in the ZIP archive unpack to more than {byte_count(limit)}, the limit"
                        )
                    chunks.append(chunk)
        except NotImplementedError as error:  # zipfile's answer to e.g. Deflate64
            raise JobInputError(
                f"the image '{info.filename}' in the ZIP archive uses a compression method that is not "
                "supported; re-create the archive with standard (deflate) compression"
            ) from error
    return b"".join(chunks)


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
