"""The one typed config object of the program.

Every default lives in the `config:` schema of Pulumi.yaml; the CLI merges it
into the stack's config before the program runs. This module therefore reads
each key with `require*()` and never supplies a fallback (a `get(x) or default`
would also swallow 0 and False). Keys that are optional default to "" or []
in the schema and become None here, explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.aws.eks import LOG_RETENTION_DAYS
from components.budget import MonthlyBudget
from components.shapes import opens_to_everyone

CLOUDS = ("gcp", "aws")
REDIS_MODES = ("in-cluster", "memorystore")


@dataclass(frozen=True)
class ModelSpec:
    """A model served by TF-Serving from <bucket>/models/<name>/<version>/."""

    name: str
    versions: tuple[int, ...]

    @staticmethod
    def parse(text: str) -> "ModelSpec":
        """Parse "Name:1,2"."""
        name, sep, versions = text.partition(":")
        if not sep or not name.strip() or not versions.strip():
            raise ValueError(f"model {text!r} must look like 'Name:1[,2...]'")
        try:
            numbers = tuple(int(v) for v in versions.split(","))
        except ValueError as exc:
            raise ValueError(f"model {text!r}: versions must be integers") from exc
        if any(v < 1 for v in numbers):
            raise ValueError(f"model {text!r}: versions start at 1")
        return ModelSpec(name.strip(), numbers)


@dataclass(frozen=True)
class NodePoolSettings:
    """What both families size alike: who reaches the control plane, and the
    system, consumer CPU and GPU node pools (GKE) or node groups (EKS)."""

    master_authorized_cidrs: tuple[str, ...]
    system_node_count: int
    cpu_max_nodes: int
    cpu_spot: bool
    gpu_type: str
    gpus_per_node: int
    max_gpus: int
    gpu_spot: bool
    gpu_zones: tuple[str, ...]

    @property
    def gpu_max_nodes(self) -> int:
        """Whole GPU nodes that fit under max_gpus."""
        return self.max_gpus // self.gpus_per_node


@dataclass(frozen=True)
class GkeSettings(NodePoolSettings):
    """Cluster, network and node pools of the GCP family."""

    project: str
    region: str
    location: str
    release_channel: str
    dns_endpoint: bool
    subnet_cidr: str
    pods_cidr: str
    services_cidr: str
    master_cidr: str
    system_machine_type: str
    cpu_machine_type: str
    gpu_machine_type: str
    gpu_driver_version: str
    memorystore_tier: str
    memorystore_memory_gb: int


@dataclass(frozen=True)
class EksSettings(NodePoolSettings):
    """VPC, cluster, node groups and add-ons of the AWS family."""

    region: str
    availability_zones: tuple[str, ...]
    vpc_cidr: str
    nat_gateway_per_zone: bool
    cluster_admin_principals: tuple[str, ...]
    system_instance_type: str
    cpu_instance_types: tuple[str, ...]
    gpu_instance_type: str
    route53_zone_id: str | None
    cluster_autoscaler_chart_version: str
    cluster_autoscaler_image_tag: str
    nvidia_device_plugin_chart_version: str
    load_balancer_controller_chart_version: str
    model_sync_image: str
    model_sync_interval_seconds: int
    control_plane_log_retention_days: int
    docker_hub_credential_arn: str | None


@dataclass(frozen=True)
class KioskConfig:
    """Everything the program needs, typed and validated."""

    stack: str
    cloud: str
    namespace: str
    keda_namespace: str
    kubernetes_version: str
    deletion_protection: bool
    job_types: tuple[str, ...]
    models: tuple[ModelSpec, ...]
    max_batch_size: int
    batch_timeout_micros: int
    lease_seconds: int
    shutdown_grace_seconds: int
    job_ttl_seconds: int
    uploads_expire_days: int
    output_expire_days: int
    cors_origins: tuple[str, ...]
    bucket_force_destroy: bool
    build_images_on_preview: bool
    image_platform: str
    image_tag: str
    redis_mode: str
    redis_image: str
    redis_storage_gi: int
    redis_memory_mi: int
    keda_chart_version: str
    consumer_max_replicas: int
    consumer_jobs_per_replica: int
    consumer_cpu: str
    consumer_memory: str
    max_image_pixels: int
    tf_serving_image: str
    tf_serving_jobs_per_replica: int
    tf_serving_cooldown_seconds: int
    gpus_per_replica: int
    frontend_replicas: int
    domain: str | None
    auth_enabled: bool
    gke: GkeSettings | None
    eks: EksSettings | None = None
    budget: MonthlyBudget | None = None

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def pools(self) -> NodePoolSettings:
        """The node pool settings of the stack's cloud."""
        pools = self.gke if self.gke is not None else self.eks
        if pools is None:
            raise ValueError(f"cloud {self.cloud!r} has no node pool settings")
        return pools

    @property
    def max_gpus(self) -> int:
        """GPU ceiling of the stack, whatever the cloud."""
        return self.pools.max_gpus

    @property
    def tf_serving_max_replicas(self) -> int:
        """TF-Serving pods that fit on the GPU ceiling."""
        return self.max_gpus // self.gpus_per_replica


