"""Helm releases of the cluster add-ons (KEDA, autoscaler, controllers, device plugin)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def require_pinned_chart(component: str, name: str, version: str) -> None:
    """An exact chart version, so a preview shows what an upgrade changes."""
    if not SEMVER.match(version):
        raise ValueError(f"{component} {name}: pin an exact chart version, got {version!r}")


def helm_release(name: str, *, chart: str, repo: str, version: str, namespace: pulumi.Input[str],
                 values: Mapping, provider: k8s.Provider, parent: pulumi.Resource) -> k8s.helm.v3.Release:
    return k8s.helm.v3.Release(
        name,
        chart=chart,
        version=version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo),
        namespace=namespace,
        values=dict(values),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )
