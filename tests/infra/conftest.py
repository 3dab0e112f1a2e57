"""Runs the real program once per stack file (in parallel subprocesses)."""

import json

import pytest

from tests.infra.run_stack import stack_name
from tests.infra.stackrun import STACK_FILES, StackRun, run_stacks

STACKS = {stack_name(f): f for f in STACK_FILES}


@pytest.fixture(scope="session")
def stack_results():
    assert STACKS, "no stacks/Pulumi.*.yaml files found"
    return run_stacks(STACK_FILES)


@pytest.fixture(params=sorted(STACKS), scope="session")
def run(request, stack_results) -> StackRun:
    rc, out, err = stack_results[request.param]
    if rc != 0:
        pytest.fail(f"program failed for stack {request.param}:\n{err[-4000:]}")
    return StackRun(STACKS[request.param], json.loads(out))
