"""Upload checks: the content's type by its first bytes, and a storage key that stays in `uploads/`."""

import re
import unicodedata
import uuid

SIGNATURES = {
    b"II*\x00": "tif", b"MM\x00*": "tif", b"II+\x00": "tif", b"MM\x00+": "tif",
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpg",
    b"PK\x03\x04": "zip", b"PK\x05\x06": "zip",
}
SNIFF_BYTES = max(len(s) for s in SIGNATURES)
MAX_NAME_LENGTH = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UploadRejected(ValueError):
    """The upload is not an accepted file; the message says why."""


def sniff(head: bytes) -> str:
    """The file's kind (`tif`, `png`, `jpg` or `zip`) from its first bytes."""
    for signature, kind in SIGNATURES.items():
        if head.startswith(signature):
            return kind
    raise UploadRejected("only TIFF, PNG, JPEG or ZIP files are accepted")


def safe_name(filename: str | None, kind: str) -> str:
    """The file's base name with only letters, digits, `.`, `_` and `-`; never `..` or a path."""
    base = re.split(r"[/\\]", filename or "")[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    base = _UNSAFE.sub("_", base).strip("._-")
    stem, dot, extension = base.rpartition(".")
    if not dot:
        stem, extension = base, ""
    if (extension.lower() == "zip") != (kind == "zip"):
        if kind != "zip":
            raise UploadRejected(f"'{filename}' is named .zip but holds a {kind.upper()} image")
        extension = "zip"
    stem = stem[:MAX_NAME_LENGTH] or "upload"
    return f"{stem}.{extension or kind}"


def upload_key(name: str) -> str:
    """A fresh key under `uploads/`, so two uploads of one name never clobber each other."""
    return f"uploads/{uuid.uuid4().hex}/{name}"
