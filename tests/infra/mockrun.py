"""Constructing components on their own under Pulumi's mocks (the focused tests)."""

from __future__ import annotations

import pulumi
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from tests.infra.run_stack import _fake_outputs, _plain, fake_invoke, recording_monitor
from tests.infra.stackrun import unsecret, whole_floats_to_ints


class Recorder(pulumi.runtime.Mocks):
    """Records every registration; outputs and invokes as the stack runs get them.

    `registrations` holds what the monitor received (resource options too,
    see run_stack.resource_options); pass `monitor()` to set_mocks.
    """

    def __init__(self):
        self.resources: list[pulumi.runtime.MockResourceArgs] = []
        self.registrations: list[dict] = []

    def monitor(self):
        return recording_monitor(self, self.registrations)

    def options_of(self, typ: str) -> list[dict]:
        """The resource options of every registration of `typ`, in order."""
        return [r["options"] for r in self.registrations if r["type"] == typ]

    def new_resource(self, args):
        self.resources.append(args)
        return f"{args.name}-id", _fake_outputs(args.typ, args.name, args.inputs)

    def call(self, args):
        return fake_invoke(args.token, dict(args.args))

    def of_type(self, typ: str) -> list[dict]:
        return [whole_floats_to_ints(unsecret(_plain(r.inputs))) for r in self.resources if r.typ == typ]


def construct(build) -> None:
    """Run `build` as a Pulumi program and wait for every registration."""
    _sync_await(run_pulumi_func(build))


def resolve(output: pulumi.Output):
    return _sync_await(output.future())


def k8s_provider():
    import pulumi_kubernetes as k8s

    return k8s.Provider("k8s", kubeconfig="{}")
