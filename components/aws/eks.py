"""EKS cluster with a system, a consumer CPU and a GPU managed node group."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws.node_group import ManagedNodeGroup, ManagedNodeGroupArgs, NodeGroupSpec
from components.aws.pod_identity import PodIdentityRole, PodIdentityRoleArgs
from components.aws.policies import assume_role_trust
from components.shapes import GPU_RESOURCE, ClusterInfo, Taint, cluster_identifier, exec_kubeconfig, opens_to_everyone

POOL_LABEL = "kiosk.dev/pool"
GPU_TAINT = Taint(key="nvidia.com/gpu", value="present", effect="NoSchedule")
# The cluster autoscaler's AWS provider recognises GPU nodes by this label and
# waits for their GPUs to become allocatable instead of adding more nodes.
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
MANAGED = "arn:aws:iam::aws:policy"
CLUSTER_POLICIES = (f"{MANAGED}/AmazonEKSClusterPolicy",)
NODE_POLICIES = (
    f"{MANAGED}/AmazonEKSWorkerNodePolicy",
    f"{MANAGED}/AmazonEKS_CNI_Policy",
    f"{MANAGED}/AmazonEC2ContainerRegistryPullOnly",
)
EBS_CSI_POLICY = f"{MANAGED}/service-role/AmazonEBSCSIDriverPolicy"
ADMIN_ACCESS_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
STORAGE_CLASS = "kiosk-gp3"
CLUSTER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,99}$")
IAM_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/.+$")
# What CloudWatch Logs accepts as retentionInDays (0, "never expire", is left out on purpose).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                      2557, 2922, 3288, 3653)
CONTROL_PLANE_LOG_TYPES = ("audit", "authenticator")


def control_plane_log_group_name(cluster_name: str) -> str:
    """The log group EKS writes control-plane logs to (it creates it, without
    an expiry, when it does not exist)."""
    return f"/aws/eks/{cluster_name}/cluster"


def system_subnets(subnet_ids: Sequence[pulumi.Input[str]], node_count: int) -> list[pulumi.Input[str]]:
    """Subnets of the system group: no more zones than nodes.

    Redis' EBS volume lives in one zone. A group of fewer nodes than zones
    (dev: one node, two zones) may replace its node in another zone, where
    Redis could never be scheduled again; with at most one zone per node the
    Auto Scaling group keeps each zone's node in its zone.
    """
    return list(subnet_ids)[:node_count] if node_count < len(subnet_ids) else list(subnet_ids)


@dataclass(frozen=True)
class SystemGroupSpec:
    """Always-on, on-demand nodes for Redis, frontend, KEDA and the controllers."""

    instance_type: str = "m6i.xlarge"
    node_count: int = 1


@dataclass(frozen=True)
class CpuGroupSpec:
    """Consumer nodes: autoscaled from zero, Spot by default."""

    instance_types: Sequence[str] = ("m6i.xlarge", "m6a.xlarge", "m5.xlarge")
    max_nodes: int = 3
    spot: bool = True


@dataclass(frozen=True)
class GpuGroupSpec:
    """TF-Serving nodes on the AL2023 NVIDIA AMI: autoscaled from zero, tainted."""

    instance_type: str = "g6.xlarge"
    accelerator: str = "nvidia-l4"
    gpus_per_node: int = 1
    max_nodes: int = 1
    spot: bool = True
    # Zones where the instance type exists; empty means every zone of the cluster.
    zones: Sequence[str] = field(default_factory=tuple)
    # The GPU image is large (tensorflow/serving:*-gpu is several GB unpacked).
    disk_gi: int = 100


@dataclass(frozen=True)
class EksClusterArgs:
    cluster_name: str
    region: str
    # Private subnet per availability zone.
    subnet_ids_by_zone: Mapping[str, pulumi.Input[str]]
    kubernetes_version: str = "1.35"
    # Networks allowed on the public API endpoint; empty keeps the endpoint private.
    public_access_cidrs: Sequence[str] = field(default_factory=tuple)
    # IAM principals with cluster-admin access besides the creator.
    admin_principals: Sequence[str] = field(default_factory=tuple)
    deletion_protection: bool = False
    # Days CloudWatch keeps the control-plane logs (one of LOG_RETENTION_DAYS).
    log_retention_days: int = 30
    system_group: SystemGroupSpec = field(default_factory=SystemGroupSpec)
    cpu_group: CpuGroupSpec = field(default_factory=CpuGroupSpec)
    gpu_group: GpuGroupSpec = field(default_factory=GpuGroupSpec)


def _validate(name: str, args: EksClusterArgs) -> None:
    if not CLUSTER_NAME.match(args.cluster_name):
        raise ValueError(f"EksCluster {name}: invalid cluster name {args.cluster_name!r}")
    if len(args.subnet_ids_by_zone) < 2:
        raise ValueError(f"EksCluster {name}: EKS needs subnets in at least two availability zones")
    for cidr in args.public_access_cidrs:
        if opens_to_everyone(cidr):
            raise ValueError(f"EksCluster {name}: public access from {cidr} would open the control plane")
    for principal in args.admin_principals:
        if not IAM_PRINCIPAL.match(principal):
            raise ValueError(f"EksCluster {name}: {principal!r} is not an IAM role or user ARN")
    stray = [z for z in args.gpu_group.zones if z not in args.subnet_ids_by_zone]
    if stray:
        raise ValueError(f"EksCluster {name}: GPU zones {stray} have no subnet")
    if args.system_group.node_count < 1:
        raise ValueError(f"EksCluster {name}: the system group needs at least one node")
    if args.cpu_group.max_nodes < 1 or args.gpu_group.max_nodes < 1:
        raise ValueError(f"EksCluster {name}: CPU and GPU groups need max_nodes >= 1")
    if args.gpu_group.gpus_per_node < 1:
        raise ValueError(f"EksCluster {name}: gpus_per_node must be >= 1")
    if args.log_retention_days not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"EksCluster {name}: log_retention_days must be one of CloudWatch's {LOG_RETENTION_DAYS}, "
            f"got {args.log_retention_days}"
        )


def kubeconfig(cluster_name: str, server: str, ca: str, region: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token`."""
    return exec_kubeconfig(cluster_name, server, ca, {
        "command": "aws",
        "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
        "installHint": "Install the AWS CLI: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html",
    })


