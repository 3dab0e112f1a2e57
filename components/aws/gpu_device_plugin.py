"""NVIDIA device plugin from its Helm chart: GPU nodes advertise nvidia.com/gpu."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.helm import helm_release, require_pinned_chart
from components.shapes import Taint, resource_requirements

CHART_REPO = "https://nvidia.github.io/k8s-device-plugin"
NAMESPACE = "kube-system"


@dataclass(frozen=True)
class GpuDevicePluginArgs:
    provider: k8s.Provider
    gpu_node_labels: Mapping[str, str]
    gpu_taints: Sequence[Taint] = field(default_factory=tuple)
    chart_version: str = "0.17.4"


class GpuDevicePlugin(pulumi.ComponentResource):
    """The plugin's DaemonSet, on the GPU nodes only.

    The EKS AL2023 NVIDIA AMI brings the driver and container toolkit, not the
    device plugin (https://docs.aws.amazon.com/eks/latest/userguide/ml-eks-k8s-device-plugin.html).
    The chart's default affinity waits for node-feature-discovery labels; the
    kiosk's GPU nodes are known by their pool label instead.
    """

    def __init__(self, name: str, args: GpuDevicePluginArgs, opts: pulumi.ResourceOptions | None = None):
        require_pinned_chart("GpuDevicePlugin", name, args.chart_version)
        if not args.gpu_node_labels:
            raise ValueError(f"GpuDevicePlugin {name}: GPU node labels are required to place the DaemonSet")
        super().__init__("kiosk:aws:GpuDevicePlugin", name, None, opts)
        match = [{"key": k, "operator": "In", "values": [v]} for k, v in args.gpu_node_labels.items()]
        self.release = helm_release(
            name,
            chart="nvidia-device-plugin",
            repo=CHART_REPO,
            version=args.chart_version,
            namespace=NAMESPACE,
            values={
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": match}],
                }}},
                "tolerations": [t.toleration() for t in args.gpu_taints],
                "resources": resource_requirements("50m", "64Mi", cpu_limit="200m", memory_limit="256Mi"),
            },
            provider=args.provider,
            parent=self,
        )
        self.register_outputs({"version": self.release.status.app_version})
