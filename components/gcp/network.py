"""VPC for a private, VPC-native GKE cluster."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

NODE_TAG = "kiosk-node"

# The control plane of a private cluster reaches pods only on the ports GKE
# opens itself (443, 10250). KEDA's metrics API server listens on 6443 and its
# admission webhook on 9443; without this rule the HPA sees no external metrics
# and every ScaledObject write times out. KEDA documents it for GKE:
# https://github.com/kedacore/keda/issues/1642 (and keda-docs#384).
CONTROL_PLANE_WEBHOOK_PORTS = ("6443", "9443")


@dataclass(frozen=True)
class NetworkArgs:
    region: str
    subnet_cidr: str = "10.10.0.0/20"
    pods_cidr: str = "10.20.0.0/14"
    services_cidr: str = "10.24.0.0/20"
    master_cidr: str = "172.16.0.32/28"


class Network(pulumi.ComponentResource):
    """VPC, subnet with pod/service ranges, Cloud NAT, control-plane firewall."""

    network: gcp.compute.Network
    subnetwork: gcp.compute.Subnetwork

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        ranges = {
            "subnet_cidr": args.subnet_cidr,
            "pods_cidr": args.pods_cidr,
            "services_cidr": args.services_cidr,
            "master_cidr": args.master_cidr,
        }
        nets = {}
        for key, cidr in ranges.items():
            try:
                nets[key] = ipaddress.ip_network(cidr)
            except ValueError as exc:
                raise ValueError(f"Network {name}: {key} {cidr!r} is not a CIDR") from exc
        if nets["master_cidr"].prefixlen != 28:
            raise ValueError(f"Network {name}: master_cidr must be a /28, got {args.master_cidr}")
        keys = list(nets)
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                if nets[a].overlaps(nets[b]):
                    raise ValueError(f"Network {name}: {a} {nets[a]} overlaps {b} {nets[b]}")
        super().__init__("kiosk:gcp:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.network = gcp.compute.Network(
            f"{name}-vpc",
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            opts=child,
        )
        self.subnetwork = gcp.compute.Subnetwork(
            f"{name}-nodes",
            network=self.network.id,
            region=args.region,
            ip_cidr_range=args.subnet_cidr,
            private_ip_google_access=True,
            secondary_ip_ranges=[
                gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name="pods", ip_cidr_range=args.pods_cidr),
                gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name="services", ip_cidr_range=args.services_cidr),
            ],
            opts=child,
        )
        self.pods_range_name = "pods"
        self.services_range_name = "services"
        # Private nodes have no external IPs: Cloud NAT lets them pull public
        # images (tensorflow/serving, redis, KEDA) from Docker Hub and ghcr.io.
        router = gcp.compute.Router(f"{name}-router", network=self.network.id, region=args.region, opts=child)
        gcp.compute.RouterNat(
            f"{name}-nat",
            router=router.name,
            region=args.region,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            opts=child,
        )
        gcp.compute.Firewall(
            f"{name}-cp-webhooks",
            network=self.network.id,
            direction="INGRESS",
            source_ranges=[args.master_cidr],
            destination_ranges=[args.pods_cidr],
            target_tags=[NODE_TAG],
            allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=list(CONTROL_PLANE_WEBHOOK_PORTS))],
            description="GKE control plane to KEDA metrics API (6443) and admission webhook (9443)",
            opts=child,
        )
        self.node_tag = NODE_TAG
        self.register_outputs({
            "network": self.network.id,
            "subnetwork": self.subnetwork.id,
        })
