"""The program, for every stack, passes the policy pack it is previewed with."""

import sys

from tests.infra.stackrun import ROOT

sys.path.insert(0, str(ROOT / "policy"))

import kiosk_rules  # noqa: E402


def test_program_passes_every_policy(run):
    checked = 0
    for r in run.resources:
        for name, rule in kiosk_rules.RESOURCE_RULES.items():
            violations = rule(r.type, r.inputs)
            assert not violations, f"{r.urn} violates {name}: {violations}"
        checked += 1
    assert checked > 40, f"{run.stack}: only {checked} resources checked"
    assert not kiosk_rules.s3_buckets_have_lifecycle((r.type, r.inputs) for r in run.resources)
