"""Private, VPC-native GKE cluster with a system, a CPU and a GPU node pool."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.shapes import ClusterInfo, Taint, cluster_identifier, exec_kubeconfig, opens_to_everyone

POOL_LABEL = "kiosk.dev/pool"
GPU_TAINT = Taint(key="nvidia.com/gpu", value="present", effect="NoSchedule")
# Only the consumers tolerate it: a kube-system pod on a CPU node would keep
# the autoscaler from ever removing that node (kubernetes/autoscaler#2377).
CPU_TAINT = Taint(key=POOL_LABEL, value="cpu", effect="NoSchedule")
RELEASE_CHANNELS = ("RAPID", "REGULAR", "STABLE", "EXTENDED")
GPU_DRIVER_VERSIONS = ("DEFAULT", "LATEST", "INSTALLATION_DISABLED")
NODE_ROLES = ("roles/container.defaultNodeServiceAccount",)
# GKE Managed Service for Prometheus runs its collectors here.
GMP_NAMESPACE = "gmp-system"


@dataclass(frozen=True)
class SystemPoolSpec:
    """Always-on, on-demand nodes for Redis, frontend, KEDA and kube-system."""

    machine_type: str = "e2-standard-4"
    node_count: int = 1


@dataclass(frozen=True)
class CpuPoolSpec:
    """Consumer nodes: autoscaled from zero, Spot by default."""

    machine_type: str = "e2-standard-4"
    max_nodes: int = 3
    spot: bool = True


@dataclass(frozen=True)
class GpuPoolSpec:
    """TF-Serving nodes: autoscaled from zero, tainted, GKE-installed drivers."""

    machine_type: str = "g2-standard-8"
    accelerator_type: str = "nvidia-l4"
    accelerators_per_node: int = 1
    max_nodes: int = 1
    spot: bool = True
    driver_version: str = "DEFAULT"
    zones: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class GkeClusterArgs:
    project: str
    location: str
    network: pulumi.Input[str]
    subnetwork: pulumi.Input[str]
    master_cidr: str
    # Short, project-unique prefix for service account ids (6-30 chars in all).
    account_id_prefix: str
    node_tag: str = "kiosk-node"
    pods_range_name: str = "pods"
    services_range_name: str = "services"
    kubernetes_version: str = "1.35"
    release_channel: str = "REGULAR"
    master_authorized_cidrs: Sequence[str] = field(default_factory=tuple)
    dns_endpoint: bool = True
    deletion_protection: bool = False
    # Managed Service for Prometheus: collectors in gmp-system scrape what
    # PodMonitoring objects name (their CRD comes with it).
    managed_prometheus: bool = True
    system_pool: SystemPoolSpec = field(default_factory=SystemPoolSpec)
    cpu_pool: CpuPoolSpec = field(default_factory=CpuPoolSpec)
    gpu_pool: GpuPoolSpec = field(default_factory=GpuPoolSpec)


def _validate(name: str, args: GkeClusterArgs) -> None:
    if args.release_channel not in RELEASE_CHANNELS:
        raise ValueError(f"GkeCluster {name}: release_channel must be one of {RELEASE_CHANNELS}")
    if args.gpu_pool.driver_version not in GPU_DRIVER_VERSIONS:
        raise ValueError(f"GkeCluster {name}: gpu driver_version must be one of {GPU_DRIVER_VERSIONS}")
    for cidr in args.master_authorized_cidrs:
        if opens_to_everyone(cidr):
            raise ValueError(f"GkeCluster {name}: master authorized network {cidr} would open the control plane")
    if not args.dns_endpoint and not args.master_authorized_cidrs:
        raise ValueError(f"GkeCluster {name}: without the DNS endpoint, list master_authorized_cidrs")
    if args.system_pool.node_count < 1:
        raise ValueError(f"GkeCluster {name}: the system pool needs at least one node")
    if args.cpu_pool.max_nodes < 1 or args.gpu_pool.max_nodes < 1:
        raise ValueError(f"GkeCluster {name}: CPU and GPU pools need max_nodes >= 1")
    if args.gpu_pool.accelerators_per_node < 1:
        raise ValueError(f"GkeCluster {name}: accelerators_per_node must be >= 1")
    if not 1 <= len(args.account_id_prefix) <= 23:
        raise ValueError(f"GkeCluster {name}: account_id_prefix must be 1-23 characters")


def _kubeconfig(cluster_name: str, server: str, ca: str | None) -> str:
    """A kubeconfig that authenticates with gke-gcloud-auth-plugin."""
    return exec_kubeconfig(cluster_name, server, ca, {
        "command": "gke-gcloud-auth-plugin",
        "installHint": "Install gke-gcloud-auth-plugin: gcloud components install gke-gcloud-auth-plugin",
        "provideClusterInfo": True,
    })


class GkeCluster(pulumi.ComponentResource):
    """GKE cluster exposing the shared `ClusterInfo` shape as `.info`."""

    cluster: gcp.container.Cluster
    info: ClusterInfo

    def __init__(self, name: str, args: GkeClusterArgs, opts: pulumi.ResourceOptions | None = None):
        _validate(name, args)
        super().__init__("kiosk:gcp:GkeCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Nodes run as a dedicated least-privilege identity, not the Compute
        # Engine default service account (which has Editor on the project).
        node_sa = gcp.serviceaccount.Account(
            f"{name}-nodes",
            account_id=f"{args.account_id_prefix}-nodes",
            display_name=f"GKE nodes of {name}",
            project=args.project,
            opts=child,
        )
        self.node_service_account_member = node_sa.email.apply(lambda e: f"serviceAccount:{e}")
        for role in NODE_ROLES:
            gcp.projects.IAMMember(
                f"{name}-nodes-{role.split('/')[-1]}",
                project=args.project,
                role=role,
                member=self.node_service_account_member,
                opts=child,
            )

        endpoints = None
        if args.dns_endpoint:
            endpoints = gcp.container.ClusterControlPlaneEndpointsConfigArgs(
                dns_endpoint_config=gcp.container.ClusterControlPlaneEndpointsConfigDnsEndpointConfigArgs(
                    allow_external_traffic=True,
                ),
            )
        self.cluster = gcp.container.Cluster(
            name,
            project=args.project,
            location=args.location,
            network=args.network,
            subnetwork=args.subnetwork,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
                cluster_secondary_range_name=args.pods_range_name,
                services_secondary_range_name=args.services_range_name,
            ),
            # No default pool: every pool below is declared with its own
            # identity, labels and autoscaling. GKE needs one node to create the
            # cluster, which it deletes straight away.
            remove_default_node_pool=True,
            initial_node_count=1,
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel=args.release_channel),
            min_master_version=args.kubernetes_version,
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(
                workload_pool=f"{args.project}.svc.id.goog",
            ),
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=True,
                enable_private_endpoint=False,
                master_ipv4_cidr_block=args.master_cidr,
            ),
            # Always set: an absent block would leave the public IP endpoint
            # open to every address. An empty list admits no public network.
            master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                cidr_blocks=[
                    gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(
                        cidr_block=cidr, display_name=f"authorized-{i}",
                    )
                    for i, cidr in enumerate(args.master_authorized_cidrs)
                ],
                gcp_public_cidrs_access_enabled=False,
            ),
            control_plane_endpoints_config=endpoints,
            # Dataplane V2 enforces the kiosk's NetworkPolicies.
            datapath_provider="ADVANCED_DATAPATH",
            monitoring_config=gcp.container.ClusterMonitoringConfigArgs(
                enable_components=["SYSTEM_COMPONENTS"],
                managed_prometheus=gcp.container.ClusterMonitoringConfigManagedPrometheusArgs(
                    enabled=args.managed_prometheus,
                ),
            ),
            addons_config=gcp.container.ClusterAddonsConfigArgs(
                http_load_balancing=gcp.container.ClusterAddonsConfigHttpLoadBalancingArgs(disabled=False),
                gce_persistent_disk_csi_driver_config=gcp.container.ClusterAddonsConfigGcePersistentDiskCsiDriverConfigArgs(
                    enabled=True,
                ),
            ),
            node_config=gcp.container.ClusterNodeConfigArgs(
                service_account=node_sa.email,
                workload_metadata_config=gcp.container.ClusterNodeConfigWorkloadMetadataConfigArgs(mode="GKE_METADATA"),
            ),
            deletion_protection=args.deletion_protection,
            # node_config only shapes the default pool, which GKE deletes at
            # once: the provider then reads it back empty, and every later
            # `up` would plan a replacement of the cluster (it forces a new
            # resource; Google's own GKE module ignores it too). A real
            # replacement deletes first: two clusters cannot hold one master
            # CIDR in one VPC.
            # `protect` with deletion protection: `destroy` stops at its
            # preview instead of deleting workloads and node pools first.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["nodeConfig"], delete_before_replace=True,
                                        protect=args.deletion_protection),
        )

        def node_config(machine_type: str, pool: str, spot: bool, **extra) -> gcp.container.NodePoolNodeConfigArgs:
            return gcp.container.NodePoolNodeConfigArgs(
                machine_type=machine_type,
                spot=spot,
                service_account=node_sa.email,
                oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
                labels={POOL_LABEL: pool},
                tags=[args.node_tag],
                workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(mode="GKE_METADATA"),
                shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True,
                ),
                **extra,
            )

        management = gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True)
        self.system_pool = gcp.container.NodePool(
            f"{name}-system",
            cluster=self.cluster.id,
            location=args.location,
            node_count=args.system_pool.node_count,
            node_config=node_config(args.system_pool.machine_type, "system", spot=False),
            management=management,
            opts=child,
        )
        self.cpu_pool = gcp.container.NodePool(
            f"{name}-cpu",
            cluster=self.cluster.id,
            location=args.location,
            initial_node_count=0,
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=0,
                total_max_node_count=args.cpu_pool.max_nodes,
                location_policy="ANY" if args.cpu_pool.spot else "BALANCED",
            ),
            node_config=node_config(args.cpu_pool.machine_type, "cpu", spot=args.cpu_pool.spot, taints=[
                gcp.container.NodePoolNodeConfigTaintArgs(key=CPU_TAINT.key, value=CPU_TAINT.value,
                                                         effect="NO_SCHEDULE"),
            ]),
            management=management,
            opts=child,
        )
        gpu = args.gpu_pool
        self.gpu_pool = gcp.container.NodePool(
            f"{name}-gpu",
            cluster=self.cluster.id,
            location=args.location,
            node_locations=list(gpu.zones) if gpu.zones else None,
            initial_node_count=0,
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=0,
                total_max_node_count=gpu.max_nodes,
                location_policy="ANY",
            ),
            node_config=node_config(
                gpu.machine_type,
                "gpu",
                spot=gpu.spot,
                guest_accelerators=[gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
                    type=gpu.accelerator_type,
                    count=gpu.accelerators_per_node,
                    gpu_driver_installation_config=gcp.container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs(
                        gpu_driver_version=gpu.driver_version,
                    ),
                )],
                # GKE adds this taint to GPU pools by itself; declaring it keeps
                # the intent visible and the policy pack able to check it.
                taints=[gcp.container.NodePoolNodeConfigTaintArgs(
                    key=GPU_TAINT.key, value=GPU_TAINT.value, effect="NO_SCHEDULE",
                )],
            ),
            management=management,
            opts=child,
        )

        if args.dns_endpoint:
            server = self.cluster.control_plane_endpoints_config.apply(
                lambda c: f"https://{c.dns_endpoint_config.endpoint}"
            )
            ca: pulumi.Output[str | None] = pulumi.Output.from_input(None)
        else:
            server = self.cluster.endpoint.apply(lambda e: f"https://{e}")
            ca = self.cluster.master_auth.cluster_ca_certificate
        # Only the cluster's own facts: a kubeconfig that changed (or went
        # unknown in a preview) whenever a node pool does would make
        # pulumi-kubernetes see a new cluster and replace every object.
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(self.cluster.name, server, ca).apply(lambda v: _kubeconfig(v[0], v[1], v[2]))
        )
        # Mutable ConfigMaps: a new model list is patched in place and
        # TF-Serving rereads it, instead of a replace that drops the file.
        # The provider waits for the system pool, so nothing is deployed
        # before there is a node to run it.
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            cluster_identifier=cluster_identifier(self.cluster.name, self.cluster.master_auth.cluster_ca_certificate),
            enable_config_map_mutable=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.system_pool]),
        )
        self.info = ClusterInfo(
            provider=provider,
            kubeconfig=self.kubeconfig,
            kubernetes_version=args.kubernetes_version,
            system_node_labels={POOL_LABEL: "system"},
            worker_node_labels={POOL_LABEL: "cpu"},
            worker_taints=(CPU_TAINT,),
            gpu_node_labels={POOL_LABEL: "gpu"},
            gpu_taints=(GPU_TAINT,),
            metrics_namespaces=(GMP_NAMESPACE,) if args.managed_prometheus else (),
        )
        self.managed_prometheus = args.managed_prometheus
        self.register_outputs({
            "name": self.cluster.name,
            "endpoint": server,
            "kubeconfig": self.kubeconfig,
            "gpuPool": self.gpu_pool.name,
        })
