"""The CI workflows parse and carry what the deploy process relies on."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps(job: dict) -> list[dict]:
    return job["steps"]


def step_using(job: dict, action: str) -> list[dict]:
    return [s for s in steps(job) if s.get("uses", "").split("@")[0] == action]


def index_of(job: dict, predicate) -> int:
    for i, s in enumerate(steps(job)):
        if predicate(s):
            return i
    raise AssertionError("step not found")


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_workflow_parses_with_jobs(name):
    data = load(name)
    assert data["on"], f"{name}: no trigger"
    assert data["jobs"], f"{name}: no jobs"
    for job_name, job in data["jobs"].items():
        assert "runs-on" in job and steps(job), f"{name}:{job_name} needs runs-on and steps"
        for s in steps(job):
            if "uses" in s:
                assert "@" in s["uses"], f"{name}:{job_name}: pin {s['uses']} to a version"


def check_pulumi_job(job: dict, command: str) -> dict:
    (pulumi_step,) = step_using(job, "pulumi/actions")
    inputs = pulumi_step["with"]
    assert inputs["command"] == command
    assert "matrix.stack" in inputs["stack-name"]
    assert inputs["policyPacks"] == "policy"
    # Without upsert the action only selects the stack, and a new stack file fails.
    assert inputs.get("upsert") is True, "pulumi/actions must create stacks that do not exist yet"
    install = index_of(job, lambda s: "pip install -r requirements.txt" in s.get("run", ""))
    assert install < steps(job).index(pulumi_step), "dependencies must be installed before pulumi runs"
    gcp_auth = step_using(job, "google-github-actions/auth")
    assert gcp_auth and "workload_identity_provider" in gcp_auth[0]["with"], "GCP auth must use OIDC"
    assert "credentials_json" not in gcp_auth[0]["with"], "no long-lived keys"
    gcloud = step_using(job, "google-github-actions/setup-gcloud")
    assert gcloud and "gke-gcloud-auth-plugin" in gcloud[0]["with"]["install_components"]
    aws_auth = step_using(job, "aws-actions/configure-aws-credentials")
    assert aws_auth and "role-to-assume" in aws_auth[0]["with"], "AWS auth must use OIDC"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(aws_auth[0]["with"]), "no long-lived keys"
    assert "-aws" in aws_auth[0]["if"] and "-gcp" in gcp_auth[0]["if"], "each cloud's login only for its stacks"
    assert job["env"]["PULUMI_ACCESS_TOKEN"].startswith("${{ secrets.")
    return inputs


def test_preview_runs_on_pull_requests_for_every_stack():
    data = load("preview.yml")
    assert "pull_request" in data["on"]
    assert data["permissions"]["id-token"] == "write" and data["permissions"]["pull-requests"] == "write"
    job = data["jobs"]["preview"]
    assert "stacks/Pulumi.*.yaml" in data["jobs"]["stacks"]["steps"][1]["run"]
    inputs = check_pulumi_job(job, "preview")
    assert inputs["comment-on-pr"] is True
    # Fork PRs get no OIDC token or secrets: the job is skipped for them.
    condition = job.get("if", "")
    assert "github.event.pull_request.head.repo.full_name" in condition and "github.repository" in condition, \
        "preview must be skipped on pull requests from forks"


def test_up_runs_on_main_behind_an_environment():
    data = load("deploy.yml")
    assert data["on"]["push"]["branches"] == ["main"]
    assert "pull_request" not in data["on"]
    assert data["permissions"]["id-token"] == "write"
    job = data["jobs"]["up"]
    assert job["environment"]["name"], "pulumi up must wait for the environment's required reviewers"
    check_pulumi_job(job, "up")


def test_tests_workflow_runs_make_test():
    data = load("test.yml")
    assert "pull_request" in data["on"]
    job = data["jobs"]["test"]
    runs = [s.get("run", "") for s in steps(job)]
    assert any(r.strip() == "make test" for r in runs)


def system_packages() -> dict[str, str]:
    """command -> Debian package, as the Makefile hands them to scripts/ensure-system-packages
    (simple `NAME := value` variables, with $(NAME) references expanded)."""
    import re

    variables: dict[str, str] = {}
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"^([A-Z_]+)\s*:?=\s*(.*)$", line)
        if match:
            variables[match[1]] = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m[1], ""), match[2])
    if "SYSTEM_PACKAGES" not in variables:
        raise AssertionError("Makefile has no SYSTEM_PACKAGES")
    return dict(spec.split(":", 1) for spec in variables["SYSTEM_PACKAGES"].split())


def test_tests_workflow_installs_the_system_packages_first():
    """ensure-system-packages installs only as root; GitHub's runners are not, so
    the workflow installs each package with sudo apt-get before make test."""
    packages = system_packages()
    assert {"redis-server", "chromium"} <= set(packages), packages
    job = load("test.yml")["jobs"]["test"]
    make_test = index_of(job, lambda s: s.get("run", "").strip() == "make test")
    install = index_of(job, lambda s: "sudo apt-get install" in s.get("run", ""))
    assert install < make_test, "system packages must be installed before make test"
    script = steps(job)[install]["run"]
    assert "sudo apt-get update" in script.split("sudo apt-get install")[0], "apt-get update must come first"
    for command, package in packages.items():
        installs = [line for line in script.splitlines() if "apt-get install" in line and package in line.split()]
        assert installs, f"test.yml does not install {package} (for {command})"
        assert f"command -v {command}" in script, f"test.yml does not check that {command} is there"
