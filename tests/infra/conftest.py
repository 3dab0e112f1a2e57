"""Runs the real program once per stack file (in parallel subprocesses)."""

import json

import pulumi
import pytest

from tests.infra.mockrun import Recorder
from tests.infra.run_stack import merged_config, stack_name
from tests.infra.stackrun import STACK_FILES, StackRun, run_stacks

STACKS = {stack_name(f): f for f in STACK_FILES}
# The cloud family of every stack file, as the program will read it.
CLOUDS = {name: merged_config(f)["kiosk:cloud"] for name, f in STACKS.items()}


@pytest.fixture(scope="session")
def stack_results():
    assert STACKS, "no stacks/Pulumi.*.yaml files found"
    return run_stacks(STACK_FILES)


def load_run(name: str, stack_results) -> StackRun:
    rc, out, err = stack_results[name]
    if rc != 0:
        pytest.fail(f"program failed for stack {name}:\n{err[-4000:]}")
    return StackRun(STACKS[name], json.loads(out))


@pytest.fixture(params=sorted(STACKS), scope="session")
def run(request, stack_results) -> StackRun:
    return load_run(request.param, stack_results)


@pytest.fixture(params=sorted(n for n, c in CLOUDS.items() if c == "gcp"), scope="session")
def gcp_run(request, stack_results) -> StackRun:
    return load_run(request.param, stack_results)


@pytest.fixture(params=sorted(n for n, c in CLOUDS.items() if c == "aws"), scope="session")
def aws_run(request, stack_results) -> StackRun:
    return load_run(request.param, stack_results)



@pytest.fixture
def mocks() -> Recorder:
    """Pulumi's mocks for constructing single components; records what they declare."""
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="kiosk", stack="test", preview=False, monitor=recorder.monitor())
    return recorder
