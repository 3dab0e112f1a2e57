"""Cloud families: each builds cluster, bucket, registry, portal entry and
identities, and returns them in the one `Platform` shape the workloads use.

`cloud: gcp` builds GKE, GCS, Artifact Registry and Workload Identity;
`cloud: aws` builds EKS, S3, ECR and Pod Identity.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi

from components.aws.bucket import S3Bucket, S3BucketArgs
from components.aws.budget import AccountBudget, AccountBudgetArgs
from components.aws.bucket_cors import BucketCors, BucketCorsArgs
from components.aws.ci_runner import CiRunnerAccess, CiRunnerAccessArgs
from components.aws.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from components.aws.eks import CpuGroupSpec, EksCluster, EksClusterArgs, GpuGroupSpec, SystemGroupSpec
from components.aws.gpu_device_plugin import GpuDevicePlugin, GpuDevicePluginArgs
from components.aws.load_balancer_controller import LoadBalancerController, LoadBalancerControllerArgs
from components.aws.model_objects import S3ModelObjects, S3ModelObjectsArgs
from components.aws.model_sync import s3_model_sync
from components.aws.network import Vpc, VpcArgs
from components.aws.portal import AlbPortal, AlbPortalArgs
from components.aws.portal_dns import PortalDnsRecord, PortalDnsRecordArgs
from components.aws.registry import DockerHubCache, DockerHubCacheArgs, EcrRegistry, EcrRegistryArgs
from components.aws.workload_identity import EksPodIdentity, EksPodIdentityArgs
from components.gcp.bucket import KioskBucket, KioskBucketArgs
from components.gcp.budget import ProjectBudget, ProjectBudgetArgs
from components.gcp.gke import CpuPoolSpec, GkeCluster, GkeClusterArgs, GpuPoolSpec, SystemPoolSpec
from components.gcp.memorystore import Memorystore, MemorystoreArgs
from components.gcp.model_objects import GcsModelObjects, GcsModelObjectsArgs
from components.gcp.network import Network, NetworkArgs
from components.gcp.pod_monitoring import ManagedPrometheusScrapes, ManagedPrometheusScrapesArgs
from components.gcp.portal import PortalEndpoint, PortalEndpointArgs, https_redirect
from components.gcp.registry import ArtifactRegistry, ArtifactRegistryArgs, DockerHubRemote, DockerHubRemoteArgs
from components.gcp.workload_identity import GkeWorkloadIdentity, GkeWorkloadIdentityArgs
from components.k8s.frontend import HEALTH_PATH
from components.k8s.images import IMAGES
from components.k8s.tf_serving import ModelSync
from components.models import ModelFile, model_files
from components.shapes import (
    ClusterInfo,
    ImageMirror,
    MetricsEndpoint,
    RedisEndpoint,
    RegistryLogin,
    WorkloadServiceAccounts,
)
from infra.config import KioskConfig


@dataclass(frozen=True)
class PublishedPortal:
    url: pulumi.Output[str]
    # What the portal's DNS record points at: GKE's reserved IP, EKS's ALB name.
    address: pulumi.Output[str]


@dataclass(frozen=True)
class Platform:
    """What a cloud family hands to the cloud-agnostic workloads."""

    cluster: ClusterInfo
    bucket_name: pulumi.Output[str]
    storage_url: pulumi.Output[str]
    # Where TF-Serving's model config points: the bucket's models/ (GCS), or
    # the pod-local copy that `model_sync` keeps (S3, which TF-Serving cannot read).
    models_uri: pulumi.Input[str]
    model_sync: ModelSync | None
    registry: RegistryLogin
    # The portal's URL when it is known before the frontend exists (a domain,
    # GKE's reserved IP); None when only the Ingress's load balancer tells it.
    portal_url: pulumi.Output[str] | None
    portal_host: str | None
    ingress_class_name: str | None
    ingress_annotations: Mapping[str, pulumi.Input[str]]
    service_annotations: Mapping[str, pulumi.Input[str]]
    # The controller serving the Ingress class, when the stack installs it.
    ingress_controller: pulumi.Resource | None
    # Set when Redis is a managed service; None means "run it in the cluster".
    managed_redis: RedisEndpoint | None
    # Binds the workloads' Kubernetes service accounts in a namespace to cloud identities.
    service_accounts: Callable[[pulumi.Input[str]], WorkloadServiceAccounts]
    # Environment the consumers and the frontend need for the cloud's SDKs.
    workload_env: Mapping[str, pulumi.Input[str]]
    # Finishes the portal once the frontend's Ingress has an address (the
    # load balancer's IP or name): DNS, the bucket's CORS; returns URL and address.
    publish_portal: Callable[[pulumi.Output[str]], PublishedPortal]
    # Declares the scrape configs of the workloads' metrics endpoints in a
    # namespace (GKE with Managed Prometheus: PodMonitoring objects); None
    # when the cluster has no managed collector to configure (EKS).
    scrape_metrics: Callable[[pulumi.Input[str], Sequence[MetricsEndpoint]], object] | None
    # Declares, in a namespace, what the portal's Ingress refers to (GKE's
    # HTTPS redirect); None when the Ingress needs nothing of the kind.
    ingress_config: Callable[[pulumi.Input[str]], pulumi.Resource | None] | None = None
    # The cache Docker Hub images are pulled through; None pulls them directly.
    image_mirror: ImageMirror | None = None
    # Stack outputs only this family has (where EKS's CI runner goes).
    outputs: Mapping[str, pulumi.Input] = field(default_factory=dict)


# The repository's models/ (the trained models it ships).
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


def repository_model_files(cfg: KioskConfig) -> tuple[ModelFile, ...]:
    """Files of the configured model versions that the repository holds; paths
    relative to the working directory (infra/), as the image build context is."""
    return model_files(MODELS_DIR, [(m.name, m.versions) for m in cfg.models], relative_to=Path(os.getcwd()))


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
        protect=cfg.deletion_protection,
    ))
    GcsModelObjects("kiosk-models", GcsModelObjectsArgs(bucket=bucket.name, files=repository_model_files(cfg)))
    registry = ArtifactRegistry("kiosk-images", ArtifactRegistryArgs(
        project=gke.project,
        location=gke.region,
        repository_id=f"kiosk-{cfg.stack}".lower(),
        reader_members=(cluster.node_service_account_member,),
        protect=cfg.deletion_protection,
    ))
    docker_hub = DockerHubRemote("kiosk-docker-hub", DockerHubRemoteArgs(
        project=gke.project,
        location=gke.region,
        repository_id=f"kiosk-{cfg.stack}-docker-hub".lower(),
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

    def scrape_metrics(namespace: pulumi.Input[str], endpoints: Sequence[MetricsEndpoint]) -> object:
        return ManagedPrometheusScrapes("kiosk-metrics", ManagedPrometheusScrapesArgs(
            provider=cluster.info.provider, namespace=namespace, endpoints=tuple(endpoints),
        ))

    def ingress_config(namespace: pulumi.Input[str]) -> pulumi.Resource | None:
        # With a domain the portal serves HTTPS, and plain HTTP redirects to it.
        return https_redirect("kiosk-https-redirect", cluster.info.provider, namespace) if cfg.domain else None

    def publish_portal(_ingress_address: pulumi.Output[str]) -> PublishedPortal:
        # The Ingress gets the reserved IP; the bucket's CORS already names the URL.
        return PublishedPortal(url=portal.url, address=portal.address.address)

    if cfg.budget is not None:
        ProjectBudget("kiosk-budget", ProjectBudgetArgs(project=gke.project, budget=cfg.budget))
    return Platform(
        cluster=cluster.info,
        bucket_name=bucket.name,
        storage_url=bucket.url,
        models_uri=bucket.models_uri,
        model_sync=None,
        registry=registry.login,
        portal_url=portal.url,
        portal_host=portal.host,
        ingress_class_name=None,
        ingress_annotations=portal.ingress_annotations,
        service_annotations=portal.service_annotations,
        ingress_controller=None,
        managed_redis=managed_redis,
        service_accounts=service_accounts,
        workload_env={},
        publish_portal=publish_portal,
        scrape_metrics=scrape_metrics if cluster.managed_prometheus else None,
        image_mirror=docker_hub.mirror,
        ingress_config=ingress_config,
    )


def aws_platform(cfg: KioskConfig) -> Platform:
    eks = cfg.eks
    if eks is None:
        raise ValueError("cloud aws needs the EKS settings")
    # Cluster, IAM and ECR names are per stack, as GKE's account ids are.
    prefix = account_id_prefix(cfg.stack)
    network = Vpc("kiosk", VpcArgs(
        region=eks.region,
        availability_zones=eks.availability_zones,
        cidr=eks.vpc_cidr,
        nat_gateway_per_zone=eks.nat_gateway_per_zone,
    ))
    cluster = EksCluster("kiosk", EksClusterArgs(
        cluster_name=prefix,
        region=eks.region,
        subnet_ids_by_zone={zone: subnet.id for zone, subnet in network.private_subnet_by_zone.items()},
        kubernetes_version=cfg.kubernetes_version,
        public_access_cidrs=eks.master_authorized_cidrs,
        admin_principals=eks.cluster_admin_principals,
        log_retention_days=eks.control_plane_log_retention_days,
        deletion_protection=cfg.deletion_protection,
        system_group=SystemGroupSpec(instance_type=eks.system_instance_type, node_count=eks.system_node_count),
        cpu_group=CpuGroupSpec(instance_types=eks.cpu_instance_types, max_nodes=eks.cpu_max_nodes, spot=eks.cpu_spot),
        gpu_group=GpuGroupSpec(
            instance_type=eks.gpu_instance_type,
            accelerator=eks.gpu_type,
            gpus_per_node=eks.gpus_per_node,
            max_nodes=eks.gpu_max_nodes,
            spot=eks.gpu_spot,
            zones=eks.gpu_zones,
        ),
    ))
    info = cluster.info
    ci_runner = CiRunnerAccess("kiosk-ci-runner", CiRunnerAccessArgs(
        vpc_id=network.vpc.id,
        cluster_security_group_id=cluster.security_group_id,
        subnet_ids=network.private_subnet_ids,
    ))
    pod_identity_agent = [cluster.addons["eks-pod-identity-agent"]]
    ClusterAutoscaler("cluster-autoscaler", ClusterAutoscalerArgs(
        provider=info.provider,
        cluster_name=cluster.name,
        region=eks.region,
        node_group_arns=[g.node_group.arn for g in cluster.node_groups],
        chart_version=eks.cluster_autoscaler_chart_version,
        image_tag=eks.cluster_autoscaler_image_tag,
        node_selector=info.system_node_labels,
        depends_on=pod_identity_agent,
    ))
    GpuDevicePlugin("nvidia-device-plugin", GpuDevicePluginArgs(
        provider=info.provider,
        gpu_node_labels=info.gpu_node_labels,
        gpu_taints=info.gpu_taints,
        chart_version=eks.nvidia_device_plugin_chart_version,
    ))
    load_balancers = LoadBalancerController("aws-load-balancer-controller", LoadBalancerControllerArgs(
        provider=info.provider,
        cluster_name=cluster.name,
        region=eks.region,
        vpc_id=network.vpc.id,
        chart_version=eks.load_balancer_controller_chart_version,
        node_selector=info.system_node_labels,
        depends_on=pod_identity_agent,
    ))
    bucket = S3Bucket("kiosk-data", S3BucketArgs(
        uploads_expire_days=cfg.uploads_expire_days,
        output_expire_days=cfg.output_expire_days,
        force_destroy=cfg.bucket_force_destroy,
        protect=cfg.deletion_protection,
    ))
    S3ModelObjects("kiosk-models", S3ModelObjectsArgs(bucket=bucket.name, files=repository_model_files(cfg)))
    registry = EcrRegistry("kiosk-images", EcrRegistryArgs(
        namespace=prefix,
        image_names=tuple(IMAGES),
        force_delete=cfg.bucket_force_destroy,
        protect=cfg.deletion_protection,
    ))
    portal = AlbPortal("kiosk-portal", AlbPortalArgs(
        health_check_path=HEALTH_PATH, domain=cfg.domain, zone_id=eks.route53_zone_id,
    ))
    image_mirror = None
    if eks.docker_hub_credential_arn is not None:
        image_mirror = DockerHubCache("kiosk-docker-hub", DockerHubCacheArgs(
            region=eks.region,
            prefix=f"{prefix}-docker-hub",
            credential_arn=eks.docker_hub_credential_arn,
            puller_role_names=(cluster.node_role.name,),
        )).mirror
    model_sync = s3_model_sync(bucket.name, eks.region, eks.model_sync_image, eks.model_sync_interval_seconds)

    def service_accounts(namespace: pulumi.Input[str]) -> WorkloadServiceAccounts:
        return EksPodIdentity("kiosk-identity", EksPodIdentityArgs(
            provider=info.provider,
            cluster_name=cluster.name,
            namespace=namespace,
            bucket_arn=bucket.arn,
        )).service_accounts

    def publish_portal(ingress_address: pulumi.Output[str]) -> PublishedPortal:
        url = portal.url if portal.url is not None else ingress_address.apply(lambda a: f"http://{a}")
        if cfg.domain is not None and eks.route53_zone_id is not None:
            PortalDnsRecord("kiosk-portal-dns", PortalDnsRecordArgs(
                zone_id=eks.route53_zone_id, domain=cfg.domain, load_balancer_hostname=ingress_address,
            ))
        BucketCors("kiosk-data-cors", BucketCorsArgs(bucket=bucket.name, origins=(url, *cfg.cors_origins)))
        return PublishedPortal(url=url, address=ingress_address)

    if cfg.budget is not None:
        AccountBudget("kiosk-budget", AccountBudgetArgs(name=f"kiosk-{cfg.stack}", budget=cfg.budget))
    return Platform(
        cluster=info,
        bucket_name=bucket.name,
        storage_url=bucket.url,
        models_uri=model_sync.local_dir,
        model_sync=model_sync,
        registry=registry.login,
        portal_url=portal.url,
        portal_host=portal.host,
        ingress_class_name=load_balancers.ingress_class,
        ingress_annotations=portal.ingress_annotations,
        service_annotations=portal.service_annotations,
        ingress_controller=load_balancers.release,
        managed_redis=None,
        service_accounts=service_accounts,
        # Pod Identity, unlike IRSA, sets no region: without one, s3fs would
        # sign download URLs for us-east-1 whatever the bucket's region.
        workload_env={"AWS_REGION": eks.region, "AWS_DEFAULT_REGION": eks.region},
        publish_portal=publish_portal,
        scrape_metrics=None,
        image_mirror=image_mirror,
        outputs={"ciRunnerSecurityGroup": ci_runner.security_group_id, "ciRunnerSubnets": ci_runner.subnet_ids},
    )


PLATFORMS: dict[str, Callable[[KioskConfig], Platform]] = {"gcp": gcp_platform, "aws": aws_platform}
