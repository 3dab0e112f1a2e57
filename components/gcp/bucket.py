"""The kiosk's bucket: uploads/ and output/ expire, models/ never does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from components.shapes import MODELS, OUTPUT, UPLOADS


@dataclass(frozen=True)
class KioskBucketArgs:
    location: str
    uploads_expire_days: int = 7
    output_expire_days: int = 7
    # Origins of the portal that upload/download with signed URLs.
    cors_origins: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    force_destroy: bool = False
    # Pulumi's `protect`: `destroy` refuses to start (prod stacks).
    protect: bool = False


class KioskBucket(pulumi.ComponentResource):
    """Uniform access, public access prevented, lifecycle expiry, CORS.

    The original kiosk ran a bucket-monitor pod that deleted old uploads and
    results; here the bucket's lifecycle rules do that job with no pod at all.
    """

    bucket: gcp.storage.Bucket

    def __init__(self, name: str, args: KioskBucketArgs, opts: pulumi.ResourceOptions | None = None):
        for key in ("uploads_expire_days", "output_expire_days"):
            if getattr(args, key) < 1:
                raise ValueError(f"KioskBucket {name}: {key} must be at least 1 day")
        super().__init__("kiosk:gcp:KioskBucket", name, None, opts)

        def expire(prefix: str, days: int) -> gcp.storage.BucketLifecycleRuleArgs:
            return gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(age=days, matches_prefixes=[prefix]),
            )

        cors = []
        if args.cors_origins:
            cors = [gcp.storage.BucketCorArgs(
                origins=list(args.cors_origins),
                methods=["GET", "HEAD", "PUT", "POST"],
                response_headers=["Content-Type", "Content-Length", "Content-Disposition", "x-goog-resumable"],
                max_age_seconds=3600,
            )]
        self.bucket = gcp.storage.Bucket(
            name,
            location=args.location,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            # No rule matches models/: trained models stay until removed by hand.
            lifecycle_rules=[
                expire(UPLOADS, args.uploads_expire_days),
                expire(OUTPUT, args.output_expire_days),
            ],
            cors=cors,
            force_destroy=args.force_destroy,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.name = self.bucket.name
        self.url = self.bucket.name.apply(lambda n: f"gs://{n}")
        self.models_uri = self.bucket.name.apply(lambda n: f"gs://{n}/{MODELS.rstrip('/')}")
        self.register_outputs({"name": self.name, "url": self.url})
