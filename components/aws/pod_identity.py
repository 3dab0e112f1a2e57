"""An IAM role a Kubernetes service account uses through EKS Pod Identity."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.policies import pod_identity_trust

K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class PodIdentityRoleArgs:
    cluster_name: pulumi.Input[str]
    namespace: pulumi.Input[str]
    service_account: str
    # The role's permissions: an inline policy document (JSON), and/or
    # managed policies AWS maintains for an add-on (the EBS CSI driver's).
    policy: pulumi.Input[str] | None = None
    managed_policy_arns: tuple[str, ...] = ()


class PodIdentityRole(pulumi.ComponentResource):
    """Role trusted by pods.eks.amazonaws.com, its policy, and the association
    binding it to `namespace/service_account` in the cluster.

    No keys anywhere: the Pod Identity agent hands the pod temporary
    credentials, which every AWS SDK's default credential chain picks up.
    Pods must be created after the association, so `.service_account` is
    taken from it: whatever runs as that name waits for the association.
    """

    def __init__(self, name: str, args: PodIdentityRoleArgs, opts: pulumi.ResourceOptions | None = None):
        if not K8S_NAME.match(args.service_account):
            raise ValueError(f"PodIdentityRole {name}: {args.service_account!r} is not a service account name")
        if any(not arn.startswith("arn:aws:iam::aws:policy/") for arn in args.managed_policy_arns):
            raise ValueError(f"PodIdentityRole {name}: only AWS-managed policies may be attached")
        if args.policy is None and not args.managed_policy_arns:
            raise ValueError(f"PodIdentityRole {name}: a role without a policy is of no use")
        super().__init__("kiosk:aws:PodIdentityRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(name, assume_role_policy=pod_identity_trust(), opts=child)
        if args.policy is not None:
            aws.iam.RolePolicy(name, role=self.role.id, policy=args.policy, opts=child)
        for arn in args.managed_policy_arns:
            aws.iam.RolePolicyAttachment(
                f"{name}-{arn.rsplit('/', 1)[-1]}", role=self.role.name, policy_arn=arn, opts=child,
            )
        self.association = aws.eks.PodIdentityAssociation(
            name,
            cluster_name=args.cluster_name,
            namespace=args.namespace,
            service_account=args.service_account,
            role_arn=self.role.arn,
            opts=child,
        )
        self.service_account: pulumi.Output[str] = self.association.service_account
        self.register_outputs({"roleArn": self.role.arn, "serviceAccount": self.service_account})
