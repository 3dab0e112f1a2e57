"""Where CI runs `pulumi` for an EKS stack: a self-hosted runner inside the VPC.

The EKS API endpoint is reachable from the VPC (private endpoint) and, on the
public side, only from `masterAuthorizedCidrs`, which GitHub-hosted runners
are not in. A self-hosted runner started in one of the private subnets with
this security group reaches the private endpoint: the cluster's security
group admits it on 443, and inside the VPC the endpoint's name resolves to
the private addresses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

API_PORT = 443


@dataclass(frozen=True)
class CiRunnerAccessArgs:
    vpc_id: pulumi.Input[str]
    # The cluster security group EKS puts on the control plane's ENIs.
    cluster_security_group_id: pulumi.Input[str]
    # Private subnets a runner may be started in (behind NAT, for GitHub and registries).
    subnet_ids: Sequence[pulumi.Input[str]]


class CiRunnerAccess(pulumi.ComponentResource):
    """The runner's security group (outbound only) and its admission to the
    cluster's API. `.security_group_id` and `.subnet_ids` say where to start it."""

    def __init__(self, name: str, args: CiRunnerAccessArgs, opts: pulumi.ResourceOptions | None = None):
        if not args.subnet_ids:
            raise ValueError(f"CiRunnerAccess {name}: at least one subnet is required")
        super().__init__("kiosk:aws:CiRunnerAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        group = aws.ec2.SecurityGroup(
            name,
            vpc_id=args.vpc_id,
            description="Self-hosted CI runner that runs pulumi against the private EKS endpoint",
            # Nothing reaches the runner; it reaches GitHub, registries and AWS APIs through NAT.
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="-1", from_port=0, to_port=0,
                                                   cidr_blocks=["0.0.0.0/0"])],
            tags={"Name": name},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-eks-api",
            security_group_id=args.cluster_security_group_id,
            referenced_security_group_id=group.id,
            ip_protocol="tcp",
            from_port=API_PORT,
            to_port=API_PORT,
            description="CI runner to the EKS API",
            opts=child,
        )
        self.security_group_id: pulumi.Output[str] = group.id
        self.subnet_ids = list(args.subnet_ids)
        self.register_outputs({"securityGroupId": group.id})
