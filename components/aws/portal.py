"""Public entry of the portal on EKS: an internet-facing ALB, with an ACM certificate for a domain."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

PREFIX = "alb.ingress.kubernetes.io"
# TLS 1.3 and 1.2 only (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html).
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class AlbPortalArgs:
    health_check_path: str
    # Host name of the portal; None serves plain HTTP on the ALB's own name.
    domain: str | None = None
    # Route 53 hosted zone of `domain` (certificate validation, alias record).
    zone_id: str | None = None


class AlbPortal(pulumi.ComponentResource):
    """Annotations that make the AWS Load Balancer Controller serve the
    Frontend's Ingress from an internet-facing ALB sending traffic straight
    to the pods, plus, for a domain, a DNS-validated ACM certificate.

    The ALB is the controller's; its name is only known once the Ingress
    exists, so the DNS record is `PortalDnsRecord`'s job.
    """

    def __init__(self, name: str, args: AlbPortalArgs, opts: pulumi.ResourceOptions | None = None):
        if args.domain is not None and ("/" in args.domain or ":" in args.domain or "." not in args.domain):
            raise ValueError(f"AlbPortal {name}: domain must be a bare host name, got {args.domain!r}")
        if args.domain is not None and not args.zone_id:
            raise ValueError(f"AlbPortal {name}: a domain needs the Route 53 zone that validates its certificate")
        if not args.health_check_path.startswith("/"):
            raise ValueError(f"AlbPortal {name}: health_check_path must be a path")
        super().__init__("kiosk:aws:AlbPortal", name, None, opts)
        annotations: dict[str, pulumi.Input[str]] = {
            f"{PREFIX}/scheme": "internet-facing",
            f"{PREFIX}/target-type": "ip",
            f"{PREFIX}/healthcheck-path": args.health_check_path,
            f"{PREFIX}/listen-ports": json.dumps([{"HTTP": 80}]),
        }
        self.url: pulumi.Output[str] | None = None
        if args.domain is not None:
            child = pulumi.ResourceOptions(parent=self)
            certificate = aws.acm.Certificate(name, domain_name=args.domain, validation_method="DNS", opts=child)
            option = certificate.domain_validation_options.apply(lambda options: options[0])
            record = aws.route53.Record(
                f"{name}-validation",
                zone_id=args.zone_id,
                name=option.apply(lambda o: o.resource_record_name),
                type=option.apply(lambda o: o.resource_record_type),
                records=[option.apply(lambda o: o.resource_record_value)],
                ttl=300,
                allow_overwrite=True,
                opts=child,
            )
            # Waits until ACM has issued the certificate: an ALB listener
            # refuses one that is still pending validation.
            validation = aws.acm.CertificateValidation(
                name, certificate_arn=certificate.arn, validation_record_fqdns=[record.fqdn], opts=child,
            )
            annotations |= {
                f"{PREFIX}/listen-ports": json.dumps([{"HTTP": 80}, {"HTTPS": 443}]),
                f"{PREFIX}/certificate-arn": validation.certificate_arn,
                f"{PREFIX}/ssl-redirect": "443",
                f"{PREFIX}/ssl-policy": SSL_POLICY,
            }
            self.url = pulumi.Output.from_input(f"https://{args.domain}")
        self.host = args.domain
        self.ingress_annotations = annotations
        self.service_annotations: dict[str, pulumi.Input[str]] = {}
        self.register_outputs({"url": self.url})
