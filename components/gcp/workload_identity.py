"""Workload Identity: Kubernetes service accounts acting as least-privilege GSAs."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.shapes import MODELS, OUTPUT, SERVICE_ACCOUNT_NAMES, UPLOADS, WorkloadServiceAccounts

# Bucket roles per workload, each held only on some prefixes (IAM Conditions),
# as the S3 policies do: consumers read uploads/ and write output/ (and
# uploads/, where zip jobs unpack; overwriting needs objectUser's delete),
# never models/; the frontend creates uploads/ and reads uploads/, output/
# (the download links it signs) and models/ (its catalogue); TF-Serving only
# reads models/.
BUCKET_ROLES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "consumers": (("roles/storage.objectUser", (UPLOADS, OUTPUT)),),
    "frontend": (("roles/storage.objectCreator", (UPLOADS,)),
                 ("roles/storage.objectViewer", (UPLOADS, OUTPUT, MODELS))),
    "tfserving": (("roles/storage.objectViewer", (MODELS,)),),
}
BUCKET_TYPE = "storage.googleapis.com/Bucket"


def prefix_condition(bucket: str, prefixes: tuple[str, ...]) -> str:
    """CEL expression granting a role's object permissions under `prefixes` only.

    Listing is checked on the bucket itself, not on an object, so the bucket
    resource is admitted too: that branch grants the role's bucket-level
    permissions (storage.objects.list) and no object's content.
    """
    terms = [f'resource.type == "{BUCKET_TYPE}"']
    terms += [f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/{p}")' for p in prefixes]
    return " || ".join(terms)
KSA_NAMES = SERVICE_ACCOUNT_NAMES
GSA_SUFFIX = {"consumers": "cons", "frontend": "front", "tfserving": "tfs"}


@dataclass(frozen=True)
class GkeWorkloadIdentityArgs:
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    project: str
    bucket: pulumi.Input[str]
    # Short, project-unique prefix for the service account ids (<= 23 chars).
    account_id_prefix: str


class GkeWorkloadIdentity(pulumi.ComponentResource):
    """One GSA + KSA pair per workload, bound with roles/iam.workloadIdentityUser."""

    service_accounts: WorkloadServiceAccounts

    def __init__(self, name: str, args: GkeWorkloadIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        if not 1 <= len(args.account_id_prefix) <= 23:
            raise ValueError(f"GkeWorkloadIdentity {name}: account_id_prefix must be 1-23 characters")
        super().__init__("kiosk:gcp:GkeWorkloadIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        k8s_child = pulumi.ResourceOptions(parent=self, provider=args.provider)

        names: dict[str, pulumi.Output[str]] = {}
        self.emails: dict[str, pulumi.Output[str]] = {}
        for workload, roles in BUCKET_ROLES.items():
            gsa = gcp.serviceaccount.Account(
                f"{name}-{workload}",
                project=args.project,
                account_id=f"{args.account_id_prefix}-{GSA_SUFFIX[workload]}",
                display_name=f"kiosk {workload}",
                opts=child,
            )
            member = gsa.email.apply(lambda e: f"serviceAccount:{e}")
            for role, prefixes in roles:
                gcp.storage.BucketIAMMember(
                    f"{name}-{workload}-{role.split('.')[-1]}",
                    bucket=args.bucket,
                    role=role,
                    member=member,
                    condition=gcp.storage.BucketIAMMemberConditionArgs(
                        title=f"kiosk-{workload}-prefixes",
                        description=f"{workload}: {', '.join(prefixes)}",
                        expression=pulumi.Output.from_input(args.bucket).apply(
                            lambda b, prefixes=prefixes: prefix_condition(b, prefixes)),
                    ),
                    opts=child,
                )
            ksa = k8s.core.v1.ServiceAccount(
                f"{name}-{workload}",
                metadata={
                    "name": KSA_NAMES[workload],
                    "namespace": args.namespace,
                    "annotations": {"iam.gke.io/gcp-service-account": gsa.email},
                    "labels": {"app.kubernetes.io/part-of": "kiosk"},
                },
                opts=k8s_child,
            )
            gcp.serviceaccount.IAMMember(
                f"{name}-{workload}-wi",
                service_account_id=gsa.name,
                role="roles/iam.workloadIdentityUser",
                member=pulumi.Output.concat(
                    "serviceAccount:", args.project, ".svc.id.goog[", ksa.metadata.namespace, "/",
                    ksa.metadata.name, "]",
                ),
                opts=child,
            )
            names[workload] = ksa.metadata.name
            self.emails[workload] = gsa.email
            if workload == "frontend":
                # V4 signed URLs under Workload Identity are signed by the IAM
                # signBlob API, which needs Token Creator on the GSA itself.
                gcp.serviceaccount.IAMMember(
                    f"{name}-{workload}-signer",
                    service_account_id=gsa.name,
                    role="roles/iam.serviceAccountTokenCreator",
                    member=member,
                    opts=child,
                )
        self.service_accounts = WorkloadServiceAccounts(
            consumers=names["consumers"], frontend=names["frontend"], tf_serving=names["tfserving"],
        )
        self.register_outputs({f"{k}ServiceAccount": v for k, v in names.items()})
