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
        assert ("runs-on" in job and steps(job)) or "uses" in job, \
            f"{name}:{job_name} needs runs-on and steps, or a reusable workflow"
        for s in job.get("steps", []):
            if "uses" in s:
                assert "@" in s["uses"], f"{name}:{job_name}: pin {s['uses']} to a version"


STACKS_WORKFLOW = "./.github/workflows/pulumi-stacks.yml"


def stack_job() -> dict:
    """The job of the reusable workflow that runs `pulumi` for one stack."""
    return load("pulumi-stacks.yml")["jobs"]["stack"]


def test_stack_job_logs_in_per_cloud_with_oidc_and_runs_the_pinned_cli():
    data = load("pulumi-stacks.yml")
    assert set(data["on"]["workflow_call"]["inputs"]) >= {"command", "stacks", "environment", "expect-no-changes"}
    job = stack_job()
    (pulumi_step,) = step_using(job, "pulumi/actions")
    inputs = pulumi_step["with"]
    assert inputs["command"] == "${{ inputs.command }}"
    assert "matrix.stack" in inputs["stack-name"]
    assert inputs["policyPacks"] == "policy"
    # Without upsert the action only selects the stack, and a new stack file fails.
    assert inputs.get("upsert") is True, "pulumi/actions must create stacks that do not exist yet"
    # The CLI is pinned, to the SDK version of requirements.txt.
    sdk = next(line.split("==")[1] for line in (ROOT / "requirements.txt").read_text().splitlines()
               if line.startswith("pulumi=="))
    assert inputs["pulumi-version"] == "${{ env.PULUMI_VERSION }}" and data["env"]["PULUMI_VERSION"] == sdk
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
    # `up` logs in as the deploy identity, everything else as the preview one.
    for identity in (aws_auth[0]["with"]["role-to-assume"], gcp_auth[0]["with"]["service_account"]):
        assert "inputs.command == 'up' && vars." in identity and "_DEPLOY_" in identity and "_PREVIEW_" in identity
    assert job["env"]["PULUMI_ACCESS_TOKEN"].startswith("${{ secrets.")
    # Drift checks refresh first: a preview alone compares the program with the state only.
    assert inputs["refresh"] == inputs["expect-no-changes"] == "${{ inputs.expect-no-changes }}"


def calls(workflow: str) -> dict[str, dict]:
    """Jobs of `workflow` that call the reusable stacks workflow."""
    jobs = load(workflow)["jobs"]
    return {name: job for name, job in jobs.items() if job.get("uses") == STACKS_WORKFLOW}


def test_preview_runs_on_pull_requests_for_every_stack():
    data = load("preview.yml")
    assert "pull_request" in data["on"]
    assert data["permissions"]["id-token"] == "write" and data["permissions"]["pull-requests"] == "write"
    (job,) = calls("preview.yml").values()
    assert job["with"]["command"] == "preview" and job["with"].get("stacks", "*") == "*"
    assert job["with"]["comment-on-pr"] is True and job["secrets"] == "inherit"
    # Fork PRs get no OIDC token or secrets: the job is skipped for them.
    condition = job.get("if", "")
    assert "github.event.pull_request.head.repo.full_name" in condition and "github.repository" in condition, \
        "preview must be skipped on pull requests from forks"


def test_preview_builds_every_image_the_stack_builds():
    from components.k8s.images import IMAGES

    job = load("preview.yml")["jobs"]["images"]
    assert sorted(job["strategy"]["matrix"]["dockerfile"]) == sorted(IMAGES.values())
    (build,) = step_using(job, "docker/build-push-action")
    assert build["with"]["file"] == "${{ matrix.dockerfile }}" and build["with"]["context"] == "."
    assert build["with"]["push"] is False, "a pull request must not push images"


def test_up_runs_on_main_dev_first_then_prod_behind_environments():
    data = load("deploy.yml")
    assert data["on"]["push"]["branches"] == ["main"]
    assert "pull_request" not in data["on"]
    assert data["permissions"]["id-token"] == "write"
    jobs = calls("deploy.yml")
    assert set(jobs) == {"dev", "prod"}
    for name, job in jobs.items():
        assert job["with"]["command"] == "up" and job["with"]["stacks"] == f"{name}-*", name
        assert job["with"]["environment"] is True, "pulumi up must wait for the environment's required reviewers"
    assert jobs["prod"]["needs"] == "dev", "prod must deploy only after every dev stack succeeded"
    assert stack_job()["environment"] == "${{ inputs.environment && matrix.stack.name || '' }}"


def exports() -> set[str]:
    """The stack outputs infra/__main__.py exports."""
    import re

    return set(re.findall(r'pulumi\.export\("(\w+)"', (ROOT / "infra" / "__main__.py").read_text()))


def test_dev_deploy_accepts_the_kiosk_after_up_and_prod_does_not():
    import re
    import shlex

    from frontend.cli import build_parser

    jobs = calls("deploy.yml")
    assert jobs["dev"]["with"]["acceptance"] is True
    assert not jobs["prod"]["with"].get("acceptance"), "prod must not run the acceptance"
    assert load("pulumi-stacks.yml")["on"]["workflow_call"]["inputs"]["acceptance"]["default"] is False
    job = stack_job()
    up = index_of(job, lambda s: s.get("uses", "").startswith("pulumi/actions@"))
    accept = index_of(job, lambda s: "ops acceptance" in s.get("run", ""))
    assert up < accept, "the acceptance must run after pulumi up"
    step = steps(job)[accept]
    assert step["if"] == "inputs.acceptance && inputs.command == 'up'"
    script = step["run"]
    # The kubeconfig is the stack's, in a private temporary file the kubernetes client reads.
    assert "umask 077" in script and 'export KUBECONFIG="$(mktemp' in script
    assert 'pulumi stack output kubeconfig --show-secrets --stack "$STACK" > "$KUBECONFIG"' in script
    used = set(re.findall(r"pulumi stack output (\w+)", script))
    assert used == {"kubeconfig", "apiToken", "portalUrl"} and used <= exports(), used - exports()
    # The command line parses with the real CLI: the acceptance, with the stack's URL and token and a report.
    command = script[script.index(".venv/bin/kiosk"):].replace("\\\n", " ").splitlines()[0]
    argv = shlex.split(re.sub(r'\$\(pulumi stack output (\w+)[^)]*\)', r"\1", command), posix=True)[1:]
    args = build_parser().parse_args(argv)
    assert args.url == "portalUrl" and args.token == "$token" and args.report == Path("$REPORT")
    assert args.handler.__name__ == "run_acceptance", args
    (upload,) = step_using(job, "actions/upload-artifact")
    assert steps(job).index(upload) > accept
    assert upload["if"].startswith("always() && ") and upload["if"].endswith(step["if"]), \
        "the report is uploaded even when the acceptance fails"
    assert upload["with"]["path"] == step["env"]["REPORT"] and '--report "$REPORT"' in script


def test_drift_check_runs_daily_and_opens_an_issue():
    data = load("drift.yml")
    assert data["on"]["schedule"] and "workflow_dispatch" in data["on"]
    (job,) = calls("drift.yml").values()
    assert job["with"]["command"] == "preview" and job["with"]["expect-no-changes"] is True
    assert job["with"].get("stacks", "*") == "*"
    report = data["jobs"]["report"]
    assert report["if"] == "failure()" and report["needs"] == "drift"
    assert any("gh issue create" in s.get("run", "") for s in steps(report))
    assert data["permissions"]["issues"] == "write"


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
