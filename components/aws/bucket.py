"""The kiosk's S3 bucket: private, encrypted, uploads/ and output/ expire, models/ never does."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.policies import s3_tls_only_bucket_policy
from components.shapes import MODELS, OUTPUT, UPLOADS

# Multipart uploads that never complete leave invisible, billed parts behind.
ABORT_INCOMPLETE_UPLOAD_DAYS = 1


@dataclass(frozen=True)
class S3BucketArgs:
    uploads_expire_days: int = 7
    output_expire_days: int = 7
    force_destroy: bool = False
    # Pulumi's `protect`: `destroy` refuses to start (prod stacks).
    protect: bool = False


class S3Bucket(pulumi.ComponentResource):
    """Bucket with ACLs disabled, every public access blocked, SSE-S3
    encryption, a TLS-only bucket policy and lifecycle expiry.

    CORS for the portal is a separate component (`BucketCors`): the portal's
    origin on EKS is only known once its load balancer exists.
    """

    bucket: aws.s3.Bucket

    def __init__(self, name: str, args: S3BucketArgs, opts: pulumi.ResourceOptions | None = None):
        for key in ("uploads_expire_days", "output_expire_days"):
            if getattr(args, key) < 1:
                raise ValueError(f"S3Bucket {name}: {key} must be at least 1 day")
        super().__init__("kiosk:aws:S3Bucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Auto-named (<name>-<random>): bucket names are global.
        self.bucket = aws.s3.Bucket(name, force_destroy=args.force_destroy,
                                    opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        aws.s3.BucketOwnershipControls(
            name,
            bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            name,
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            name,
            bucket=self.bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.
                BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256",
                ),
            )],
            opts=child,
        )
        # Put after the public access block: S3 checks new policies against it.
        aws.s3.BucketPolicy(
            name,
            bucket=self.bucket.id,
            policy=self.bucket.arn.apply(s3_tls_only_bucket_policy),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )

        def expire(rule_id: str, prefix: str, days: int) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
            return aws.s3.BucketLifecycleConfigurationRuleArgs(
                id=rule_id,
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
            )

        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            name,
            bucket=self.bucket.id,
            # No rule expires models/: trained models stay until removed by hand.
            rules=[
                expire("expire-uploads", UPLOADS, args.uploads_expire_days),
                expire("expire-output", OUTPUT, args.output_expire_days),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="abort-incomplete-multipart-uploads",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    abort_incomplete_multipart_upload=aws.s3.
                    BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=ABORT_INCOMPLETE_UPLOAD_DAYS,
                    ),
                ),
            ],
            opts=child,
        )
        self.name: pulumi.Output[str] = self.bucket.bucket
        self.arn: pulumi.Output[str] = self.bucket.arn
        self.url = self.bucket.bucket.apply(lambda n: f"s3://{n}")
        self.models_uri = self.bucket.bucket.apply(lambda n: f"s3://{n}/{MODELS.rstrip('/')}")
        self.register_outputs({"name": self.name, "arn": self.arn, "url": self.url})
