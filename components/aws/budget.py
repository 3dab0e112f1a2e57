"""An AWS Budgets cost budget with e-mail alerts.

It covers the account's whole spend (a budget filtered on a cost-allocation tag only counts once the tag is
activated in Billing). Needs, for whoever runs `pulumi up`: budgets:ModifyBudget and budgets:ViewBudget on
arn:aws:budgets::<account>:budget/* (and IAM access to Billing information switched on for the account)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.budget import MonthlyBudget, sorted_thresholds


@dataclass(frozen=True)
class AccountBudgetArgs:
    name: str  # the budget's name in the account, e.g. kiosk-dev-aws
    budget: MonthlyBudget


class AccountBudget(pulumi.ComponentResource):
    """Monthly cost budget (US$) e-mailing at each threshold of actual spend and at 100 % of the forecast."""

    def __init__(self, name: str, args: AccountBudgetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kiosk:aws:AccountBudget", name, None, opts)
        budget = args.budget
        emails = list(budget.alert_emails)
        notifications = [
            aws.budgets.BudgetNotificationArgs(comparison_operator="GREATER_THAN", notification_type="ACTUAL",
                                               threshold=t, threshold_type="PERCENTAGE",
                                               subscriber_email_addresses=emails)
            for t in sorted_thresholds(budget.thresholds_percent)
        ]
        notifications.append(aws.budgets.BudgetNotificationArgs(
            comparison_operator="GREATER_THAN", notification_type="FORECASTED", threshold=100,
            threshold_type="PERCENTAGE", subscriber_email_addresses=emails))
        self.budget = aws.budgets.Budget(
            name,
            name=args.name,
            budget_type="COST",
            limit_amount=str(budget.amount_usd),
            limit_unit="USD",
            time_unit="MONTHLY",
            notifications=notifications,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"budget": self.budget.name})
