"""The `cloud` setting picks the family; bad settings fail before anything is declared."""

import pytest

from tests.infra.conftest import STACKS
from tests.infra.stackrun import start

CASES = {
    "unknown-cloud": ("dev-gcp", {"kiosk:cloud": "azure"}, "kiosk:cloud must be one of"),
    "aws-without-zones": ("dev-aws", {"kiosk:availabilityZones": []}, "kiosk:availabilityZones must list at least two"),
    "aws-one-zone": ("dev-aws", {"kiosk:availabilityZones": ["us-east-1a"]}, "at least two zones"),
    "aws-gpu-zone-outside": ("dev-aws", {"kiosk:gpuZones": ["us-east-1f"]}, "are not among kiosk:availabilityZones"),
    "aws-domain-without-zone": ("dev-aws", {"kiosk:domain": "kiosk.example.org"}, "needs kiosk:route53ZoneId"),
    "aws-autoscaler-minor": ("dev-aws", {"kiosk:clusterAutoscalerImageTag": "v1.31.0"},
                             "does not match kiosk:kubernetesVersion"),
    "aws-memorystore": ("dev-aws", {"kiosk:redisMode": "memorystore"}, "kiosk:redisMode must be in-cluster"),
    "aws-log-retention": ("dev-aws", {"kiosk:controlPlaneLogRetentionDays": 10},
                          "kiosk:controlPlaneLogRetentionDays must be one of CloudWatch's"),
    "aws-open-control-plane": ("dev-aws", {"kiosk:masterAuthorizedCidrs": ["0.0.0.0/0"]},
                               "must never open the control plane"),
}


@pytest.fixture(scope="module")
def failures(tmp_path_factory):
    procs = {}
    for case, (stack, overrides, _) in CASES.items():
        procs[case] = start(STACKS[stack], overrides, tmp_path_factory.mktemp(case))
    results = {}
    for case, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        results[case] = (proc.returncode, err)
    return results


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_settings_are_rejected_with_a_clear_message(failures, case):
    rc, err = failures[case]
    expected = CASES[case][2]
    assert rc != 0 and expected in err, f"{case}: expected {expected!r}, got:\n{err[-2000:]}"
