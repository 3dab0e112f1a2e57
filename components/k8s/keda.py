"""KEDA from its Helm chart, plus the ScaledObject builder the workloads share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.helm import helm_release, require_pinned_chart
from components.k8s.objects import metadata
from components.shapes import resource_requirements

CHART_REPO = "https://kedacore.github.io/charts"
# Labels the chart puts on the operator pods, which are the ones polling Redis.
OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "keda-operator"}


@dataclass(frozen=True)
class KedaArgs:
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    chart_version: str = "2.18.3"
    node_selector: Mapping[str, str] = field(default_factory=dict)


class Keda(pulumi.ComponentResource):
    """The KEDA operator, metrics API server and admission webhooks."""

    def __init__(self, name: str, args: KedaArgs, opts: pulumi.ResourceOptions | None = None):
        require_pinned_chart("Keda", name, args.chart_version)
        super().__init__("kiosk:k8s:Keda", name, None, opts)
        small = resource_requirements("100m", "128Mi", cpu_limit="1", memory_limit="512Mi")
        self.release = helm_release(
            name,
            chart="keda",
            repo=CHART_REPO,
            version=args.chart_version,
            namespace=args.namespace,
            values={
                "resources": {"operator": small, "metricServer": small, "webhooks": small},
                "nodeSelector": dict(args.node_selector),
            },
            provider=args.provider,
            parent=self,
        )
        self.namespace = self.release.status.namespace
        self.operator_pod_labels = dict(OPERATOR_POD_LABELS)
        self.register_outputs({"namespace": self.namespace, "version": self.release.status.app_version})


@dataclass(frozen=True)
class StreamTrigger:
    """KEDA `redis-streams` trigger scaling on XLEN of one stream.

    Verified against KEDA's scaler (pkg/scalers/redis_streams_scaler.go):
    without `consumerGroup` the scaler uses XLEN with target `streamLength`,
    and a trigger is active while the count exceeds `activationLagCount`
    (default 0), so an empty stream lets the workload scale to zero.
    """

    address: pulumi.Input[str]
    stream: str
    stream_length: int
    # A TriggerAuthentication giving the scaler Redis's password (parameter `password`).
    authentication_ref: str | None = None

    def to_k8s(self) -> dict:
        trigger: dict = {
            "type": "redis-streams",
            "metadata": {
                "address": self.address,
                "stream": self.stream,
                "streamLength": str(self.stream_length),
                "activationLagCount": "0",
            },
        }
        if self.authentication_ref is not None:
            trigger["authenticationRef"] = {"name": self.authentication_ref}
        return trigger


def scaled_object_spec(
    target_name: pulumi.Input[str],
    triggers: Sequence[StreamTrigger],
    max_replicas: int,
    cooldown_seconds: int = 300,
    polling_seconds: int = 15,
) -> dict:
    """Spec of a ScaledObject that scales a Deployment between 0 and max_replicas."""
    if not triggers:
        raise ValueError("a ScaledObject needs at least one trigger")
    if max_replicas < 1:
        raise ValueError("max_replicas must be at least 1")
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target_name},
        "minReplicaCount": 0,
        "maxReplicaCount": max_replicas,
        "pollingInterval": polling_seconds,
        "cooldownPeriod": cooldown_seconds,
        "triggers": [t.to_k8s() for t in triggers],
    }


def scaled_object(
    resource_name: str,
    name: pulumi.Input[str],
    namespace: pulumi.Input[str],
    labels: Mapping[str, str],
    spec: dict,
    opts: pulumi.ResourceOptions,
    keda: pulumi.Resource | None = None,
) -> k8s.apiextensions.CustomResource:
    """A keda.sh/v1alpha1 ScaledObject, created after `keda` (the chart with its CRD) when given."""
    if keda is not None:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[keda]))
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version="keda.sh/v1alpha1",
        kind="ScaledObject",
        metadata=metadata(name, namespace, labels),
        spec=spec,
        opts=opts,
    )
