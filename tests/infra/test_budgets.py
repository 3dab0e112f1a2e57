"""`kiosk:monthlyBudget`: the budget components under Pulumi's mocks, the stacks that declare them, and the
budget's validation."""

import json

import pytest

from components.aws.budget import AccountBudget, AccountBudgetArgs
from components.budget import MonthlyBudget
from components.gcp.budget import ProjectBudget, ProjectBudgetArgs
from tests.infra.mockrun import Recorder, construct

PROJECT_NUMBER = "123456789012"


class BillingRecorder(Recorder):
    """Mocks that also answer the project lookup a GCP budget's filter needs."""

    def call(self, args):
        if args.token == "gcp:organizations/getProject:getProject":
            return {"projectId": dict(args.args)["projectId"], "number": PROJECT_NUMBER, "id": "p"}
        return super().call(args)


@pytest.fixture
def billing_mocks():
    import pulumi

    recorder = BillingRecorder()
    pulumi.runtime.set_mocks(recorder, project="kiosk", stack="test", preview=False, monitor=recorder.monitor())
    return recorder


BUDGET = MonthlyBudget(300, ("lab@example.org", "pi@example.org"), (90, 50, 100), billing_account="0A1B2C-3D4E5F-6A7B8C")


def test_gcp_budget_filters_the_project_and_mails_every_address(billing_mocks):
    construct(lambda: ProjectBudget("kiosk-budget", ProjectBudgetArgs(project="kiosk-dev-project", budget=BUDGET)))
    channels = billing_mocks.of_type("gcp:monitoring/notificationChannel:NotificationChannel")
    # resources register concurrently under mocks: compare in a fixed order
    assert sorted(((c["type"], c["labels"], c["project"]) for c in channels), key=str) == [
        ("email", {"email_address": "lab@example.org"}, "kiosk-dev-project"),
        ("email", {"email_address": "pi@example.org"}, "kiosk-dev-project")]
    (budget,) = billing_mocks.of_type("gcp:billing/budget:Budget")
    assert budget["billingAccount"] == "0A1B2C-3D4E5F-6A7B8C"
    assert budget["budgetFilter"] == {"projects": [f"projects/{PROJECT_NUMBER}"], "calendarPeriod": "MONTH"}
    assert budget["amount"] == {"specifiedAmount": {"currencyCode": "USD", "units": "300"}}
    assert budget["thresholdRules"] == [
        {"thresholdPercent": 0.5, "spendBasis": "CURRENT_SPEND"}, {"thresholdPercent": 0.9, "spendBasis": "CURRENT_SPEND"},
        {"thresholdPercent": 1.0, "spendBasis": "CURRENT_SPEND"}, {"thresholdPercent": 1.0, "spendBasis": "FORECASTED_SPEND"}]
    rule = budget["allUpdatesRule"]
    assert len(rule["monitoringNotificationChannels"]) == 2 and rule["disableDefaultIamRecipients"] is False


def test_aws_budget_alerts_on_actual_and_forecast_spend(billing_mocks):
    construct(lambda: AccountBudget("kiosk-budget", AccountBudgetArgs(name="kiosk-dev-aws", budget=BUDGET)))
    (budget,) = billing_mocks.of_type("aws:budgets/budget:Budget")
    assert (budget["name"], budget["budgetType"], budget["timeUnit"]) == ("kiosk-dev-aws", "COST", "MONTHLY")
    assert (budget["limitAmount"], budget["limitUnit"]) == ("300", "USD")
    alerts = [(n["notificationType"], n["threshold"], n["thresholdType"], n["comparisonOperator"])
              for n in budget["notifications"]]
    assert alerts == [("ACTUAL", 50, "PERCENTAGE", "GREATER_THAN"), ("ACTUAL", 90, "PERCENTAGE", "GREATER_THAN"),
                      ("ACTUAL", 100, "PERCENTAGE", "GREATER_THAN"), ("FORECASTED", 100, "PERCENTAGE", "GREATER_THAN")]
    assert all(n["subscriberEmailAddresses"] == ["lab@example.org", "pi@example.org"] for n in budget["notifications"])


