"""Cloud families: each builds cluster, bucket, registry, portal entry and
identities, and returns them in the one `Platform` shape the workloads use.

`cloud: gcp` is built here; `cloud: aws` (EKS, S3, ECR, IAM) is the next
issue and only has to return the same shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi

from components.gcp.bucket import KioskBucket, KioskBucketArgs
from components.gcp.gke import CpuPoolSpec, GkeCluster, GkeClusterArgs, GpuPoolSpec, SystemPoolSpec
from components.gcp.memorystore import Memorystore, MemorystoreArgs
from components.gcp.network import Network, NetworkArgs
from components.gcp.portal import PortalEndpoint, PortalEndpointArgs
from components.gcp.registry import ArtifactRegistry, ArtifactRegistryArgs
from components.gcp.workload_identity import GkeWorkloadIdentity, GkeWorkloadIdentityArgs
from components.shapes import ClusterInfo, RedisEndpoint, WorkloadServiceAccounts
from infra.config import KioskConfig


@dataclass(frozen=True)
class RegistryLogin:
    address: pulumi.Input[str]
    repository_url: pulumi.Output[str]
    username: pulumi.Input[str]
    password: pulumi.Output[str]


@dataclass(frozen=True)
class Platform:
    """What a cloud family hands to the cloud-agnostic workloads."""

    cluster: ClusterInfo
    bucket_name: pulumi.Output[str]
    storage_url: pulumi.Output[str]
    models_uri: pulumi.Output[str]
    registry: RegistryLogin
    portal_url: pulumi.Output[str]
    # The public IP the portal's DNS record points at.
    portal_address: pulumi.Output[str]
    portal_host: str | None
    ingress_annotations: Mapping[str, pulumi.Input[str]]
    service_annotations: Mapping[str, pulumi.Input[str]]
    # Set when Redis is a managed service; None means "run it in the cluster".
    managed_redis: RedisEndpoint | None
    # Binds the workloads' Kubernetes service accounts in a namespace to cloud identities.
    service_accounts: Callable[[pulumi.Input[str]], WorkloadServiceAccounts]


def account_id_prefix(stack: str) -> str:
    """Project-unique, short prefix for service-account ids: kiosk-<stack>."""
    slug = re.sub(r"[^a-z0-9-]+", "-", f"kiosk-{stack}".lower())[:23].strip("-")
    if len(slug) < 6:
        raise ValueError(f"stack name {stack!r} gives too short an account id prefix {slug!r}")
    return slug


def gcp_platform(cfg: KioskConfig) -> Platform:
    gke = cfg.gke
    if gke is None:
        raise ValueError("cloud gcp needs the GKE settings")
    prefix = account_id_prefix(cfg.stack)
    network = Network("kiosk", NetworkArgs(
        region=gke.region,
        subnet_cidr=gke.subnet_cidr,
        pods_cidr=gke.pods_cidr,
        services_cidr=gke.services_cidr,
        master_cidr=gke.master_cidr,
    ))
    cluster = GkeCluster("kiosk", GkeClusterArgs(
        project=gke.project,
        location=gke.location,
        network=network.network.id,
        subnetwork=network.subnetwork.id,
        pods_range_name=network.pods_range_name,
        services_range_name=network.services_range_name,
        master_cidr=gke.master_cidr,
        node_tag=network.node_tag,
        account_id_prefix=prefix,
        kubernetes_version=cfg.kubernetes_version,
        release_channel=gke.release_channel,
        master_authorized_cidrs=gke.master_authorized_cidrs,
        dns_endpoint=gke.dns_endpoint,
        deletion_protection=cfg.deletion_protection,
        system_pool=SystemPoolSpec(machine_type=gke.system_machine_type, node_count=gke.system_node_count),
        cpu_pool=CpuPoolSpec(machine_type=gke.cpu_machine_type, max_nodes=gke.cpu_max_nodes, spot=gke.cpu_spot),
        gpu_pool=GpuPoolSpec(
            machine_type=gke.gpu_machine_type,
            accelerator_type=gke.gpu_type,
            accelerators_per_node=gke.gpus_per_node,
            max_nodes=gke.gpu_max_nodes,
            spot=gke.gpu_spot,
            driver_version=gke.gpu_driver_version,
            zones=gke.gpu_zones,
        ),
    ))
    portal = PortalEndpoint("kiosk-portal", PortalEndpointArgs(domain=cfg.domain))
    bucket = KioskBucket("kiosk-data", KioskBucketArgs(
        location=gke.region,
        uploads_expire_days=cfg.uploads_expire_days,
        output_expire_days=cfg.output_expire_days,
        cors_origins=(portal.url, *cfg.cors_origins),
        force_destroy=cfg.bucket_force_destroy,
    ))
    registry = ArtifactRegistry("kiosk-images", ArtifactRegistryArgs(
        project=gke.project,
        location=gke.region,
        repository_id=f"kiosk-{cfg.stack}".lower(),
        reader_members=(cluster.node_service_account_member,),
    ))
    managed_redis = None
    if cfg.redis_mode == "memorystore":
        managed_redis = Memorystore("kiosk-redis", MemorystoreArgs(
            region=gke.region,
            network=network.network.id,
            tier=gke.memorystore_tier,
            memory_size_gb=gke.memorystore_memory_gb,
            deletion_protection=cfg.deletion_protection,
        )).endpoint

    def service_accounts(namespace: pulumi.Input[str]) -> WorkloadServiceAccounts:
        return GkeWorkloadIdentity("kiosk-identity", GkeWorkloadIdentityArgs(
            provider=cluster.info.provider,
            namespace=namespace,
            project=gke.project,
            bucket=bucket.name,
            account_id_prefix=prefix,
        )).service_accounts

    return Platform(
        cluster=cluster.info,
        bucket_name=bucket.name,
        storage_url=bucket.url,
        models_uri=bucket.models_uri,
        registry=RegistryLogin(
            address=registry.address,
            repository_url=registry.repository_url,
            username=registry.username,
            password=registry.password,
        ),
        portal_url=portal.url,
        portal_address=portal.address.address,
        portal_host=portal.host,
        ingress_annotations=portal.ingress_annotations,
        service_annotations=portal.service_annotations,
        managed_redis=managed_redis,
        service_accounts=service_accounts,
    )


def aws_platform(cfg: KioskConfig) -> Platform:
    raise ValueError(
        "kiosk:cloud 'aws' is not implemented yet: the EKS/S3/ECR/IAM family is a separate issue. "
        "Use kiosk:cloud gcp."
    )


PLATFORMS: dict[str, Callable[[KioskConfig], Platform]] = {"gcp": gcp_platform, "aws": aws_platform}
