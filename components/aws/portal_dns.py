"""The portal's domain, pointed at the ALB the AWS Load Balancer Controller created."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class PortalDnsRecordArgs:
    zone_id: str
    domain: str
    # DNS name of the ALB, as the Ingress status reports it.
    load_balancer_hostname: pulumi.Input[str]


class PortalDnsRecord(pulumi.ComponentResource):
    """An alias A record (works at a zone's apex too, unlike a CNAME)."""

    def __init__(self, name: str, args: PortalDnsRecordArgs, opts: pulumi.ResourceOptions | None = None):
        if not args.zone_id or "." not in args.domain:
            raise ValueError(f"PortalDnsRecord {name}: needs a hosted zone and a host name")
        super().__init__("kiosk:aws:PortalDnsRecord", name, None, opts)
        # The hosted zone every ALB of the region lives in.
        alb_zone = aws.lb.get_hosted_zone_id_output(load_balancer_type="application")
        self.record = aws.route53.Record(
            name,
            zone_id=args.zone_id,
            name=args.domain,
            type="A",
            aliases=[aws.route53.RecordAliasArgs(
                name=args.load_balancer_hostname, zone_id=alb_zone.id, evaluate_target_health=True,
            )],
            allow_overwrite=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"fqdn": self.record.fqdn})