def test_gcp_budget_needs_a_billing_account(billing_mocks):
    without = MonthlyBudget(300, ("lab@example.org",))
    with pytest.raises(ValueError, match="kiosk:billingAccount is needed"):
        ProjectBudget("b", ProjectBudgetArgs(project="p", budget=without))


@pytest.mark.parametrize("amount, emails, thresholds, match", [
    (0, ("a@b.org",), (50,), "monthlyBudget must be a whole number"),
    (100, (), (50,), "needs 1 to 5 addresses"),
    (100, tuple(f"p{i}@b.org" for i in range(6)), (50,), "needs 1 to 5 addresses"),
    (100, ("lab at example.org",), (50,), "not e-mail addresses: lab at example.org"),
    (100, ("a@b.org",), (), "needs 1 to 4 percentages"),
    (100, ("a@b.org",), (50, 0), "needs 1 to 4 percentages"),
    (100, ("a@b.org",), (25, 50, 75, 90, 100), "needs 1 to 4 percentages"),
])
def test_bad_budgets_are_refused(amount, emails, thresholds, match):
    with pytest.raises(ValueError, match=match):
        MonthlyBudget(amount, emails, thresholds)


BUDGETED = {"kiosk:monthlyBudget": 250, "kiosk:budgetAlertEmails": ["lab@example.org"],
            "kiosk:billingAccount": "0A1B2C-3D4E5F-6A7B8C"}


@pytest.fixture(scope="module")
def budgeted_runs(tmp_path_factory):
    """dev-gcp and dev-aws with a US$250 budget."""
    from tests.infra.conftest import STACKS
    from tests.infra.stackrun import StackRun, run_stacks

    files = [STACKS["dev-gcp"], STACKS["dev-aws"]]
    results = run_stacks(files, BUDGETED, tmp_path_factory.mktemp("budget"))
    runs = {}
    for name, (rc, out, err) in results.items():
        assert rc == 0, err[-4000:]
        runs[name] = StackRun(STACKS[name], json.loads(out), BUDGETED)
    return runs


def test_each_cloud_gets_its_budget_from_the_stack_config(budgeted_runs):
    gcp, aws = budgeted_runs["dev-gcp"], budgeted_runs["dev-aws"]
    (budget,) = gcp.of_type("gcp:billing/budget:Budget")
    assert budget.inputs["amount"]["specifiedAmount"]["units"] == "250"
    assert budget.inputs["billingAccount"] == "0A1B2C-3D4E5F-6A7B8C"
    assert budget.inputs["budgetFilter"]["projects"] == ["projects/123456789012"]
    assert [c.inputs["project"] for c in gcp.of_type("gcp:monitoring/notificationChannel:NotificationChannel")] == [
        gcp.config["gcp:project"]]
    assert [t["thresholdPercent"] for t in budget.inputs["thresholdRules"]] == [0.5, 0.9, 1.0, 1.0]
    (account,) = aws.of_type("aws:budgets/budget:Budget")
    assert account.inputs["name"] == "kiosk-dev-aws" and account.inputs["limitAmount"] == "250"
    assert aws.of_type("gcp:billing/budget:Budget") == [] and gcp.of_type("aws:budgets/budget:Budget") == []


def test_no_budget_by_default(run):
    assert run.of_type("gcp:billing/budget:Budget") == [] and run.of_type("aws:budgets/budget:Budget") == []


@pytest.mark.parametrize("overrides, message", [
    ({**BUDGETED, "kiosk:billingAccount": ""}, "kiosk:monthlyBudget on GCP needs kiosk:billingAccount"),
    ({**BUDGETED, "kiosk:budgetAlertEmails": []}, "kiosk:budgetAlertEmails needs 1 to 5 addresses"),
    ({**BUDGETED, "kiosk:monthlyBudget": -5}, "kiosk:monthlyBudget must be a whole number"),
])
def test_bad_budget_config_stops_the_program_with_a_clear_error(overrides, message, tmp_path):
    from tests.infra.conftest import STACKS
    from tests.infra.stackrun import run_stacks

    (rc, _, err), = run_stacks([STACKS["dev-gcp"]], overrides, tmp_path).values()
    assert rc != 0 and message in err, err[-2000:]
