"""The TF-Serving pod's model copy on AWS, run for real against an S3 server.

The sidecar's exact command line and probes are taken from the dev-aws stack
as the program declares them, and run here with /bin/sh and the AWS CLI
against moto's S3 server on loopback. Only the environment differs: the
bucket, local paths, the interval, and the endpoint and dummy keys in place of
the pod's Pod Identity credentials. The image runs AWS CLI v2; the `awscli`
package here is v1, whose `s3 sync` takes the same arguments.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.infra.conftest import load_run
from tests.infra.test_stacks import env_of, pod_spec

STACK = "dev-aws"
MODEL_FILES = {
    "NuclearSegmentation/1/saved_model.pb": b"graph-v1",
    "NuclearSegmentation/1/variables/variables.index": b"index-v1",
    "NuclearSegmentation/1/variables/variables.data-00000-of-00001": b"weights-v1",
}
AWS_CLI = shutil.which("aws", path=str(Path(sys.executable).parent))


@pytest.fixture(scope="module")
def sidecar(stack_results) -> dict:
    run = load_run(STACK, stack_results)
    (container,) = pod_spec(run.one("kubernetes:apps/v1:Deployment", "tf-serving"))["initContainers"]
    return container


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the sync loop exited ({proc.returncode}) before {what}: {proc.stderr.read()}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.skipif(AWS_CLI is None, reason="needs the awscli package (requirements-dev) to run `aws s3 sync`")
def test_sidecar_copies_models_and_keeps_them_in_sync(sidecar, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for key, body in MODEL_FILES.items():
        s3.put_object(Bucket=bucket, Key=f"models/{key}", Body=body)
    s3.put_object(Bucket=bucket, Key="uploads/abc/cells.tif", Body=b"not a model")
    s3.put_object(Bucket=bucket, Key="output/abc/labels.zip", Body=b"not a model")

    declared = env_of(sidecar)
    models, state = tmp_path / "models", tmp_path / "state"
    models.mkdir()
    state.mkdir()
    overrides = {
        "KIOSK_MODELS_SOURCE": f"s3://{bucket}/models",
        "KIOSK_MODELS_DIR": str(models),
        "KIOSK_SYNC_MARKER": str(state / "last-sync"),
        "HOME": str(state),
        "KIOSK_SYNC_INTERVAL_SECONDS": "1",
    }
    assert set(overrides) <= set(declared), f"the sidecar no longer declares {set(overrides) - set(declared)}"
    assert declared["KIOSK_MODELS_SOURCE"].startswith("s3://") and declared["KIOSK_MODELS_SOURCE"].endswith("/models")
    env = {
        **declared,
        **overrides,
        # What the pod's credential chain and network give the CLI in the cluster.
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PATH": f"{Path(AWS_CLI).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
    }

    def probe(name: str) -> int:
        return subprocess.run(sidecar[name]["exec"]["command"], env=env, capture_output=True).returncode

    assert probe("startupProbe") != 0, "TF-Serving must not start before the first copy"
    # Its own process group, so that stopping it also stops the `aws` and `date`
    # it has started, as the kubelet does with a container. Stopping only the
    # shell left a `date` that could write a fresh time over the stale one below.
    proc = subprocess.Popen(sidecar["command"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        wait_for(lambda: probe("startupProbe") == 0, 60, "the first copy", proc)
        assert tree(models) == MODEL_FILES, "TF-Serving must see models/<Name>/<version>/ and nothing else"
        assert probe("readinessProbe") == 0 and probe("livenessProbe") == 0

        # A new version appears, and a removed one goes, without a restart.
        s3.put_object(Bucket=bucket, Key="models/NuclearSegmentation/2/saved_model.pb", Body=b"graph-v2")
        s3.delete_object(Bucket=bucket, Key="models/NuclearSegmentation/1/saved_model.pb")
        wait_for(lambda: (models / "NuclearSegmentation/2/saved_model.pb").exists()
                 and not (models / "NuclearSegmentation/1/saved_model.pb").exists(), 120, "the re-sync", proc)
        assert tree(models)["NuclearSegmentation/2/saved_model.pb"] == b"graph-v2"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    # A copy that has not succeeded for too long fails the liveness probe.
    (state / "last-sync").write_text(str(int(time.time()) - 24 * 3600))
    assert probe("livenessProbe") != 0, "a stale copy must fail the liveness probe"
    assert probe("readinessProbe") == 0, "a stale copy is still served"