def _validate(cfg: KioskConfig) -> None:
    if cfg.cloud not in CLOUDS:
        raise ValueError(f"kiosk:cloud must be one of {CLOUDS}, got {cfg.cloud!r}")
    if cfg.redis_mode not in REDIS_MODES:
        raise ValueError(f"kiosk:redisMode must be one of {REDIS_MODES}, got {cfg.redis_mode!r}")
    if not cfg.job_types:
        raise ValueError("kiosk:jobTypes needs at least one job type")
    if not cfg.models:
        raise ValueError("kiosk:models needs at least one model")
    for key, value in (
        ("maxBatchSize", cfg.max_batch_size),
        ("leaseSeconds", cfg.lease_seconds),
        ("shutdownGraceSeconds", cfg.shutdown_grace_seconds),
        ("uploadsExpireDays", cfg.uploads_expire_days),
        ("outputExpireDays", cfg.output_expire_days),
        ("gpusPerReplica", cfg.gpus_per_replica),
        ("consumerMaxReplicas", cfg.consumer_max_replicas),
        ("frontendReplicas", cfg.frontend_replicas),
    ):
        if value < 1:
            raise ValueError(f"kiosk:{key} must be at least 1, got {value}")
    if cfg.gke is not None:
        _validate_pools(cfg, cfg.gke)
        if not cfg.gke.dns_endpoint and not cfg.gke.master_authorized_cidrs:
            raise ValueError(
                "with kiosk:dnsEndpoint false, kiosk:masterAuthorizedCidrs must list the networks that run pulumi"
            )
    if cfg.eks is not None:
        _validate_pools(cfg, cfg.eks)
        _validate_eks(cfg, cfg.eks)


def _validate_pools(cfg: KioskConfig, pools: NodePoolSettings) -> None:
    if pools.max_gpus < pools.gpus_per_node or pools.max_gpus % pools.gpus_per_node:
        raise ValueError(
            f"kiosk:maxGpus ({pools.max_gpus}) must be a positive multiple of "
            f"kiosk:gpusPerNode ({pools.gpus_per_node})"
        )
    if cfg.gpus_per_replica > pools.gpus_per_node:
        raise ValueError("kiosk:gpusPerReplica cannot exceed kiosk:gpusPerNode")
    for cidr in pools.master_authorized_cidrs:
        if opens_to_everyone(cidr):
            raise ValueError(f"kiosk:masterAuthorizedCidrs must never open the control plane to {cidr}")


