"""CORS of the kiosk's S3 bucket, for the portal's origin(s)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

METHODS = ("GET", "HEAD", "PUT", "POST")
HEADERS = ("Content-Type", "Content-Length", "Content-Disposition", "ETag")


@dataclass(frozen=True)
class BucketCorsArgs:
    bucket: pulumi.Input[str]
    # Origins of the portal that upload/download with signed URLs.
    origins: Sequence[pulumi.Input[str]]


class BucketCors(pulumi.ComponentResource):
    """A separate component because the portal's origin on EKS without a
    domain is the ALB's name, known only after the Frontend's Ingress."""

    def __init__(self, name: str, args: BucketCorsArgs, opts: pulumi.ResourceOptions | None = None):
        if not args.origins:
            raise ValueError(f"BucketCors {name}: at least one origin is required")
        super().__init__("kiosk:aws:BucketCors", name, None, opts)
        aws.s3.BucketCorsConfiguration(
            name,
            bucket=args.bucket,
            cors_rules=[aws.s3.BucketCorsConfigurationCorsRuleArgs(
                allowed_origins=list(args.origins),
                allowed_methods=list(METHODS),
                allowed_headers=["*"],
                expose_headers=list(HEADERS),
                max_age_seconds=3600,
            )],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
