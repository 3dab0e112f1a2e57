"""VPC for a private EKS cluster: private subnets behind NAT, public ones for the load balancer."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# Subnet tags the AWS Load Balancer Controller discovers subnets by
# (https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/deploy/subnet_discovery/).
PUBLIC_ELB_TAG = "kubernetes.io/role/elb"
INTERNAL_ELB_TAG = "kubernetes.io/role/internal-elb"
PRIVATE_PREFIX = 19  # 8190 addresses per zone: the VPC CNI gives every pod a VPC address
PUBLIC_PREFIX = 24


def subnet_cidrs(vpc_cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """(private, public) subnet ranges, one of each per zone, carved from the VPC range.

    Private subnets are the first /19s; public /24s come from the last /19.
    """
    vpc = ipaddress.ip_network(vpc_cidr)
    if vpc.prefixlen > 16:
        raise ValueError(f"the VPC range {vpc_cidr} must be a /16 or larger")
    blocks = list(vpc.subnets(new_prefix=PRIVATE_PREFIX))
    if zones >= len(blocks):
        raise ValueError(f"{vpc_cidr} has room for {len(blocks) - 1} zones, not {zones}")
    private = [str(b) for b in blocks[:zones]]
    public = [str(b) for b in list(blocks[-1].subnets(new_prefix=PUBLIC_PREFIX))[:zones]]
    return private, public


@dataclass(frozen=True)
class VpcArgs:
    region: str
    availability_zones: Sequence[str]
    cidr: str = "10.40.0.0/16"
    # One NAT gateway per zone survives a zone failure; one in all is cheaper.
    nat_gateway_per_zone: bool = False


class Vpc(pulumi.ComponentResource):
    """VPC, internet gateway, a public and a private subnet per zone, NAT,
    and an S3 gateway endpoint (S3 traffic skips NAT's per-GB charge)."""

    vpc: aws.ec2.Vpc

    def __init__(self, name: str, args: VpcArgs, opts: pulumi.ResourceOptions | None = None):
        zones = list(args.availability_zones)
        if len(set(zones)) < 2 or len(set(zones)) != len(zones):
            raise ValueError(f"Vpc {name}: EKS needs at least two distinct availability zones, got {zones}")
        try:
            private_cidrs, public_cidrs = subnet_cidrs(args.cidr, len(zones))
        except ValueError as exc:
            raise ValueError(f"Vpc {name}: {exc}") from exc
        super().__init__("kiosk:aws:Vpc", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.vpc = aws.ec2.Vpc(
            name,
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": name},
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(name, vpc_id=self.vpc.id, tags={"Name": name}, opts=child)

        def default_route(table: str, **target: pulumi.Input[str]) -> aws.ec2.RouteTable:
            return aws.ec2.RouteTable(
                table,
                vpc_id=self.vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", **target)],
                tags={"Name": table},
                opts=child,
            )

        public_routes = default_route(f"{name}-public", gateway_id=gateway.id)
        self.public_subnets: list[aws.ec2.Subnet] = []
        self.private_subnets: list[aws.ec2.Subnet] = []
        self.private_subnet_by_zone: dict[str, aws.ec2.Subnet] = {}
        nat_gateways: list[aws.ec2.NatGateway] = []
        private_route_tables: list[aws.ec2.RouteTable] = []
        for i, zone in enumerate(zones):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=self.vpc.id,
                availability_zone=zone,
                cidr_block=public_cidrs[i],
                # Only load balancers and NAT gateways live here; nothing gets a public IP by default.
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{zone}", PUBLIC_ELB_TAG: "1"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}", subnet_id=public.id, route_table_id=public_routes.id, opts=child,
            )
            self.public_subnets.append(public)
            if args.nat_gateway_per_zone or i == 0:
                address = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc", tags={"Name": f"{name}-nat-{zone}"},
                                      opts=child)
                nat_gateways.append(aws.ec2.NatGateway(
                    f"{name}-{zone}",
                    allocation_id=address.id,
                    subnet_id=public.id,
                    tags={"Name": f"{name}-{zone}"},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),
                ))
        for i, zone in enumerate(zones):
            nat = nat_gateways[i] if args.nat_gateway_per_zone else nat_gateways[0]
            private = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=self.vpc.id,
                availability_zone=zone,
                cidr_block=private_cidrs[i],
                tags={"Name": f"{name}-private-{zone}", INTERNAL_ELB_TAG: "1"},
                opts=child,
            )
            # Private nodes reach ECR, Docker Hub and the EKS API through NAT.
            routes = default_route(f"{name}-private-{zone}", nat_gateway_id=nat.id)
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=private.id, route_table_id=routes.id, opts=child,
            )
            private_route_tables.append(routes)
            self.private_subnets.append(private)
            self.private_subnet_by_zone[zone] = private
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[t.id for t in private_route_tables],
            tags={"Name": f"{name}-s3"},
            opts=child,
        )
        self.private_subnet_ids = [s.id for s in self.private_subnets]
        self.public_subnet_ids = [s.id for s in self.public_subnets]
        self.register_outputs({
            "vpcId": self.vpc.id,
            "privateSubnetIds": self.private_subnet_ids,
            "publicSubnetIds": self.public_subnet_ids,
        })
