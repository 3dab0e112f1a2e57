"""An EKS managed node group, with the cluster-autoscaler tags it needs to scale from zero."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.shapes import Taint

# https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/cloudprovider/aws/README.md#auto-discovery-setup
NODE_TEMPLATE_TAG = "k8s.io/cluster-autoscaler/node-template"
AMI_TYPES = ("AL2023_x86_64_STANDARD", "AL2023_x86_64_NVIDIA", "AL2023_ARM_64_STANDARD")
EKS_TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}


@dataclass(frozen=True)
class NodeGroupSpec:
    """Size, kind and scheduling facts of one managed node group."""

    instance_types: Sequence[str]
    max_size: int
    min_size: int = 0
    spot: bool = False
    ami_type: str = "AL2023_x86_64_STANDARD"
    disk_gi: int = 50
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Taint] = field(default_factory=tuple)
    # Extended resources a node offers once its device plugin runs (nvidia.com/gpu).
    extended_resources: Mapping[str, str] = field(default_factory=dict)


def node_template_tags(spec: NodeGroupSpec) -> dict[str, str]:
    """Auto Scaling group tags describing the nodes a group would add.

    With no node running, the cluster autoscaler cannot see a group's labels,
    taints or GPUs, and would never scale it up for a pod that selects them.
    """
    tags = {f"{NODE_TEMPLATE_TAG}/label/{k}": v for k, v in spec.labels.items()}
    tags |= {f"{NODE_TEMPLATE_TAG}/taint/{t.key}": f"{t.value}:{t.effect}" for t in spec.taints}
    tags |= {f"{NODE_TEMPLATE_TAG}/resources/{k}": v for k, v in spec.extended_resources.items()}
    return tags


@dataclass(frozen=True)
class ManagedNodeGroupArgs:
    cluster_name: pulumi.Input[str]
    node_role_arn: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    spec: NodeGroupSpec
    kubernetes_version: str | None = None


class ManagedNodeGroup(pulumi.ComponentResource):
    """`aws.eks.NodeGroup` plus one `aws.autoscaling.Tag` per node-template tag.

    Tags on a managed node group do not reach its Auto Scaling group
    (https://github.com/aws/containers-roadmap/issues/608), and without them
    scale-from-zero never starts
    (https://github.com/kubernetes/autoscaler/issues/3780). So every tag is
    put on the group EKS created, found through the node group's `resources`.
    """

    node_group: aws.eks.NodeGroup

    def __init__(self, name: str, args: ManagedNodeGroupArgs, opts: pulumi.ResourceOptions | None = None):
        spec = args.spec
        if not spec.instance_types:
            raise ValueError(f"ManagedNodeGroup {name}: at least one instance type is required")
        if not 0 <= spec.min_size <= spec.max_size or spec.max_size < 1:
            raise ValueError(f"ManagedNodeGroup {name}: need 0 <= min_size <= max_size and max_size >= 1")
        if spec.ami_type not in AMI_TYPES:
            raise ValueError(f"ManagedNodeGroup {name}: ami_type must be one of {AMI_TYPES}")
        if any(t.effect not in EKS_TAINT_EFFECTS for t in spec.taints):
            raise ValueError(f"ManagedNodeGroup {name}: taint effects must be one of {tuple(EKS_TAINT_EFFECTS)}")
        if not args.subnet_ids:
            raise ValueError(f"ManagedNodeGroup {name}: at least one subnet is required")
        super().__init__("kiosk:aws:ManagedNodeGroup", name, None, opts)
        autoscaled = spec.min_size < spec.max_size
        self.node_group = aws.eks.NodeGroup(
            name,
            cluster_name=args.cluster_name,
            node_role_arn=args.node_role_arn,
            subnet_ids=list(args.subnet_ids),
            version=args.kubernetes_version,
            ami_type=spec.ami_type,
            capacity_type="SPOT" if spec.spot else "ON_DEMAND",
            instance_types=list(spec.instance_types),
            disk_size=spec.disk_gi,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=spec.min_size, max_size=spec.max_size, desired_size=spec.min_size,
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            labels=dict(spec.labels),
            taints=[
                aws.eks.NodeGroupTaintArgs(key=t.key, value=t.value, effect=EKS_TAINT_EFFECTS[t.effect])
                for t in spec.taints
            ],
            # The cluster autoscaler owns the desired size of an autoscaled group.
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=["scalingConfig.desiredSize"] if autoscaled else None,
            ),
        )
        self.autoscaling_group_name: pulumi.Output[str] = self.node_group.resources.apply(
            lambda resources: resources[0].autoscaling_groups[0].name
        )
        self.template_tags = node_template_tags(spec) if spec.min_size == 0 else {}
        for key, value in self.template_tags.items():
            slug = key.removeprefix(f"{NODE_TEMPLATE_TAG}/").replace("/", "-").replace(".", "-")
            aws.autoscaling.Tag(
                f"{name}-{slug}",
                autoscaling_group_name=self.autoscaling_group_name,
                tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=True),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({
            "nodeGroup": self.node_group.node_group_name,
            "autoscalingGroup": self.autoscaling_group_name,
        })
