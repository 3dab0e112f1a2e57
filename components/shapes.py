"""Shapes that both cloud families expose, so workloads never ask which cloud.

A cluster component of either cloud (GKE, EKS) exposes a `ClusterInfo`: a
Kubernetes provider, a kubeconfig marked secret, and the scheduling facts
workloads need (node labels per pool, GPU taints, the storage class).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

GPU_RESOURCE = "nvidia.com/gpu"

# Prefixes of the bucket layout (the runtime contract) on every cloud:
# uploads/ and output/ expire, models/<Name>/<version>/ never does.
UPLOADS = "uploads/"
OUTPUT = "output/"
MODELS = "models/"

# Labels put on kiosk pods that may talk to Redis / TF-Serving; the
# NetworkPolicies of those two admit only pods that carry them.
REDIS_CLIENT_LABEL = {"kiosk.dev/redis-client": "true"}
MODEL_CLIENT_LABEL = {"kiosk.dev/model-client": "true"}


@dataclass(frozen=True)
class Taint:
    """A node taint in Kubernetes' spelling (effect NoSchedule, not NO_SCHEDULE)."""

    key: str
    value: str
    effect: str = "NoSchedule"

    def toleration(self) -> dict[str, str]:
        """The toleration a pod needs to land on a node with this taint."""
        return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.effect}


@dataclass(frozen=True)
class ClusterInfo:
    """What every cluster component hands to the workloads."""

    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    kubernetes_version: str
    system_node_labels: Mapping[str, str]
    worker_node_labels: Mapping[str, str]
    gpu_node_labels: Mapping[str, str]
    gpu_taints: Sequence[Taint]
    # Taints of the worker (consumer) nodes, which only the consumers tolerate.
    worker_taints: Sequence[Taint] = field(default_factory=tuple)
    # Namespaces whose pods scrape Prometheus metrics (GKE: managed Prometheus).
    metrics_namespaces: Sequence[str] = field(default_factory=tuple)
    # StorageClass for persistent volumes; None uses the cluster's default
    # (GKE has one; EKS clusters since 1.30 mark none as default).
    storage_class: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class MetricsEndpoint:
    """Where a workload's pods serve Prometheus metrics: the pods' labels, the
    named container port and the HTTP path. Scrape configs (GKE's
    PodMonitoring) are built from it, so they follow the workload's own ports."""

    # Name of the scrape object (the workload's name).
    name: str
    pod_labels: Mapping[str, str]
    port: str
    path: str = "/metrics"


@dataclass(frozen=True)
class RegistryLogin:
    """Where a family's registry takes the kiosk's images, and a push login."""

    # Registry host to log in to (e.g. us-central1-docker.pkg.dev).
    address: pulumi.Input[str]
    # Where images go (e.g. us-central1-docker.pkg.dev/proj/kiosk); each image is <repository_url>/<name>.
    repository_url: pulumi.Input[str]
    username: pulumi.Input[str]
    password: pulumi.Input[str]


@dataclass(frozen=True)
class RedisEndpoint:
    """Where Redis answers: in the cluster or a managed service."""

    host: pulumi.Output[str]
    port: int = 6379
    # Redis AUTH password (a secret Output); None when Redis takes no AUTH.
    password: pulumi.Output[str] | None = None

    @property
    def address(self) -> pulumi.Output[str]:
        """host:port, as KEDA's redis-streams scaler wants it."""
        return pulumi.Output.concat(self.host, ":", str(self.port))

    @property
    def url(self) -> pulumi.Output[str]:
        """KIOSK_REDIS_URL: redis://[:password@]host:port/0 (secret when it holds the password)."""
        if self.password is None:
            return pulumi.Output.concat("redis://", self.host, ":", str(self.port), "/0")
        return pulumi.Output.secret(pulumi.Output.concat(
            "redis://:", self.password, "@", self.host, ":", str(self.port), "/0"))


@dataclass(frozen=True)
class SecretKeyRef:
    """A key of a Kubernetes Secret, for env values that must not be plain text."""

    name: pulumi.Input[str]
    key: str


