"""The pulumi-policy wrappers call the rules and report with the URN."""

from pathlib import Path

import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

import kiosk_policies
import kiosk_rules

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
URN = "urn:pulumi:dev::kiosk::gcp:storage/bucket:Bucket::data"


def opts():
    return PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
                                 additional_secret_outputs=[], custom_timeouts=None)


def validate(policy_name, resource_type, props):
    policy = next(p for p in kiosk_policies.POLICIES if p.name == policy_name)
    reports = []
    args = ResourceValidationArgs(resource_type, props, URN, "data", opts(), None)
    policy.validate(args, lambda message, urn=None: reports.append((message, urn)))
    return reports


def test_every_rule_is_a_mandatory_policy():
    names = {p.name for p in kiosk_policies.POLICIES}
    assert set(kiosk_rules.RESOURCE_RULES) <= names
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in kiosk_policies.POLICIES)


def test_wrapper_reports_violations_with_urn():
    reports = validate("kiosk-no-public-bucket", kiosk_rules.GCS_BUCKET, {"publicAccessPrevention": "inherited"})
    assert reports and all(urn == URN for _, urn in reports)
    ok = {"publicAccessPrevention": "enforced", "uniformBucketLevelAccess": True}
    assert validate("kiosk-no-public-bucket", kiosk_rules.GCS_BUCKET, ok) == []


def test_stack_policy_reports_buckets_without_lifecycle():
    policy = next(p for p in kiosk_policies.POLICIES if p.name == "kiosk-s3-buckets-have-lifecycle")
    bucket = PolicyResource("aws:s3/bucketV2:BucketV2", {}, "urn:b", "b", opts(), None, None, [], {})
    reports = []
    policy.validate(StackValidationArgs([bucket]), lambda message, urn=None: reports.append(message))
    assert reports


def test_pack_files_are_runnable_by_the_cli():
    spec = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert spec["runtime"]["name"] == "python"
    main = (POLICY_DIR / "__main__.py").read_text()
    assert "PolicyPack(" in main and "POLICIES" in main
    reqs = (POLICY_DIR / "requirements.txt").read_text()
    assert "pulumi-policy==" in reqs
