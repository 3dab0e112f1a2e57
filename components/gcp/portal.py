"""Public entry of the portal on GKE: a static IP and an optional managed certificate."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.k8s.objects import metadata

# The FrontendConfig that makes the GKE Ingress redirect HTTP to HTTPS.
HTTPS_REDIRECT = "frontend-https-redirect"
FRONTEND_CONFIG_ANNOTATION = "networking.gke.io/v1beta1.FrontendConfig"


@dataclass(frozen=True)
class PortalEndpointArgs:
    # Host name of the portal; None serves plain HTTP on the static IP.
    domain: str | None = None


class PortalEndpoint(pulumi.ComponentResource):
    """Global static IP (+ Google-managed certificate) for the GKE Ingress.

    Exposes the annotations the cloud-agnostic Frontend puts on its Ingress,
    and the portal URL the frontend announces as KIOSK_PUBLIC_URL.
    """

    def __init__(self, name: str, args: PortalEndpointArgs, opts: pulumi.ResourceOptions | None = None):
        if args.domain is not None and ("/" in args.domain or ":" in args.domain or "." not in args.domain):
            raise ValueError(f"PortalEndpoint {name}: domain must be a bare host name, got {args.domain!r}")
        super().__init__("kiosk:gcp:PortalEndpoint", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.address = gcp.compute.GlobalAddress(name, opts=child)
        annotations: dict[str, pulumi.Input[str]] = {
            "kubernetes.io/ingress.class": "gce",
            "kubernetes.io/ingress.global-static-ip-name": self.address.name,
        }
        if args.domain is not None:
            cert = gcp.compute.ManagedSslCertificate(
                name,
                managed=gcp.compute.ManagedSslCertificateManagedArgs(domains=[args.domain]),
                opts=child,
            )
            annotations["ingress.gcp.kubernetes.io/pre-shared-cert"] = cert.name
            annotations[FRONTEND_CONFIG_ANNOTATION] = HTTPS_REDIRECT
            self.url: pulumi.Output[str] = pulumi.Output.from_input(f"https://{args.domain}")
        else:
            self.url = self.address.address.apply(lambda ip: f"http://{ip}")
        self.host = args.domain
        self.ingress_annotations = annotations
        # Container-native load balancing: the load balancer sends traffic
        # straight to pod IPs through a network endpoint group.
        self.service_annotations = {"cloud.google.com/neg": '{"ingress": true}'}
        self.register_outputs({"url": self.url, "address": self.address.address})


def https_redirect(name: str, provider: k8s.Provider, namespace: pulumi.Input[str]) -> k8s.apiextensions.CustomResource:
    """The FrontendConfig (GKE's CRD) the portal's Ingress names when it serves
    HTTPS: its load balancer answers plain HTTP with a 301 to HTTPS."""
    return k8s.apiextensions.CustomResource(
        name,
        api_version="networking.gke.io/v1beta1",
        kind="FrontendConfig",
        metadata=metadata(HTTPS_REDIRECT, namespace, {"app.kubernetes.io/part-of": "kiosk"}),
        spec={"redirectToHttps": {"enabled": True}},  # 301, the default response
        opts=pulumi.ResourceOptions(provider=provider),
    )
