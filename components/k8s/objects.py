"""Builders for the Kubernetes objects every kiosk workload declares alike."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s


def metadata(name: pulumi.Input[str], namespace: pulumi.Input[str], labels: Mapping[str, str],
             annotations: Mapping[str, pulumi.Input[str]] | None = None) -> dict:
    meta: dict = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if annotations is not None:
        meta["annotations"] = dict(annotations)
    return meta


# Pod template annotation: a digest of the configuration its pods read at
# start, so changing that configuration rolls them.
CONFIG_CHECKSUM = "kiosk.dev/config-checksum"


def config_checksum(files: Mapping[str, str]) -> str:
    """sha256 over the files' names and contents."""
    digest = hashlib.sha256()
    for key in sorted(files):
        digest.update(f"{key}\0{files[key]}\0".encode())
    return digest.hexdigest()


def http_get(path: str, port: str) -> dict:
    """The handler of an HTTP probe on a named container port."""
    return {"httpGet": {"path": path, "port": port}}


def cluster_ip_service(resource_name: str, name: str, namespace: pulumi.Input[str], labels: Mapping[str, str],
                       ports: Sequence[tuple[str, int]], opts: pulumi.ResourceOptions,
                       annotations: Mapping[str, pulumi.Input[str]] | None = None) -> k8s.core.v1.Service:
    """A ClusterIP Service selecting `labels`; each (name, port) targets the container port of that name."""
    return k8s.core.v1.Service(
        resource_name,
        metadata=metadata(name, namespace, labels, annotations),
        spec={
            "type": "ClusterIP",
            "selector": dict(labels),
            "ports": [{"name": port_name, "port": port, "targetPort": port_name} for port_name, port in ports],
        },
        opts=opts,
    )


def service_host(service: k8s.core.v1.Service) -> pulumi.Output[str]:
    """The Service's cluster DNS name."""
    return pulumi.Output.concat(service.metadata.name, ".", service.metadata.namespace, ".svc.cluster.local")


def keda_scaled_deployment(resource_name: str, name: str, namespace: pulumi.Input[str], labels: Mapping[str, str],
                           template: dict, opts: pulumi.ResourceOptions) -> k8s.apps.v1.Deployment:
    """A Deployment whose replicas KEDA owns.

    Created at zero replicas (the API server's default of one would start a
    GPU or consumer node for nothing), and `spec.replicas` is then left to
    KEDA and its HPA (0..max): ignored by later updates, so server-side apply
    never takes the field back. Nothing awaits a ready pod: at zero there is none.
    """
    return k8s.apps.v1.Deployment(
        resource_name,
        metadata=metadata(name, namespace, labels, {"pulumi.com/skipAwait": "true"}),
        spec={"replicas": 0, "selector": {"matchLabels": dict(labels)}, "template": template},
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(ignore_changes=["spec.replicas"])),
    )


def pod_disruption_budget(resource_name: str, name: str, namespace: pulumi.Input[str], labels: Mapping[str, str],
                          opts: pulumi.ResourceOptions) -> k8s.policy.v1.PodDisruptionBudget:
    """At most one pod of `labels` evicted at a time, so node drains always proceed."""
    return k8s.policy.v1.PodDisruptionBudget(
        resource_name,
        metadata=metadata(name, namespace, labels),
        spec={"maxUnavailable": 1, "selector": {"matchLabels": dict(labels)}},
        opts=opts,
    )


def namespace_selector(namespace: pulumi.Input[str]) -> dict:
    """A NetworkPolicy peer selector for a namespace, by its automatic name label."""
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


def ingress_only_from(resource_name: str, name: str, namespace: pulumi.Input[str], labels: Mapping[str, str],
                      rules: Sequence[tuple[Sequence[dict], Sequence[int]]],
                      opts: pulumi.ResourceOptions) -> k8s.networking.v1.NetworkPolicy:
    """A NetworkPolicy admitting to the pods of `labels` only the (peers, TCP ports) listed.

    A rule without peers is left out rather than sent as an empty `from`,
    which would admit every pod.
    """
    return k8s.networking.v1.NetworkPolicy(
        resource_name,
        metadata=metadata(name, namespace, labels),
        spec={
            "podSelector": {"matchLabels": dict(labels)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": list(peers), "ports": [{"protocol": "TCP", "port": port} for port in ports]}
                for peers, ports in rules if peers
            ],
        },
        opts=opts,
    )
