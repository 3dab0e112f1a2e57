"""Redis in the cluster: one StatefulSet pod with AOF persistence on a volume."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.k8s.objects import (
    cluster_ip_service,
    ingress_only_from,
    metadata,
    namespace_selector,
    pod_disruption_budget,
    service_host,
)
from components.shapes import (
    REDIS_CLIENT_LABEL,
    RESTRICTED_CONTAINER,
    ImageMirror,
    RedisEndpoint,
    pull_ref,
    resource_requirements,
    restricted_pod,
)

PORT = 6379
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
# The server's own Secret (clients read RedisCredentials' `redis-auth`).
SECRET_NAME = "redis-server-auth"
PASSWORD_KEY = "password"
PASSWORD_ENV = "REDIS_PASSWORD"
REDIS_UID = 999  # the "redis" user of the official image


@dataclass(frozen=True)
class PeerSelector:
    """Pods of another namespace allowed to reach Redis (KEDA's operator)."""

    namespace: pulumi.Input[str]
    pod_labels: Mapping[str, str]


@dataclass(frozen=True)
class RedisServerArgs:
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    # The official image (Bitnami's free catalogue was cut back in 2025).
    image: str = "redis:7.4-alpine"
    storage_gi: int = 10
    storage_class: pulumi.Input[str] | None = None
    memory_mi: int = 2048
    cpu: str = "500m"
    node_selector: Mapping[str, str] = field(default_factory=dict)
    # Other namespaces' pods that need Redis (KEDA polls the queue streams).
    extra_peers: Sequence[PeerSelector] = field(default_factory=tuple)
    # A Docker Hub image is pulled through it.
    image_mirror: ImageMirror | None = None


class RedisServer(pulumi.ComponentResource):
    """Service `redis`, StatefulSet with a PVC, its password Secret, NetworkPolicy and PDB."""

    endpoint: RedisEndpoint

    def __init__(self, name: str, args: RedisServerArgs, opts: pulumi.ResourceOptions | None = None):
        if args.storage_gi < 1:
            raise ValueError(f"RedisServer {name}: storage_gi must be at least 1")
        if args.memory_mi < 256:
            raise ValueError(f"RedisServer {name}: memory_mi must be at least 256")
        if ":" not in args.image:
            raise ValueError(f"RedisServer {name}: pin the image tag, got {args.image!r}")
        super().__init__("kiosk:k8s:RedisServer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        labels = {"app.kubernetes.io/name": "redis", "app.kubernetes.io/part-of": "kiosk"}
        # Leave 20% of the container's memory for AOF rewrite buffers and
        # fragmentation; jobs must never be evicted, so writes fail instead.
        maxmemory_mb = args.memory_mi * 8 // 10
        command = [
            "redis-server",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--dir", "/data",
            "--maxmemory", f"{maxmemory_mb}mb",
            "--maxmemory-policy", "noeviction",
            # AUTH on top of the NetworkPolicy below; Kubernetes expands the
            # variable from the Secret, so the spec never holds the password.
            "--requirepass", f"$({PASSWORD_ENV})",
        ]
        claim: dict = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": f"{args.storage_gi}Gi"}},
        }
        if args.storage_class is not None:
            claim["storageClassName"] = args.storage_class
        # Generated once and kept in the (encrypted) state; clients get it
        # through RedisCredentials (a Secret for the pods, a
        # TriggerAuthentication for KEDA), as with Memorystore.
        password = pulumi.Output.secret(random.RandomPassword(
            f"{name}-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self),
        ).result)
        secret = k8s.core.v1.Secret(
            name,
            metadata=metadata(SECRET_NAME, args.namespace, labels),
            type="Opaque",
            string_data={PASSWORD_KEY: password},
            opts=child,
        )
        password_ref = {"secretKeyRef": {"name": secret.metadata.name, "key": PASSWORD_KEY}}
        self.service = cluster_ip_service(name, "redis", args.namespace, labels, [("redis", PORT)], child)
        self.stateful_set = k8s.apps.v1.StatefulSet(
            name,
            metadata=metadata("redis", args.namespace, labels),
            spec={
                "serviceName": self.service.metadata.name,
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    # The cluster autoscaler never moves Redis to empty a node
                    # (the system nodes are a fixed count anyway).
                    "metadata": {"labels": labels, "annotations": {SAFE_TO_EVICT: "false"}},
                    "spec": {
                        "securityContext": restricted_pod(REDIS_UID, fs_group=REDIS_UID),
                        "nodeSelector": dict(args.node_selector),
                        "terminationGracePeriodSeconds": 30,
                        "containers": [{
                            "name": "redis",
                            "image": pull_ref(args.image, args.image_mirror),
                            "command": command,
                            # REDISCLI_AUTH: redis-cli (the readiness probe) authenticates with it.
                            "env": [{"name": PASSWORD_ENV, "valueFrom": password_ref},
                                    {"name": "REDISCLI_AUTH", "valueFrom": password_ref}],
                            "ports": [{"name": "redis", "containerPort": PORT}],
                            "resources": resource_requirements(args.cpu, f"{args.memory_mi}Mi"),
                            "securityContext": RESTRICTED_CONTAINER,
                            "readinessProbe": {
                                "exec": {"command": ["redis-cli", "ping"]},
                                "periodSeconds": 5,
                                "timeoutSeconds": 2,
                            },
                            "livenessProbe": {
                                "tcpSocket": {"port": "redis"},
                                "initialDelaySeconds": 15,
                                "periodSeconds": 10,
                            },
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }],
                    },
                },
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": claim}],
                # `pulumi destroy` deletes the StatefulSet: its volume goes with it
                # (GA in Kubernetes 1.32); scaling (never done: one replica) keeps it.
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
            },
            opts=child,
        )
        peers: list[dict] = [{"podSelector": {"matchLabels": REDIS_CLIENT_LABEL}}]
        for peer in args.extra_peers:
            peers.append({**namespace_selector(peer.namespace), "podSelector": {"matchLabels": dict(peer.pod_labels)}})
        ingress_only_from(name, "redis", args.namespace, labels, [(peers, [PORT])], child)
        # Node drains (version and AMI updates) may evict the single Redis pod:
        # `minAvailable: 1` on one replica would block every managed node
        # group update (PodEvictionFailure after 15 minutes on EKS). The AOF
        # on its volume keeps the queues while the pod moves.
        pod_disruption_budget(name, "redis", args.namespace, labels, child)
        self.endpoint = RedisEndpoint(host=service_host(self.service), port=PORT, password=password)
        self.register_outputs({"address": self.endpoint.address})
