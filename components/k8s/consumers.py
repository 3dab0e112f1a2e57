"""Consumers of one job type: a Deployment scaled by KEDA on its queue's length."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
from kubernetes.utils import parse_quantity

from consumers import sizing

from components.k8s.keda import StreamTrigger, scaled_object, scaled_object_spec
from components.k8s.objects import http_get, keda_scaled_deployment, pod_disruption_budget
from components.shapes import (
    MODEL_CLIENT_LABEL,
    REDIS_CLIENT_LABEL,
    RESTRICTED_CONTAINER,
    MetricsEndpoint,
    SecretKeyRef,
    Taint,
    env_list,
    resource_requirements,
    restricted_pod,
)

METRICS_PORT = 9100
APP_UID = 10001  # the non-root user of consumers/Dockerfile
JOB_TYPE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$")
# Time Kubernetes allows beyond KIOSK_SHUTDOWN_GRACE_SECONDS before SIGKILL:
# the consumer hands its job back within the grace, then exits.
GRACE_MARGIN_SECONDS = 30
SCRATCH = "/scratch"  # a consumer's scratch volume (TMPDIR): large images are streamed through it
# The container's memory limit in MiB, from the downward API: the consumer lowers its pixel limit to it.
MEMORY_LIMIT_ENV = {"name": "KIOSK_MEMORY_LIMIT_MIB", "valueFrom": {"resourceFieldRef": {
    "containerName": "consumer", "resource": "limits.memory", "divisor": "1Mi"}}}


def scratch_size(max_image_pixels: int) -> str:
    """The scratch volume for streaming an image of `max_image_pixels` uploaded uncompressed (GiB)."""
    needed = sizing.scratch_needed_bytes(max_image_pixels, sizing.INPUT_BYTES_PER_PIXEL * max_image_pixels)
    return f"{-(-needed // 2**30)}Gi"


def check_memory(name: str, memory: str, max_image_pixels: int, large_image_pixels: int) -> None:
    """Refuse a consumer memory below what its images need by the measured figures (`consumers.sizing`)."""
    needed = sizing.memory_needed_mib(max_image_pixels, large_image_pixels)
    if parse_quantity(memory) < needed * 2**20:
        raise ValueError(f"ConsumerPool {name}: memory {memory} is below the {needed} Mi that images up to "
                         f"{max_image_pixels:,} pixels need (streamed; {large_image_pixels:,} held whole): "
                         "raise consumerMemory or lower maxImagePixels")


def queue_stream(job_type: str) -> str:
    """The Redis stream holding a job type's outstanding work."""
    return f"queue:{job_type}"


@dataclass(frozen=True)
class ConsumerPoolArgs:
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    service_account_name: pulumi.Input[str]
    image: pulumi.Input[str]
    job_type: str
    # Plain, or a Secret key when the URL holds Redis's password.
    redis_url: pulumi.Input[str] | SecretKeyRef
    redis_address: pulumi.Input[str]
    storage_url: pulumi.Input[str]
    model_server: pulumi.Input[str]
    max_batch_size: int = 16
    lease_seconds: int = 30
    shutdown_grace_seconds: int = 60
    job_ttl_seconds: int = 86400
    max_replicas: int = 10
    jobs_per_replica: int = 2
    cpu: str = "1"
    memory: str = "4Gi"
    # The largest image a consumer takes, and the largest it holds whole (above it: streamed).
    max_image_pixels: int = 1_000_000_000
    large_image_pixels: int = 16_000_000
    node_selector: Mapping[str, str] = field(default_factory=dict)
    # Taints of the nodes `node_selector` picks, which the pods tolerate.
    node_taints: Sequence[Taint] = field(default_factory=tuple)
    extra_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    keda: pulumi.Resource | None = None
    # TriggerAuthentication with Redis's password for KEDA's scaler, if Redis takes AUTH.
    redis_trigger_authentication: str | None = None


