"""Cluster autoscaler from its Helm chart, with a least-privilege Pod Identity role."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.aws.pod_identity import PodIdentityRole, PodIdentityRoleArgs
from components.aws.policies import cluster_autoscaler_policy
from components.k8s.helm import helm_release, require_pinned_chart
from components.shapes import resource_requirements

CHART_REPO = "https://kubernetes.github.io/autoscaler"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "cluster-autoscaler"
IMAGE_TAG = re.compile(r"^v\d+\.\d+\.\d+$")


@dataclass(frozen=True)
class ClusterAutoscalerArgs:
    provider: k8s.Provider
    cluster_name: pulumi.Input[str]
    region: str
    # ARNs of the cluster's managed node groups (for eks:DescribeNodegroup).
    node_group_arns: Sequence[pulumi.Input[str]]
    chart_version: str = "9.59.0"
    # Must match the cluster's minor version.
    image_tag: str = "v1.35.0"
    node_selector: Mapping[str, str] = field(default_factory=dict)
    # Work that must exist first (the Pod Identity agent).
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)


class ClusterAutoscaler(pulumi.ComponentResource):
    """Finds the node groups by the tags EKS puts on their Auto Scaling groups
    (k8s.io/cluster-autoscaler/enabled and k8s.io/cluster-autoscaler/<cluster>)
    and resizes them between their minimum and maximum."""

    def __init__(self, name: str, args: ClusterAutoscalerArgs, opts: pulumi.ResourceOptions | None = None):
        require_pinned_chart("ClusterAutoscaler", name, args.chart_version)
        if not IMAGE_TAG.match(args.image_tag):
            raise ValueError(f"ClusterAutoscaler {name}: image tag must look like v1.35.0, got {args.image_tag!r}")
        if not args.node_group_arns:
            raise ValueError(f"ClusterAutoscaler {name}: no node groups to scale")
        super().__init__("kiosk:aws:ClusterAutoscaler", name, None, opts)
        policy = pulumi.Output.all(args.cluster_name, *args.node_group_arns).apply(
            lambda v: cluster_autoscaler_policy(v[0], v[1:])
        )
        self.identity = PodIdentityRole(name, PodIdentityRoleArgs(
            cluster_name=args.cluster_name, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, policy=policy,
        ), pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)))
        self.release = helm_release(
            name,
            chart="cluster-autoscaler",
            repo=CHART_REPO,
            version=args.chart_version,
            namespace=NAMESPACE,
            values={
                "cloudProvider": "aws",
                "awsRegion": args.region,
                "autoDiscovery": {"clusterName": args.cluster_name},
                "image": {"tag": args.image_tag},
                "rbac": {"serviceAccount": {"create": True, "name": self.identity.service_account}},
                "nodeSelector": dict(args.node_selector),
                "resources": resource_requirements("100m", "300Mi", cpu_limit="1", memory_limit="600Mi"),
                "extraArgs": {
                    # Spread the consumer group's Spot instances over zones.
                    "balance-similar-node-groups": "true",
                    "expander": "least-waste",
                    # TF-Serving's model copy is an emptyDir cache, not data
                    # worth keeping a GPU node for.
                    "skip-nodes-with-local-storage": "false",
                    "skip-nodes-with-system-pods": "false",
                },
            },
            provider=args.provider,
            parent=self,
        )
        self.register_outputs({"roleArn": self.identity.role.arn, "version": self.release.status.app_version})
