"""pulumi-policy wrappers around the plain rules of kiosk_rules.py."""

from __future__ import annotations

from collections.abc import Callable

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

import kiosk_rules

DESCRIPTIONS = {
    "kiosk-no-public-bucket": "Buckets prevent public access; no grant to allUsers/allAuthenticatedUsers.",
    "kiosk-uploads-expire": "Buckets holding uploads/ expire them with a lifecycle rule; models/ never expires.",
    "kiosk-gpu-pools-scale-to-zero": "GPU node pools and node groups autoscale with a minimum of zero.",
    "kiosk-containers-requests-limits": "Every container requests and limits CPU and memory.",
    "kiosk-internal-services-not-exposed": "Redis and TF-Serving Services are never exposed outside the cluster.",
    "kiosk-control-plane-not-open": "Cluster control planes are never open to 0.0.0.0/0.",
    "kiosk-iam-least-privilege": "No IAM Allow of `*` or `service:*` on every resource, no NotAction, no admin policies.",
}


def resource_validator(rule: Callable) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule(args.resource_type, args.props):
            report_violation(message, args.urn)

    return validate


def validate_s3_lifecycles(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for message in kiosk_rules.s3_buckets_have_lifecycle((r.resource_type, r.props) for r in args.resources):
        report_violation(message, None)


POLICIES = [
    ResourceValidationPolicy(
        name=name,
        description=DESCRIPTIONS[name],
        validate=resource_validator(rule),
        enforcement_level=EnforcementLevel.MANDATORY,
    )
    for name, rule in kiosk_rules.RESOURCE_RULES.items()
] + [
    StackValidationPolicy(
        name="kiosk-s3-buckets-have-lifecycle",
        description="Every S3 bucket has a lifecycle configuration expiring uploads/.",
        validate=validate_s3_lifecycles,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
]
