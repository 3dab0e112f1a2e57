"""A Cloud Billing budget on the kiosk's project, with e-mail alerts through Cloud Monitoring channels.

Needs, for whoever runs `pulumi up`: roles/billing.costsManager on the billing account (budgets belong to it),
roles/monitoring.notificationChannelEditor on the project, and the Billing Budget API
(billingbudgets.googleapis.com) enabled on the project that the provider bills quota to."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.budget import MonthlyBudget, sorted_thresholds


@dataclass(frozen=True)
class ProjectBudgetArgs:
    project: pulumi.Input[str]
    budget: MonthlyBudget


class ProjectBudget(pulumi.ComponentResource):
    """Budget on the project's spend (monthly, US$), one e-mail channel per address, alerts at each threshold of
    actual spend and at 100 % of the forecast; billing admins get the default e-mails too."""

    def __init__(self, name: str, args: ProjectBudgetArgs, opts: pulumi.ResourceOptions | None = None):
        budget = args.budget
        if not budget.billing_account:
            raise ValueError(f"ProjectBudget {name}: kiosk:billingAccount is needed for a budget on GCP")
        super().__init__("kiosk:gcp:ProjectBudget", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        channels = [
            gcp.monitoring.NotificationChannel(
                f"{name}-email-{index}", project=args.project, type="email",
                display_name=f"kiosk budget alerts: {email}", labels={"email_address": email}, opts=child)
            for index, email in enumerate(budget.alert_emails)
        ]
        number = gcp.organizations.get_project_output(project_id=args.project).number
        rules = [gcp.billing.BudgetThresholdRuleArgs(threshold_percent=t / 100, spend_basis="CURRENT_SPEND")
                 for t in sorted_thresholds(budget.thresholds_percent)]
        rules.append(gcp.billing.BudgetThresholdRuleArgs(threshold_percent=1.0, spend_basis="FORECASTED_SPEND"))
        self.budget = gcp.billing.Budget(
            name,
            billing_account=budget.billing_account,
            display_name=pulumi.Output.concat("kiosk ", args.project),
            budget_filter=gcp.billing.BudgetBudgetFilterArgs(
                projects=[pulumi.Output.concat("projects/", number)], calendar_period="MONTH"),
            amount=gcp.billing.BudgetAmountArgs(specified_amount=gcp.billing.BudgetAmountSpecifiedAmountArgs(
                currency_code="USD", units=str(budget.amount_usd))),
            threshold_rules=rules,
            all_updates_rule=gcp.billing.BudgetAllUpdatesRuleArgs(
                monitoring_notification_channels=[c.id for c in channels], disable_default_iam_recipients=False),
            opts=child,
        )
        self.register_outputs({"budget": self.budget.name})