def _validate_eks(cfg: KioskConfig, eks: EksSettings) -> None:
    if len(set(eks.availability_zones)) < 2:
        raise ValueError(
            "with kiosk:cloud aws, kiosk:availabilityZones must list at least two zones of aws:region "
            f"(EKS needs subnets in two), got {list(eks.availability_zones)}"
        )
    stray = [z for z in eks.gpu_zones if z not in eks.availability_zones]
    if stray:
        raise ValueError(f"kiosk:gpuZones {stray} are not among kiosk:availabilityZones")
    if not eks.cpu_instance_types:
        raise ValueError("kiosk:cpuInstanceTypes needs at least one instance type")
    if cfg.redis_mode != "in-cluster":
        raise ValueError("with kiosk:cloud aws, kiosk:redisMode must be in-cluster (memorystore is GKE's)")
    if cfg.domain is not None and eks.route53_zone_id is None:
        raise ValueError(
            "with kiosk:cloud aws, kiosk:domain needs kiosk:route53ZoneId: the stack validates the ACM "
            "certificate and points the domain at the load balancer in that hosted zone"
        )
    # The autoscaler's minor version must match the cluster's
    # (https://github.com/kubernetes/autoscaler/tree/master/cluster-autoscaler#releases).
    minor = ".".join(eks.cluster_autoscaler_image_tag.lstrip("v").split(".")[:2])
    if minor != cfg.kubernetes_version:
        raise ValueError(
            f"kiosk:clusterAutoscalerImageTag {eks.cluster_autoscaler_image_tag} does not match "
            f"kiosk:kubernetesVersion {cfg.kubernetes_version}"
        )
    if eks.model_sync_interval_seconds < 10:
        raise ValueError("kiosk:modelSyncIntervalSeconds must be at least 10")
    if eks.control_plane_log_retention_days not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"kiosk:controlPlaneLogRetentionDays must be one of CloudWatch's retention values "
            f"{LOG_RETENTION_DAYS}, got {eks.control_plane_log_retention_days}"
        )


def _strings(cfg: pulumi.Config, key: str) -> tuple[str, ...]:
    value: Any = cfg.require_object(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"kiosk:{key} must be a list of strings, got {value!r}")
    return tuple(value)


def _optional(text: str) -> str | None:
    return text if text != "" else None


def _pool_settings(cfg: pulumi.Config) -> dict[str, Any]:
    """The NodePoolSettings fields, read the same way for both families."""
    return {
        "master_authorized_cidrs": _strings(cfg, "masterAuthorizedCidrs"),
        "system_node_count": cfg.require_int("systemNodeCount"),
        "cpu_max_nodes": cfg.require_int("cpuMaxNodes"),
        "cpu_spot": cfg.require_bool("cpuSpot"),
        "gpu_type": cfg.require("gpuType"),
        "gpus_per_node": cfg.require_int("gpusPerNode"),
        "max_gpus": cfg.require_int("maxGpus"),
        "gpu_spot": cfg.require_bool("gpuSpot"),
        "gpu_zones": _strings(cfg, "gpuZones"),
    }


def _gke_settings(cfg: pulumi.Config) -> GkeSettings:
    gcp = pulumi.Config("gcp")
    region = gcp.require("region")
    zone = _optional(cfg.require("clusterLocation"))
    location = region if zone is None else zone
    return GkeSettings(
        **_pool_settings(cfg),
        project=gcp.require("project"),
        region=region,
        location=location,
        release_channel=cfg.require("releaseChannel"),
        dns_endpoint=cfg.require_bool("dnsEndpoint"),
        subnet_cidr=cfg.require("subnetCidr"),
        pods_cidr=cfg.require("podsCidr"),
        services_cidr=cfg.require("servicesCidr"),
        master_cidr=cfg.require("masterCidr"),
        system_machine_type=cfg.require("systemMachineType"),
        cpu_machine_type=cfg.require("cpuMachineType"),
        gpu_machine_type=cfg.require("gpuMachineType"),
        gpu_driver_version=cfg.require("gpuDriverVersion"),
        memorystore_tier=cfg.require("memorystoreTier"),
        memorystore_memory_gb=cfg.require_int("memorystoreMemoryGb"),
    )


