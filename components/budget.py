"""`kiosk:monthlyBudget`: what a billing budget alerts on, on either cloud."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Both clouds' limits: AWS Budgets 5 notifications a budget (the thresholds and a forecast one) and 10 e-mail
# subscribers each; a GCP budget 5 monitoring notification channels.
MAX_EMAILS, MAX_THRESHOLDS = 5, 4


@dataclass(frozen=True)
class MonthlyBudget:
    """A monthly budget in US dollars, e-mailing `alert_emails` when actual spend passes each of
    `thresholds_percent` and when the month's forecast passes 100 %. `billing_account`: GCP's (budgets live there)."""

    amount_usd: int
    alert_emails: tuple[str, ...]
    thresholds_percent: tuple[float, ...] = (50.0, 90.0, 100.0)
    billing_account: str | None = None

    def __post_init__(self) -> None:
        if self.amount_usd < 1:
            raise ValueError(f"kiosk:monthlyBudget must be a whole number of US dollars >= 1, got {self.amount_usd}")
        if not 1 <= len(self.alert_emails) <= MAX_EMAILS:
            raise ValueError(f"kiosk:budgetAlertEmails needs 1 to {MAX_EMAILS} addresses with kiosk:monthlyBudget")
        bad = [e for e in self.alert_emails if not EMAIL.match(e)]
        if bad:
            raise ValueError(f"kiosk:budgetAlertEmails: not e-mail addresses: {', '.join(bad)}")
        if not 1 <= len(self.thresholds_percent) <= MAX_THRESHOLDS or \
                any(not 0 < t <= 1000 for t in self.thresholds_percent):
            raise ValueError(f"kiosk:budgetAlertThresholds needs 1 to {MAX_THRESHOLDS} percentages in (0, 1000], "
                             f"got {list(self.thresholds_percent)}")


def sorted_thresholds(thresholds: Sequence[float]) -> list[float]:
    """Distinct thresholds, lowest first."""
    return sorted(set(thresholds))
