"""A namespace with Pod Security Admission labels."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
LEVELS = ("privileged", "baseline", "restricted")
DELETE_TIMEOUT = "30m"


@dataclass(frozen=True)
class KioskNamespaceArgs:
    provider: k8s.Provider
    name: str
    # Enforced Pod Security level; "restricted" is always warned about.
    enforce: str = "baseline"


class KioskNamespace(pulumi.ComponentResource):
    """Creates the namespace; `.name` is the Output every workload takes."""

    def __init__(self, name: str, args: KioskNamespaceArgs, opts: pulumi.ResourceOptions | None = None):
        if not DNS_LABEL.match(args.name):
            raise ValueError(f"KioskNamespace {name}: {args.name!r} is not a DNS label")
        if args.enforce not in LEVELS:
            raise ValueError(f"KioskNamespace {name}: enforce must be one of {LEVELS}")
        super().__init__("kiosk:k8s:KioskNamespace", name, None, opts)
        self.namespace = k8s.core.v1.Namespace(
            name,
            metadata={
                "name": args.name,
                "labels": {
                    "app.kubernetes.io/part-of": "kiosk",
                    "pod-security.kubernetes.io/enforce": args.enforce,
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
            # Deleting a namespace waits for its objects' finalizers. On GKE
            # the NEG controller keeps the ServiceNetworkEndpointGroup of a
            # NEG-backed Service until it has deleted the NEG itself, which
            # it does asynchronously, often after 10 minutes
            # (kubernetes/ingress-gce#1197, #1720). Waiting that long here,
            # while the cluster still runs the controller, is what lets the
            # network be deleted afterwards: a leftover NEG would hold it
            # ("already being used by networkEndpointGroups").
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider,
                                        custom_timeouts=pulumi.CustomTimeouts(delete=DELETE_TIMEOUT)),
        )
        self.name = self.namespace.metadata.name
        self.register_outputs({"name": self.name})