def _eks_settings(cfg: pulumi.Config) -> EksSettings:
    return EksSettings(
        **_pool_settings(cfg),
        region=pulumi.Config("aws").require("region"),
        availability_zones=_strings(cfg, "availabilityZones"),
        vpc_cidr=cfg.require("vpcCidr"),
        nat_gateway_per_zone=cfg.require_bool("natGatewayPerZone"),
        cluster_admin_principals=_strings(cfg, "clusterAdminPrincipals"),
        system_instance_type=cfg.require("systemInstanceType"),
        cpu_instance_types=_strings(cfg, "cpuInstanceTypes"),
        gpu_instance_type=cfg.require("gpuInstanceType"),
        route53_zone_id=_optional(cfg.require("route53ZoneId")),
        cluster_autoscaler_chart_version=cfg.require("clusterAutoscalerChartVersion"),
        cluster_autoscaler_image_tag=cfg.require("clusterAutoscalerImageTag"),
        nvidia_device_plugin_chart_version=cfg.require("nvidiaDevicePluginChartVersion"),
        load_balancer_controller_chart_version=cfg.require("loadBalancerControllerChartVersion"),
        model_sync_image=cfg.require("modelSyncImage"),
        model_sync_interval_seconds=cfg.require_int("modelSyncIntervalSeconds"),
        control_plane_log_retention_days=cfg.require_int("controlPlaneLogRetentionDays"),
        docker_hub_credential_arn=_optional(cfg.require("dockerHubCredentialArn")),
    )


def _budget(cfg: pulumi.Config, cloud: str) -> MonthlyBudget | None:
    amount = cfg.require_int("monthlyBudget")
    if amount == 0:
        return None
    account = _optional(cfg.require("billingAccount"))
    if cloud == "gcp" and account is None:
        raise ValueError("kiosk:monthlyBudget on GCP needs kiosk:billingAccount (the budget lives in it)")
    return MonthlyBudget(amount, tuple(cfg.require_object("budgetAlertEmails")),
                         tuple(cfg.require_object("budgetAlertThresholds")), billing_account=account)


def load() -> KioskConfig:
    """Read the stack's config (defaults already merged by the CLI)."""
    cfg = pulumi.Config("kiosk")
    cloud = cfg.require("cloud")
    return KioskConfig(
        stack=pulumi.get_stack(),
        cloud=cloud,
        namespace=cfg.require("namespace"),
        keda_namespace=cfg.require("kedaNamespace"),
        kubernetes_version=cfg.require("kubernetesVersion"),
        deletion_protection=cfg.require_bool("deletionProtection"),
        job_types=_strings(cfg, "jobTypes"),
        models=tuple(ModelSpec.parse(m) for m in _strings(cfg, "models")),
        max_batch_size=cfg.require_int("maxBatchSize"),
        batch_timeout_micros=cfg.require_int("batchTimeoutMicros"),
        lease_seconds=cfg.require_int("leaseSeconds"),
        shutdown_grace_seconds=cfg.require_int("shutdownGraceSeconds"),
        job_ttl_seconds=cfg.require_int("jobTtlSeconds"),
        uploads_expire_days=cfg.require_int("uploadsExpireDays"),
        output_expire_days=cfg.require_int("outputExpireDays"),
        cors_origins=_strings(cfg, "corsOrigins"),
        bucket_force_destroy=cfg.require_bool("bucketForceDestroy"),
        build_images_on_preview=cfg.require_bool("buildImagesOnPreview"),
        image_platform=cfg.require("imagePlatform"),
        image_tag=cfg.require("imageTag"),
        redis_mode=cfg.require("redisMode"),
        redis_image=cfg.require("redisImage"),
        redis_storage_gi=cfg.require_int("redisStorageGi"),
        redis_memory_mi=cfg.require_int("redisMemoryMi"),
        keda_chart_version=cfg.require("kedaChartVersion"),
        consumer_max_replicas=cfg.require_int("consumerMaxReplicas"),
        consumer_jobs_per_replica=cfg.require_int("consumerJobsPerReplica"),
        consumer_cpu=cfg.require("consumerCpu"),
        consumer_memory=cfg.require("consumerMemory"),
        max_image_pixels=cfg.require_int("maxImagePixels"),
        tf_serving_image=cfg.require("tfServingImage"),
        tf_serving_jobs_per_replica=cfg.require_int("tfServingJobsPerReplica"),
        tf_serving_cooldown_seconds=cfg.require_int("tfServingCooldownSeconds"),
        gpus_per_replica=cfg.require_int("gpusPerReplica"),
        frontend_replicas=cfg.require_int("frontendReplicas"),
        domain=_optional(cfg.require("domain")),
        auth_enabled=cfg.require_bool("authEnabled"),
        gke=_gke_settings(cfg) if cloud == "gcp" else None,
        eks=_eks_settings(cfg) if cloud == "aws" else None,
        budget=_budget(cfg, cloud),
    )
