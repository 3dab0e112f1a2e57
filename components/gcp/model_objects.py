"""The repository's model files as objects under the GCS bucket's models/."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.models import ModelFile


@dataclass(frozen=True)
class GcsModelObjectsArgs:
    bucket: pulumi.Input[str]
    files: Sequence[ModelFile]


class GcsModelObjects(pulumi.ComponentResource):
    """One BucketObject per model file, named by its key (deterministic)."""

    def __init__(self, name: str, args: GcsModelObjectsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kiosk:gcp:ModelObjects", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.objects = [
            gcp.storage.BucketObject(
                f"{name}-{f.key}",
                bucket=args.bucket,
                name=f.key,
                source=pulumi.FileAsset(f.source),
                source_md5hash=f.md5_base64,
                content_type="application/octet-stream",
                opts=child,
            )
            for f in args.files
        ]
        self.keys = [f.key for f in args.files]
        self.register_outputs({"keys": self.keys})