class ConsumerPool(pulumi.ComponentResource):
    """Deployment `consumers-<jobType>`, its ScaledObject (0..max) and PDB."""

    def __init__(self, name: str, args: ConsumerPoolArgs, opts: pulumi.ResourceOptions | None = None):
        if not JOB_TYPE.match(args.job_type):
            raise ValueError(f"ConsumerPool {name}: job type {args.job_type!r} must be a lowercase DNS label")
        for key in ("max_batch_size", "lease_seconds", "shutdown_grace_seconds", "max_replicas", "jobs_per_replica"):
            if getattr(args, key) < 1:
                raise ValueError(f"ConsumerPool {name}: {key} must be at least 1")
        check_memory(name, args.memory, args.max_image_pixels, args.large_image_pixels)
        super().__init__("kiosk:k8s:ConsumerPool", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        k8s_name = f"consumers-{args.job_type}"
        labels = {
            "app.kubernetes.io/name": "consumers",
            "app.kubernetes.io/instance": k8s_name,
            "app.kubernetes.io/part-of": "kiosk",
            "kiosk.dev/job-type": args.job_type,
        }
        env = {
            "KIOSK_REDIS_URL": args.redis_url,
            "KIOSK_STORAGE_URL": args.storage_url,
            "KIOSK_MODEL_SERVER": args.model_server,
            "KIOSK_JOB_TYPE": args.job_type,
            "KIOSK_MAX_BATCH_SIZE": str(args.max_batch_size),
            "KIOSK_LEASE_SECONDS": str(args.lease_seconds),
            "KIOSK_SHUTDOWN_GRACE_SECONDS": str(args.shutdown_grace_seconds),
            "KIOSK_JOB_TTL_SECONDS": str(args.job_ttl_seconds),
            "KIOSK_METRICS_PORT": str(METRICS_PORT),
            "KIOSK_MAX_IMAGE_PIXELS": str(args.max_image_pixels),
            "KIOSK_LARGE_IMAGE_PIXELS": str(args.large_image_pixels),
            "TMPDIR": SCRATCH,
            **sizing.MALLOC_ENV,
            **args.extra_env,
        }
        metrics_probe = http_get("/metrics", "metrics")
        scratch = scratch_size(args.max_image_pixels)
        self.deployment = keda_scaled_deployment(name, k8s_name, args.namespace, labels, {
            "metadata": {
                "labels": {**labels, **REDIS_CLIENT_LABEL, **MODEL_CLIENT_LABEL},
                "annotations": {"prometheus.io/port": str(METRICS_PORT)},
            },
            "spec": {
                "serviceAccountName": args.service_account_name,
                "securityContext": restricted_pod(APP_UID),
                "nodeSelector": dict(args.node_selector),
                "tolerations": [t.toleration() for t in args.node_taints],
                "terminationGracePeriodSeconds": args.shutdown_grace_seconds + GRACE_MARGIN_SECONDS,
                "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": scratch}}],
                "containers": [{
                    "name": "consumer",
                    "image": args.image,
                    "command": ["python", "-m", "consumers"],
                    "env": [*env_list(env), MEMORY_LIMIT_ENV],
                    "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
                    "resources": resource_requirements(
                        args.cpu, args.memory, extra={"ephemeral-storage": scratch}),
                    "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH}],
                    "securityContext": RESTRICTED_CONTAINER,
                    # No HTTP API: the metrics endpoint is the sign of life.
                    "readinessProbe": {**metrics_probe, "periodSeconds": 10},
                    "livenessProbe": {**metrics_probe, "periodSeconds": 20, "failureThreshold": 3,
                                      "initialDelaySeconds": 30},
                }],
            },
        }, child)
        trigger = StreamTrigger(args.redis_address, queue_stream(args.job_type), args.jobs_per_replica,
                                args.redis_trigger_authentication)
        self.scaled_object = scaled_object(
            name,
            k8s_name,
            args.namespace,
            labels,
            scaled_object_spec(self.deployment.metadata.name, [trigger], args.max_replicas),
            child,
            keda=args.keda,
        )
        pod_disruption_budget(name, k8s_name, args.namespace, labels, child)
        self.metrics = MetricsEndpoint(name=k8s_name, pod_labels=labels, port="metrics", path="/metrics")
        self.register_outputs({"deployment": self.deployment.metadata.name})