def env_list(env: Mapping[str, "pulumi.Input[str] | SecretKeyRef"]) -> list[dict]:
    """A container's env: plain values as `value`, SecretKeyRefs as `valueFrom`."""
    entries = []
    for name, value in env.items():
        if isinstance(value, SecretKeyRef):
            entries.append({"name": name, "valueFrom": {"secretKeyRef": {"name": value.name, "key": value.key}}})
        else:
            entries.append({"name": name, "value": value})
    return entries


def resource_requirements(cpu: str, memory: str, *, cpu_limit: str | None = None,
                          memory_limit: str | None = None,
                          extra: Mapping[str, str] | None = None) -> dict:
    """Requests and limits (limits default to the requests: guaranteed QoS)."""
    extra = {} if extra is None else dict(extra)
    requests = {"cpu": cpu, "memory": memory, **extra}
    limits = {
        "cpu": cpu if cpu_limit is None else cpu_limit,
        "memory": memory if memory_limit is None else memory_limit,
        **extra,
    }
    return {"requests": requests, "limits": limits}


RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def restricted_pod(run_as_user: int, fs_group: int | None = None) -> dict:
    """Pod securityContext meeting the 'restricted' Pod Security Standard."""
    ctx: dict = {
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "runAsGroup": run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if fs_group is not None:
        ctx["fsGroup"] = fs_group
    return ctx


# Kubernetes service accounts of the workloads that hold a cloud identity.
SERVICE_ACCOUNT_NAMES = {"consumers": "kiosk-consumers", "frontend": "kiosk-frontend", "tfserving": "kiosk-tf-serving"}


@dataclass(frozen=True)
class WorkloadServiceAccounts:
    """Kubernetes service accounts bound to cloud identities, one per workload.

    Every cloud family's identity component returns this: the workloads only
    reference the names, never the cloud identity behind them.
    """

    consumers: pulumi.Output[str]
    frontend: pulumi.Output[str]
    tf_serving: pulumi.Output[str]


def docker_hub_path(image: str) -> str | None:
    """The repository path of a Docker Hub image ("redis:7" -> "library/redis:7",
    "tensorflow/serving:2" unchanged), or None for an image of another registry
    (its first part names a host: it has a dot or a port, or is localhost)."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return None
    return image if rest else f"library/{image}"


@dataclass(frozen=True)
class ImageMirror:
    """A pull-through cache of Docker Hub in the stack's own registry: nodes
    pull public images from it instead of from Docker Hub through NAT, whose
    shared addresses hit Docker Hub's anonymous pull limits."""

    # <registry host>/<...>/<prefix>: a Docker Hub path goes after it.
    base: pulumi.Input[str]

    def ref(self, image: str) -> pulumi.Input[str]:
        """Where to pull `image` from: through the cache when it is Docker Hub's."""
        path = docker_hub_path(image)
        if path is None:
            return image
        return pulumi.Output.concat(self.base, "/", path)


def pull_ref(image: str, mirror: ImageMirror | None) -> pulumi.Input[str]:
    """Where a container pulls `image` from: `mirror`'s cache, when there is one."""
    return image if mirror is None else mirror.ref(image)


def opens_to_everyone(cidr: str) -> bool:
    """True for 0.0.0.0/0 and ::/0 (however written)."""
    return ipaddress.ip_network(cidr, strict=False).prefixlen == 0


def cluster_identifier(name: pulumi.Input[str], ca_certificate: pulumi.Input[str]) -> pulumi.Output[str]:
    """The Kubernetes provider's `cluster_identifier`: the provider (and every
    object with it) is replaced only when this changes. A new cluster of the
    same name has a new CA, so a replaced cluster gets its objects again,
    while other kubeconfig changes are updates."""
    return pulumi.Output.all(name, ca_certificate).apply(
        lambda v: f"{v[0]}-{hashlib.sha256(str(v[1]).encode()).hexdigest()[:16]}"
    )


def exec_kubeconfig(cluster_name: str, server: str, ca: str | None, exec_config: Mapping) -> str:
    """A kubeconfig whose user runs a credential plugin (no static token in the state).

    `exec_config` is the plugin's command, args and hints; the API version and
    non-interactive mode are the same for every cloud.
    """
    cluster: dict = {"server": server}
    if ca:
        cluster["certificate-authority-data"] = ca
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [{
            "name": cluster_name,
            "user": {"exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                **exec_config,
                "interactiveMode": "Never",
            }},
        }],
    })
