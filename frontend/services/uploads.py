"""Upload checks: the content's type by its first bytes, and a storage key that stays in `uploads/`."""

import re
import unicodedata
import uuid

from consumers.filetypes import MAX_STEM_LENGTH, file_kind

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UploadRejected(ValueError):
    """The upload is not an accepted file; the message says why."""


def sniff(head: bytes) -> str:
    """The file's kind (`tif`, `png`, `jpg` or `zip`) from its first `SNIFF_BYTES` bytes."""
    kind = file_kind(head)
    if kind is None:
        raise UploadRejected("only TIFF, PNG, JPEG or ZIP files are accepted")
    return kind


def safe_name(filename: str | None, kind: str) -> str:
    """The file's base name with only letters, digits, `.`, `_` and `-`, never `..` or a path,
    and the extension of its sniffed kind (`x.svg` holding a PNG is stored as `x.png`)."""
    base = re.split(r"[/\\]", filename or "")[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    base = _UNSAFE.sub("_", base).strip("._-")
    stem, dot, extension = base.rpartition(".")
    if not dot:
        stem, extension = base, ""
    if extension.lower() in ("zip", "ozx") and kind != "zip":
        raise UploadRejected(f"'{filename}' is named .{extension.lower()} but holds a {kind.upper()} image")
    stem = stem[:MAX_STEM_LENGTH] or "upload"
    if kind == "zip" and extension.lower() == "ozx":
        return f"{stem}.ozx"  # a zipped OME-Zarr image keeps its name: it is one image, not a zip job
    return f"{stem}.{kind}"


def upload_key(name: str) -> str:
    """A fresh key under `uploads/`, so two uploads of one name never clobber each other."""
    return f"uploads/{uuid.uuid4().hex}/{name}"
