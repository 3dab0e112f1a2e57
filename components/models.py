"""The model files the repository ships, as objects of the kiosk bucket.

TF-Serving loads `models/<Name>/<version>/` from the bucket (directly on GCS,
through the sync sidecar on S3). The stack uploads every file of each
configured model version found under the repository's `models/` directory;
versions the repository does not hold are the operator's to upload.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from components.shapes import MODELS


@dataclass(frozen=True)
class ModelFile:
    # Object key in the bucket: models/<Name>/<version>/<relative path>.
    key: str
    # Path of the file for the FileAsset (as given: relative keeps state machine-independent).
    source: str
    # Base64 MD5 of the content, as GCS reports it; changes replace the object.
    md5_base64: str
    # Hex SHA-256 of the content (S3's source_hash); changes update the object.
    sha256_hex: str


def model_files(models_dir: Path, models: Sequence[tuple[str, Sequence[int]]],
                relative_to: Path | None = None) -> tuple[ModelFile, ...]:
    """Every regular, non-hidden file under models_dir/<name>/<version>/ for
    the given (name, versions), sorted by key. Missing versions are skipped."""
    found: list[ModelFile] = []
    for name, versions in models:
        for version in versions:
            version_dir = models_dir / name / str(version)
            if not version_dir.is_dir():
                continue
            for path in sorted(version_dir.rglob("*")):
                rel = path.relative_to(version_dir)
                if not path.is_file() or any(part.startswith(".") for part in rel.parts):
                    continue
                data = path.read_bytes()
                found.append(ModelFile(
                    key=f"{MODELS}{name}/{version}/{rel.as_posix()}",
                    source=os.path.relpath(path, relative_to) if relative_to is not None else str(path),
                    md5_base64=base64.b64encode(hashlib.md5(data).digest()).decode(),
                    sha256_hex=hashlib.sha256(data).hexdigest(),
                ))
    keys = [f.key for f in found]
    if len(set(keys)) != len(keys):
        raise ValueError(f"model files listed twice: {sorted(k for k in keys if keys.count(k) > 1)}")
    return tuple(sorted(found, key=lambda f: f.key))
