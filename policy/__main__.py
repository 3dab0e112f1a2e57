"""Kiosk policy pack: `pulumi preview --policy-pack policy`."""

import sys
from pathlib import Path

# The CLI runs this file directly; its sibling modules must be importable
# both here and when the pack is published on its own.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from kiosk_policies import POLICIES  # noqa: E402

PolicyPack(name="kiosk-policies", policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
