"""The API and web portal: Deployment, Service, Ingress (optional TLS)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.k8s.objects import cluster_ip_service, http_get, metadata, pod_disruption_budget
from components.shapes import (
    REDIS_CLIENT_LABEL,
    RESTRICTED_CONTAINER,
    MetricsEndpoint,
    SecretKeyRef,
    env_list,
    resource_requirements,
    restricted_pod,
)

PORT = 8080
APP_UID = 10001  # the non-root user of frontend/Dockerfile
HEALTH_PATH = "/api/health-check"
# The API's Prometheus metrics, on a port of their own: the Ingress routes every path
# of the HTTP port to the Internet, and metrics are for the cluster's scraper only.
METRICS_PATH = "/metrics"
METRICS_PORT = 9100


@dataclass(frozen=True)
class FrontendArgs:
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    service_account_name: pulumi.Input[str]
    image: pulumi.Input[str]
    # Plain, or a Secret key when the URL holds Redis's password.
    redis_url: pulumi.Input[str] | SecretKeyRef
    storage_url: pulumi.Input[str]
    # The portal's URL (KIOSK_PUBLIC_URL); None when only the load balancer the
    # Ingress gets will tell it (EKS without a domain): the frontend then
    # announces its own address, which only local storage's download links use.
    public_url: pulumi.Input[str] | None
    # Require a generated bearer token (KIOSK_AUTH_TOKEN) on the API.
    auth_enabled: bool = True
    replicas: int = 2
    cpu: str = "500m"
    memory: str = "512Mi"
    node_selector: Mapping[str, str] = field(default_factory=dict)
    # Portal host; None answers on any host (e.g. the bare IP).
    host: str | None = None
    # Secret holding a TLS certificate for `host`; clouds that attach
    # certificates through annotations (GKE pre-shared certs) leave it None.
    tls_secret_name: str | None = None
    ingress_class_name: str | None = None
    ingress_annotations: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    service_annotations: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    extra_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # The controller serving the Ingress class, when the stack installs it: its
    # admission webhook must answer before the Ingress is created, and the
    # Ingress must go (and its load balancer with it) before the controller.
    ingress_controller: pulumi.Resource | None = None
    # An object the Ingress's annotations name (GKE's FrontendConfig): created
    # before the Ingress, deleted after it.
    ingress_config: pulumi.Resource | None = None


class Frontend(pulumi.ComponentResource):
    """Deployment `frontend`, ClusterIP Service, Ingress, auth Secret and PDB."""

    def __init__(self, name: str, args: FrontendArgs, opts: pulumi.ResourceOptions | None = None):
        if args.replicas < 1:
            raise ValueError(f"Frontend {name}: replicas must be at least 1")
        if args.tls_secret_name is not None and args.host is None:
            raise ValueError(f"Frontend {name}: a TLS secret needs a host")
        super().__init__("kiosk:k8s:Frontend", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        labels = {"app.kubernetes.io/name": "frontend", "app.kubernetes.io/part-of": "kiosk"}

        plain_env: dict[str, pulumi.Input[str] | SecretKeyRef] = {
            # The API binds 127.0.0.1 unless told otherwise; in a pod it must listen on
            # every interface, and `cloud` refuses placeholder secrets at start-up.
            "KIOSK_HOST": "0.0.0.0",
            "KIOSK_ENVIRONMENT": "cloud",
            "KIOSK_PORT": str(PORT),
            "KIOSK_METRICS_PORT": str(METRICS_PORT),
            "KIOSK_REDIS_URL": args.redis_url,
            "KIOSK_STORAGE_URL": args.storage_url,
            # Job views say why a job waits, from the model server's pods and events (the Role below).
            "KIOSK_KUBE_VIEW": "in-cluster",
        }
        if args.public_url is not None:
            plain_env["KIOSK_PUBLIC_URL"] = args.public_url
        env: list[dict] = env_list({**plain_env, **args.extra_env})
        self.auth_token: pulumi.Output[str] | None = None
        if args.auth_enabled:
            # Generated once and kept in the (encrypted) state: the same token
            # for every replica, rotated by replacing this resource.
            token = random.RandomPassword(
                f"{name}-token", length=48, special=False, opts=pulumi.ResourceOptions(parent=self),
            )
            self.auth_token = pulumi.Output.secret(token.result)
            secret = k8s.core.v1.Secret(
                name,
                metadata=metadata("frontend-auth", args.namespace, labels),
                type="Opaque",
                string_data={"token": self.auth_token},
                opts=child,
            )
            env.append({
                "name": "KIOSK_AUTH_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": secret.metadata.name, "key": "token"}},
            })
        health = http_get(HEALTH_PATH, "http")
        self.deployment = k8s.apps.v1.Deployment(
            name,
            metadata=metadata("frontend", args.namespace, labels),
            spec={
                "replicas": args.replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": {**labels, **REDIS_CLIENT_LABEL}},
                    "spec": {
                        "serviceAccountName": args.service_account_name,
                        "securityContext": restricted_pod(APP_UID),
                        "nodeSelector": dict(args.node_selector),
                        "terminationGracePeriodSeconds": 30,
                        "containers": [{
                            "name": "frontend",
                            "image": args.image,
                            "command": ["python", "-m", "frontend"],
                            "env": env,
                            "ports": [{"name": "http", "containerPort": PORT},
                                      {"name": "metrics", "containerPort": METRICS_PORT}],
                            "resources": resource_requirements(args.cpu, args.memory),
                            "securityContext": RESTRICTED_CONTAINER,
                            # GKE's load balancer derives its health check from
                            # this readiness probe's path.
                            "readinessProbe": {**health, "periodSeconds": 10},
                            "livenessProbe": {**health, "periodSeconds": 20, "failureThreshold": 3},
                        }],
                    },
                },
            },
            opts=child,
        )
        self.service = cluster_ip_service(
            name, "frontend", args.namespace, labels, [("http", 80)], child, annotations=args.service_annotations,
        )
        backend = {"service": {"name": self.service.metadata.name, "port": {"name": "http"}}}
        rule: dict = {"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}
        if args.host is not None:
            rule["host"] = args.host
        ingress_spec: dict = {"defaultBackend": backend, "rules": [rule]}
        if args.ingress_class_name is not None:
            ingress_spec["ingressClassName"] = args.ingress_class_name
        if args.tls_secret_name is not None:
            ingress_spec["tls"] = [{"hosts": [args.host], "secretName": args.tls_secret_name}]
        self.ingress = k8s.networking.v1.Ingress(
            name,
            metadata=metadata("frontend", args.namespace, labels, args.ingress_annotations),
            spec=ingress_spec,
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider,
                depends_on=[r for r in (args.ingress_controller, args.ingress_config) if r is not None],
            ),
        )
        # The load balancer's address as the Ingress status reports it (an IP
        # on GKE, a DNS name on EKS); "" until the controller has set it.
        self.address: pulumi.Output[str] = self.ingress.status.apply(_load_balancer_address)
        pod_disruption_budget(name, "frontend", args.namespace, labels, child)
        self.view_role = namespace_view(name, args.namespace, args.service_account_name, labels, child)
        self.metrics = MetricsEndpoint(name="frontend", pod_labels=labels, port="metrics", path=METRICS_PATH)
        self.register_outputs({"service": self.service.metadata.name, "address": self.address})


def namespace_view(name: str, namespace: pulumi.Input[str], service_account: pulumi.Input[str],
                   labels: Mapping[str, str], opts: pulumi.ResourceOptions) -> k8s.rbac.v1.Role:
    """Role and RoleBinding letting the API list and watch pods and events of its namespace, nothing else."""
    role = k8s.rbac.v1.Role(
        f"{name}-view",
        metadata=metadata("frontend-view", namespace, labels),
        rules=[{"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["list", "watch"]}],
        opts=opts,
    )
    k8s.rbac.v1.RoleBinding(
        f"{name}-view",
        metadata=metadata("frontend-view", namespace, labels),
        role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role.metadata.name},
        subjects=[{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}],
        opts=opts,
    )
    return role


def _load_balancer_address(status) -> str:
    entries = (getattr(getattr(status, "load_balancer", None), "ingress", None) or []) if status else []
    for entry in entries:
        address = getattr(entry, "hostname", None) or getattr(entry, "ip", None)
        if address:
            return address
    return ""