def _service_role(name: str, service: str, policy_arns: Sequence[str], parent: pulumi.Resource,
                  ) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """A role an AWS service assumes, with AWS-managed policies attached."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(name, assume_role_policy=assume_role_trust(service), opts=child)
    attachments = [
        aws.iam.RolePolicyAttachment(f"{name}-{arn.rsplit('/', 1)[-1]}", role=role.name, policy_arn=arn, opts=child)
        for arn in policy_arns
    ]
    return role, attachments


class EksCluster(pulumi.ComponentResource):
    """EKS cluster exposing the shared `ClusterInfo` shape as `.info`.

    Built with pulumi-aws directly: pulumi-eks would create the node groups
    inside its own plugin, out of reach of the ASG tags scale-from-zero needs
    (https://github.com/pulumi/pulumi-eks/issues/658) and of the unit tests.
    """

    cluster: aws.eks.Cluster
    info: ClusterInfo

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None):
        _validate(name, args)
        super().__init__("kiosk:aws:EksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        cluster_role, attachments = _service_role(f"{name}-cluster", "eks.amazonaws.com", CLUSTER_POLICIES, self)
        # Created before the cluster: left to EKS, the group would never
        # expire its logs and would outlive `pulumi destroy`. The cluster
        # depends on it, so destroy deletes the cluster (which stops writing)
        # first, then the group.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            name=control_plane_log_group_name(args.cluster_name),
            retention_in_days=args.log_retention_days,
            skip_destroy=False,
            opts=child,
        )
        subnet_ids = list(args.subnet_ids_by_zone.values())
        self.cluster = aws.eks.Cluster(
            name,
            name=args.cluster_name,
            version=args.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=subnet_ids,
                endpoint_private_access=True,
                # The API endpoint is public only for the listed networks
                # (always IAM-authenticated); without any it stays in the VPC.
                endpoint_public_access=bool(args.public_access_cidrs),
                public_access_cidrs=list(args.public_access_cidrs) or None,
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            # Standard support only: extended support costs six times as much.
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
            deletion_protection=args.deletion_protection,
            # `protect` with deletion protection: `destroy` stops at its
            # preview instead of deleting workloads and node groups first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*attachments, self.log_group],
                                        protect=args.deletion_protection),
        )
        for i, principal in enumerate(args.admin_principals):
            entry = aws.eks.AccessEntry(f"{name}-admin-{i}", cluster_name=self.cluster.name,
                                        principal_arn=principal, type="STANDARD", opts=child)
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{i}",
                cluster_name=self.cluster.name,
                principal_arn=entry.principal_arn,
                policy_arn=ADMIN_ACCESS_POLICY,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=child,
            )

        node_role, node_attachments = _service_role(f"{name}-nodes", "ec2.amazonaws.com", NODE_POLICIES, self)
        self.node_role = node_role
        group_opts = pulumi.ResourceOptions(parent=self, depends_on=node_attachments)

        def group(pool: str, subnets: Sequence[pulumi.Input[str]], spec: NodeGroupSpec) -> ManagedNodeGroup:
            return ManagedNodeGroup(f"{name}-{pool}", ManagedNodeGroupArgs(
                cluster_name=self.cluster.name,
                node_role_arn=node_role.arn,
                subnet_ids=subnets,
                kubernetes_version=args.kubernetes_version,
                spec=spec,
            ), group_opts)

        system, cpu, gpu = args.system_group, args.cpu_group, args.gpu_group
        self.system_group = group("system", system_subnets(subnet_ids, system.node_count), NodeGroupSpec(
            instance_types=(system.instance_type,),
            min_size=system.node_count,
            max_size=system.node_count,
            labels={POOL_LABEL: "system"},
        ))
        self.cpu_group = group("cpu", subnet_ids, NodeGroupSpec(
            instance_types=tuple(cpu.instance_types),
            max_size=cpu.max_nodes,
            spot=cpu.spot,
            labels={POOL_LABEL: "cpu"},
        ))
        gpu_subnets = [args.subnet_ids_by_zone[z] for z in gpu.zones] if gpu.zones else subnet_ids
        self.gpu_group = group("gpu", gpu_subnets, NodeGroupSpec(
            instance_types=(gpu.instance_type,),
            max_size=gpu.max_nodes,
            spot=gpu.spot,
            ami_type="AL2023_x86_64_NVIDIA",
            disk_gi=gpu.disk_gi,
            labels={POOL_LABEL: "gpu", ACCELERATOR_LABEL: gpu.accelerator},
            taints=(GPU_TAINT,),
            extended_resources={GPU_RESOURCE: str(gpu.gpus_per_node)},
        ))
        self.node_groups = (self.system_group, self.cpu_group, self.gpu_group)

        # Managed add-ons, once there are nodes to run them. The VPC CNI
        # enforces NetworkPolicies only when told to
        # (https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html).
        addon_opts = pulumi.ResourceOptions(parent=self, depends_on=[self.system_group])
        addons: dict[str, dict] = {
            "vpc-cni": {"enableNetworkPolicy": "true"},
            "kube-proxy": {},
            "coredns": {},
            "eks-pod-identity-agent": {},
        }
        self.addons = {
            addon: aws.eks.Addon(
                f"{name}-{addon}",
                cluster_name=self.cluster.name,
                addon_name=addon,
                configuration_values=json.dumps(values) if values else None,
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                opts=addon_opts,
            )
            for addon, values in addons.items()
        }
        # The EBS CSI driver provisions Redis' volume; its controller gets
        # AWS's managed policy through Pod Identity.
        ebs_identity = PodIdentityRole(f"{name}-ebs-csi", PodIdentityRoleArgs(
            cluster_name=self.cluster.name,
            namespace="kube-system",
            service_account="ebs-csi-controller-sa",
            managed_policy_arns=(EBS_CSI_POLICY,),
        ), pulumi.ResourceOptions(parent=self, depends_on=[self.addons["eks-pod-identity-agent"]]))
        self.addons["aws-ebs-csi-driver"] = aws.eks.Addon(
            f"{name}-aws-ebs-csi-driver",
            cluster_name=self.cluster.name,
            addon_name="aws-ebs-csi-driver",
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.system_group, ebs_identity]),
        )

        # Only the cluster's own facts: a kubeconfig that changed (or went
        # unknown in a preview) whenever a node group does would make
        # pulumi-kubernetes see a new cluster and replace every object.
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority.data,
            ).apply(lambda v: kubeconfig(v[0], v[1], v[2], args.region))
        )
        # Every Kubernetes object goes through this provider, which waits for
        # the system group and the add-ons: objects are created once nodes,
        # DNS and the pod network run, and `destroy` deletes them all (the
        # Ingress, whose ALB the load balancer controller removes, Redis'
        # volume, which the EBS CSI driver removes) before any add-on.
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            cluster_identifier=cluster_identifier(self.cluster.name, self.cluster.certificate_authority.data),
            enable_config_map_mutable=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.system_group, *self.addons.values()]),
        )
        # EKS marks no StorageClass as default since Kubernetes 1.30.
        storage_class = k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata={"name": STORAGE_CLASS, "labels": {"app.kubernetes.io/part-of": "kiosk"}},
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true"},
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Delete",
            opts=pulumi.ResourceOptions(parent=self, provider=provider,
                                        depends_on=[self.addons["aws-ebs-csi-driver"]]),
        )
        self.info = ClusterInfo(
            provider=provider,
            kubeconfig=self.kubeconfig,
            kubernetes_version=args.kubernetes_version,
            system_node_labels={POOL_LABEL: "system"},
            worker_node_labels={POOL_LABEL: "cpu"},
            gpu_node_labels={POOL_LABEL: "gpu"},
            gpu_taints=(GPU_TAINT,),
            # Taken from the object, so volumes are claimed after it exists.
            storage_class=storage_class.metadata.name,
        )
        self.name: pulumi.Output[str] = self.cluster.name
        # On the control plane's ENIs; clients inside the VPC must be admitted to it.
        self.security_group_id: pulumi.Output[str] = self.cluster.vpc_config.cluster_security_group_id
        self.register_outputs({
            "name": self.cluster.name,
            "endpoint": self.cluster.endpoint,
            "kubeconfig": self.kubeconfig,
            "gpuNodeGroup": self.gpu_group.node_group.node_group_name,
            "logGroup": self.log_group.name,
        })
