"""EKS Pod Identity for the kiosk's workloads: one least-privilege role per service account."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.aws.pod_identity import PodIdentityRole, PodIdentityRoleArgs
from components.aws.policies import s3_workload_policy
from components.shapes import SERVICE_ACCOUNT_NAMES, WorkloadServiceAccounts


@dataclass(frozen=True)
class EksPodIdentityArgs:
    provider: k8s.Provider
    cluster_name: pulumi.Input[str]
    namespace: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]


class EksPodIdentity(pulumi.ComponentResource):
    """A Kubernetes service account per workload, each bound to an IAM role
    that may only touch its part of the stack's bucket.

    The pods find credentials through the default AWS credential chain (s3fs,
    the AWS CLI); no key is stored anywhere.
    """

    service_accounts: WorkloadServiceAccounts

    def __init__(self, name: str, args: EksPodIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kiosk:aws:EksPodIdentity", name, None, opts)
        names: dict[str, pulumi.Output[str]] = {}
        self.roles: dict[str, PodIdentityRole] = {}
        for workload, ksa_name in SERVICE_ACCOUNT_NAMES.items():
            ksa = k8s.core.v1.ServiceAccount(
                f"{name}-{workload}",
                metadata={
                    "name": ksa_name,
                    "namespace": args.namespace,
                    "labels": {"app.kubernetes.io/part-of": "kiosk"},
                },
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
            )
            role = PodIdentityRole(f"{name}-{workload}", PodIdentityRoleArgs(
                cluster_name=args.cluster_name,
                namespace=ksa.metadata.namespace,
                service_account=ksa_name,
                policy=pulumi.Output.from_input(args.bucket_arn).apply(
                    lambda arn, w=workload: s3_workload_policy(w, arn)
                ),
            ), pulumi.ResourceOptions(parent=self))
            # Pods started before their association get no credentials: the
            # name is handed out only once both the account and the association exist.
            names[workload] = pulumi.Output.all(ksa.metadata.name, role.service_account).apply(lambda v: v[0])
            self.roles[workload] = role
        self.service_accounts = WorkloadServiceAccounts(
            consumers=names["consumers"], frontend=names["frontend"], tf_serving=names["tfserving"],
        )
        self.register_outputs({f"{k}ServiceAccount": v for k, v in names.items()})
