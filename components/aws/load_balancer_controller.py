"""AWS Load Balancer Controller from its Helm chart: Ingresses become ALBs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.aws.pod_identity import PodIdentityRole, PodIdentityRoleArgs
from components.aws.policies import load_balancer_controller_policy
from components.k8s.helm import helm_release, require_pinned_chart
from components.shapes import resource_requirements

CHART_REPO = "https://aws.github.io/eks-charts"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
INGRESS_CLASS = "alb"


@dataclass(frozen=True)
class LoadBalancerControllerArgs:
    provider: k8s.Provider
    cluster_name: pulumi.Input[str]
    region: str
    vpc_id: pulumi.Input[str]
    chart_version: str = "1.14.0"
    node_selector: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)


class LoadBalancerController(pulumi.ComponentResource):
    """The controller and its `alb` IngressClass.

    `.release` is what an Ingress of class `alb` must depend on: the chart's
    validating webhook rejects Ingresses while the controller is not up.
    """

    def __init__(self, name: str, args: LoadBalancerControllerArgs, opts: pulumi.ResourceOptions | None = None):
        require_pinned_chart("LoadBalancerController", name, args.chart_version)
        super().__init__("kiosk:aws:LoadBalancerController", name, None, opts)
        self.identity = PodIdentityRole(name, PodIdentityRoleArgs(
            cluster_name=args.cluster_name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            # Bound to resources tagged with this cluster's name (the
            # controller tags what it creates with its clusterName).
            policy=pulumi.Output.from_input(args.cluster_name).apply(load_balancer_controller_policy),
        ), pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)))
        self.release = helm_release(
            name,
            chart="aws-load-balancer-controller",
            repo=CHART_REPO,
            version=args.chart_version,
            namespace=NAMESPACE,
            values={
                "clusterName": args.cluster_name,
                # Given explicitly rather than read from the node's instance
                # metadata, which the default hop limit keeps from pods.
                "region": args.region,
                "vpcId": args.vpc_id,
                "serviceAccount": {"create": True, "name": self.identity.service_account},
                "nodeSelector": dict(args.node_selector),
                "resources": resource_requirements("100m", "128Mi", cpu_limit="500m", memory_limit="512Mi"),
                # Its policy has no WAF, Shield or Cognito permissions.
                "enableShield": False,
                "enableWaf": False,
                "enableWafv2": False,
                # Its Service webhook would intercept every Service the stack
                # creates, failing them while the controller starts; the kiosk
                # exposes nothing through Service type LoadBalancer.
                "enableServiceMutatorWebhook": False,
            },
            provider=args.provider,
            parent=self,
        )
        self.ingress_class = INGRESS_CLASS
        self.register_outputs({"roleArn": self.identity.role.arn, "version": self.release.status.app_version})
