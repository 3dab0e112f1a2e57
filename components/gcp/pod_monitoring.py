"""PodMonitoring objects: what GKE's Managed Service for Prometheus scrapes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.objects import metadata
from components.shapes import MetricsEndpoint

API_VERSION = "monitoring.googleapis.com/v1"
KIND = "PodMonitoring"
# Prometheus durations as the CRD accepts them (e.g. 30s, 1m).
DURATION = re.compile(r"^((\d+)h)?((\d+)m)?((\d+)s)?$")


def pod_monitoring_spec(endpoint: MetricsEndpoint, interval: str) -> dict:
    """spec of a PodMonitoring scraping `endpoint` on the pods it names."""
    return {
        "selector": {"matchLabels": dict(endpoint.pod_labels)},
        "endpoints": [{"port": endpoint.port, "path": endpoint.path, "interval": interval}],
    }


@dataclass(frozen=True)
class ManagedPrometheusScrapesArgs:
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    endpoints: Sequence[MetricsEndpoint]
    interval: str = "30s"


class ManagedPrometheusScrapes(pulumi.ComponentResource):
    """One PodMonitoring per workload endpoint, in the workloads' namespace.

    The CRD (monitoring.googleapis.com/v1) exists only on clusters with
    managed collection on, which GKE installs with the cluster; the collectors
    in gmp-system scrape the pods directly, so the workloads' NetworkPolicies
    must admit that namespace on the metrics ports.
    """

    def __init__(self, name: str, args: ManagedPrometheusScrapesArgs, opts: pulumi.ResourceOptions | None = None):
        if not args.endpoints:
            raise ValueError(f"ManagedPrometheusScrapes {name}: no endpoints to scrape")
        names = [e.name for e in args.endpoints]
        if len(set(names)) != len(names):
            raise ValueError(f"ManagedPrometheusScrapes {name}: endpoint names repeat: {names}")
        match = DURATION.match(args.interval)
        if not args.interval or not match or not any(match.groups()):
            raise ValueError(f"ManagedPrometheusScrapes {name}: interval {args.interval!r} is not a duration")
        for endpoint in args.endpoints:
            if not endpoint.pod_labels or not endpoint.path.startswith("/"):
                raise ValueError(f"ManagedPrometheusScrapes {name}: {endpoint.name} needs pod labels and a path")
        super().__init__("kiosk:gcp:ManagedPrometheusScrapes", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.pod_monitorings = [
            k8s.apiextensions.CustomResource(
                f"{name}-{endpoint.name}",
                api_version=API_VERSION,
                kind=KIND,
                metadata=metadata(endpoint.name, args.namespace, {"app.kubernetes.io/part-of": "kiosk"}),
                spec=pod_monitoring_spec(endpoint, args.interval),
                opts=child,
            )
            for endpoint in args.endpoints
        ]
        self.register_outputs({"podMonitorings": names})
