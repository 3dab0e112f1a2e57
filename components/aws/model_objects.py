"""The repository's model files as objects under the S3 bucket's models/."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.models import ModelFile


@dataclass(frozen=True)
class S3ModelObjectsArgs:
    bucket: pulumi.Input[str]
    files: Sequence[ModelFile]


class S3ModelObjects(pulumi.ComponentResource):
    """One BucketObjectv2 per model file, named by its key (deterministic).
    The bucket's default SSE-S3 encryption applies to them."""

    def __init__(self, name: str, args: S3ModelObjectsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kiosk:aws:ModelObjects", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.objects = [
            aws.s3.BucketObjectv2(
                f"{name}-{f.key}",
                bucket=args.bucket,
                key=f.key,
                source=pulumi.FileAsset(f.source),
                source_hash=f.sha256_hex,
                content_type="application/octet-stream",
                opts=child,
            )
            for f in args.files
        ]
        self.keys = [f.key for f in args.files]
        self.register_outputs({"keys": self.keys})
