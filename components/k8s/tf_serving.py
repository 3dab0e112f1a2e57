"""TF-Serving on the GPU pool, scaled with the queues: 0 when idle, up with work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.keda import StreamTrigger, scaled_object, scaled_object_spec
from components.k8s.objects import (
    CONFIG_CHECKSUM,
    cluster_ip_service,
    config_checksum,
    http_get,
    ingress_only_from,
    keda_scaled_deployment,
    metadata,
    namespace_selector,
    pod_disruption_budget,
    service_host,
)
from components.shapes import (
    GPU_RESOURCE,
    MODEL_CLIENT_LABEL,
    ImageMirror,
    MetricsEndpoint,
    RESTRICTED_CONTAINER,
    Taint,
    pull_ref,
    resource_requirements,
    restricted_pod,
)

GRPC_PORT = 8500
REST_PORT = 8501
CONFIG_DIR = "/etc/tf-serving"
METRICS_PATH = "/monitoring/prometheus/metrics"
SERVING_UID = 1000
# Where the model-sync sidecar keeps its state (the time of its last good copy).
SYNC_STATE_DIR = "/var/run/kiosk-model-sync"
SYNC_MARKER = f"{SYNC_STATE_DIR}/last-sync"
# The marker and the AWS CLI's cache under $HOME.
SYNC_STATE_SIZE = "64Mi"


@dataclass(frozen=True)
class ServedModel:
    name: str
    versions: Sequence[int]


@dataclass(frozen=True)
class ModelSync:
    """Copies the bucket's models into the pod, for buckets TF-Serving cannot read.

    TF-Serving 2.7 and later dropped its S3 filesystem, so on S3 the models
    reach it through a shared emptyDir that this container fills. It runs as a
    native sidecar (an init container with restartPolicy Always): the kubelet
    starts TF-Serving only once the sidecar's startup probe passes, i.e. after
    the first complete copy, and the sidecar copies again every
    `interval_seconds`, so new models and versions appear without a restart.
    """

    image: str
    # Shell command that makes "$KIOSK_MODELS_DIR" a copy of the bucket's
    # models/ (e.g. `aws s3 sync ...`); it exits non-zero when the copy failed.
    copy_command: str
    local_dir: str = "/models"
    interval_seconds: int = 60
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    cpu: str = "250m"
    memory: str = "512Mi"
    # Bound of the models' copy on the node's disk (the GPU node's 100 GiB are
    # shared with TF-Serving's image); past it the kubelet evicts the pod.
    size_limit: str = "20Gi"

    @property
    def max_age_seconds(self) -> int:
        """The liveness probe fails when the last good copy is older than this."""
        return 5 * self.interval_seconds + 300


def model_sync_script(sync: ModelSync) -> str:
    """The sidecar's loop: copy until the first copy succeeds, then every
    $KIOSK_SYNC_INTERVAL_SECONDS. Each good copy writes the time to
    $KIOSK_SYNC_MARKER, which the probes read; it is written beside it and
    renamed, so a probe never reads a half-written (empty) marker.
    """
    return (
        "set -u\n"
        f"copy_models() {{ {sync.copy_command} && date +%s > \"$KIOSK_SYNC_MARKER.new\""
        " && mv \"$KIOSK_SYNC_MARKER.new\" \"$KIOSK_SYNC_MARKER\"; }\n"
        "until copy_models; do echo 'model copy failed; retrying in 10 s' >&2; sleep 10; done\n"
        "echo \"models copied to $KIOSK_MODELS_DIR\"\n"
        "while sleep \"$KIOSK_SYNC_INTERVAL_SECONDS\"; do\n"
        "  copy_models || echo 'model copy failed; serving the previous copy' >&2\n"
        "done\n"
    )


def model_sync_probes(sync: ModelSync) -> dict[str, list[str]]:
    """Exec probe commands: `copied` once a copy succeeded, `fresh` while copies keep succeeding."""
    copied = 'test -s "$KIOSK_SYNC_MARKER"'
    fresh = f'test $(( $(date +%s) - $(cat "$KIOSK_SYNC_MARKER") )) -lt {sync.max_age_seconds}'
    return {"copied": ["/bin/sh", "-c", copied], "fresh": ["/bin/sh", "-c", fresh]}


def model_sync_container(sync: ModelSync, mirror: ImageMirror | None = None) -> dict:
    """The native-sidecar init container that keeps `sync.local_dir` filled."""
    probes = model_sync_probes(sync)
    env = {
        **sync.env,
        "KIOSK_MODELS_DIR": sync.local_dir,
        "KIOSK_SYNC_MARKER": SYNC_MARKER,
        "KIOSK_SYNC_INTERVAL_SECONDS": str(sync.interval_seconds),
        # Tools that cache credentials or config under $HOME get a writable one.
        "HOME": SYNC_STATE_DIR,
    }
    return {
        "name": "model-sync",
        "image": pull_ref(sync.image, mirror),
        "restartPolicy": "Always",
        "command": ["/bin/sh", "-c", model_sync_script(sync)],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "resources": resource_requirements(sync.cpu, sync.memory),
        "securityContext": RESTRICTED_CONTAINER,
        # The first copy may be large: allow it an hour before giving up.
        "startupProbe": {"exec": {"command": probes["copied"]}, "periodSeconds": 5, "failureThreshold": 720},
        "readinessProbe": {"exec": {"command": probes["copied"]}, "periodSeconds": 10},
        "livenessProbe": {"exec": {"command": probes["fresh"]}, "periodSeconds": 60, "failureThreshold": 3},
        "volumeMounts": [
            {"name": "models", "mountPath": sync.local_dir},
            {"name": "model-sync-state", "mountPath": SYNC_STATE_DIR},
        ],
    }


@dataclass(frozen=True)
class TfServingArgs:
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    service_account_name: pulumi.Input[str]
    # gs://<bucket>/models (or s3://...): each model lives in <uri>/<name>/<version>/.
    model_base_uri: pulumi.Input[str]
    models: Sequence[ServedModel]
    # host:port of Redis, and the streams whose length wakes TF-Serving up.
    redis_address: pulumi.Input[str]
    queues: Sequence[str]
    # Equals KIOSK_MAX_BATCH_SIZE: one config value drives both.
    max_batch_size: int = 16
    batch_timeout_micros: int = 5000
    num_batch_threads: int = 4
    max_enqueued_batches: int = 100
    image: str = "tensorflow/serving:2.21.0-gpu"
    gpus_per_replica: int = 1
    max_replicas: int = 1
    jobs_per_replica: int = 20
    cooldown_seconds: int = 600
    cpu: str = "2"
    memory: str = "8Gi"
    gpu_node_labels: Mapping[str, str] = field(default_factory=dict)
    gpu_taints: Sequence[Taint] = field(default_factory=tuple)
    # Namespaces whose pods may scrape the metrics on the REST port.
    metrics_namespaces: Sequence[str] = field(default_factory=tuple)
    # KEDA's chart: the ScaledObject CRD must exist before the ScaledObject.
    keda: pulumi.Resource | None = None
    # Docker Hub images (TF-Serving's, the model sync's) are pulled through it.
    image_mirror: ImageMirror | None = None
    # TriggerAuthentication with Redis's password for KEDA's scaler, if Redis takes AUTH.
    redis_trigger_authentication: str | None = None
    # Set when TF-Serving cannot read the bucket itself (S3): model_base_uri is
    # then the pod-local copy, `model_sync.local_dir`.
    model_sync: ModelSync | None = None


def model_config(base_uri: str, models: Sequence[ServedModel]) -> str:
    """ModelServerConfig text proto (--model_config_file)."""
    entries = []
    for m in models:
        versions = " ".join(f"versions: {v}" for v in m.versions)
        entries.append(
            "  config {\n"
            f"    name: '{m.name}'\n"
            f"    base_path: '{base_uri.rstrip('/')}/{m.name}'\n"
            "    model_platform: 'tensorflow'\n"
            f"    model_version_policy {{ specific {{ {versions} }} }}\n"
            "  }\n"
        )
    return "model_config_list {\n" + "".join(entries) + "}\n"


def batching_parameters(max_batch_size: int, batch_timeout_micros: int, num_batch_threads: int,
                        max_enqueued_batches: int) -> str:
    """BatchingParameters text proto (--batching_parameters_file)."""
    return (
        f"max_batch_size {{ value: {max_batch_size} }}\n"
        f"batch_timeout_micros {{ value: {batch_timeout_micros} }}\n"
        f"num_batch_threads {{ value: {num_batch_threads} }}\n"
        f"max_enqueued_batches {{ value: {max_enqueued_batches} }}\n"
    )


def monitoring_config() -> str:
    """MonitoringConfig text proto (--monitoring_config_file): Prometheus on the REST port."""
    return f'prometheus_config {{\n  enable: true,\n  path: "{METRICS_PATH}"\n}}\n'


class TfServing(pulumi.ComponentResource):
    """ConfigMap, Deployment, Service, ScaledObject, NetworkPolicy and PDB."""

    def __init__(self, name: str, args: TfServingArgs, opts: pulumi.ResourceOptions | None = None):
        if not args.models:
            raise ValueError(f"TfServing {name}: at least one model is required")
        if not args.queues:
            raise ValueError(f"TfServing {name}: at least one queue must drive its scaling")
        for key in ("max_batch_size", "gpus_per_replica", "max_replicas", "jobs_per_replica"):
            if getattr(args, key) < 1:
                raise ValueError(f"TfServing {name}: {key} must be at least 1")
        if any(not m.versions for m in args.models):
            raise ValueError(f"TfServing {name}: every model needs at least one version")
        if args.model_sync is not None:
            sync = args.model_sync
            if isinstance(args.model_base_uri, str) and args.model_base_uri != sync.local_dir:
                raise ValueError(f"TfServing {name}: with model_sync, model_base_uri must be {sync.local_dir!r}")
            if sync.interval_seconds < 10 or ":" not in sync.image or not sync.copy_command.strip():
                raise ValueError(
                    f"TfServing {name}: model_sync needs a pinned image, a copy command and an interval >= 10 s"
                )
        super().__init__("kiosk:k8s:TfServing", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        labels = {"app.kubernetes.io/name": "tf-serving", "app.kubernetes.io/part-of": "kiosk"}

        # TF-Serving rereads models.config (polled); the batching and
        # monitoring files are read at start only, so a change to them rolls
        # the pods through this checksum on the pod template.
        startup_files = {
            "batching.config": batching_parameters(
                args.max_batch_size, args.batch_timeout_micros, args.num_batch_threads,
                args.max_enqueued_batches,
            ),
            "monitoring.config": monitoring_config(),
        }
        config = k8s.core.v1.ConfigMap(
            name,
            metadata=metadata("tf-serving", args.namespace, labels),
            data={
                "models.config": pulumi.Output.from_input(args.model_base_uri).apply(
                    lambda uri: model_config(uri, args.models)
                ),
                **startup_files,
            },
            opts=child,
        )
        # Ready only once the default model is loaded: the metadata endpoint
        # answers 404 until a servable is AVAILABLE, whereas the status
        # endpoint answers 200 while the model is still LOADING.
        default = args.models[0]
        ready_path = f"/v1/models/{default.name}/versions/{default.versions[0]}/metadata"
        gpu = {GPU_RESOURCE: str(args.gpus_per_replica)}
        container = {
            "name": "tf-serving",
            "image": pull_ref(args.image, args.image_mirror),
            # The image's entrypoint script adds --model_name/--model_base_path
            # for a single model; the server itself is run with the config file.
            "command": ["tensorflow_model_server"],
            "args": [
                f"--port={GRPC_PORT}",
                f"--rest_api_port={REST_PORT}",
                f"--model_config_file={CONFIG_DIR}/models.config",
                "--model_config_file_poll_wait_seconds=60",
                "--enable_batching=true",
                f"--batching_parameters_file={CONFIG_DIR}/batching.config",
                f"--monitoring_config_file={CONFIG_DIR}/monitoring.config",
            ],
            "ports": [
                {"name": "grpc", "containerPort": GRPC_PORT},
                {"name": "http", "containerPort": REST_PORT},
            ],
            "resources": resource_requirements(args.cpu, args.memory, extra=gpu),
            "securityContext": RESTRICTED_CONTAINER,
            "startupProbe": {**http_get(ready_path, "http"), "periodSeconds": 10, "failureThreshold": 60},
            "readinessProbe": {**http_get(ready_path, "http"), "periodSeconds": 10, "timeoutSeconds": 5},
            "livenessProbe": {
                "tcpSocket": {"port": "grpc"},
                "periodSeconds": 20,
                "failureThreshold": 3,
            },
            "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
        }
        volumes: list[dict] = [{"name": "config", "configMap": {"name": config.metadata.name}}]
        pod_extra: dict = {}
        if args.model_sync is not None:
            container["volumeMounts"].append(
                {"name": "models", "mountPath": args.model_sync.local_dir, "readOnly": True})
            volumes += [{"name": "models", "emptyDir": {"sizeLimit": args.model_sync.size_limit}},
                        {"name": "model-sync-state", "emptyDir": {"sizeLimit": SYNC_STATE_SIZE}}]
            pod_extra["initContainers"] = [model_sync_container(args.model_sync, args.image_mirror)]
        self.deployment = keda_scaled_deployment(name, "tf-serving", args.namespace, labels, {
            "metadata": {"labels": labels, "annotations": {CONFIG_CHECKSUM: config_checksum(startup_files)}},
            "spec": {
                "serviceAccountName": args.service_account_name,
                "securityContext": restricted_pod(SERVING_UID),
                "nodeSelector": dict(args.gpu_node_labels),
                "tolerations": [t.toleration() for t in args.gpu_taints],
                "terminationGracePeriodSeconds": 30,
                **pod_extra,
                "containers": [container],
                "volumes": volumes,
            },
        }, child)
        self.service = cluster_ip_service(
            name, "tf-serving", args.namespace, labels, [("grpc", GRPC_PORT), ("http", REST_PORT)], child,
        )
        triggers = [StreamTrigger(args.redis_address, q, args.jobs_per_replica, args.redis_trigger_authentication)
                    for q in args.queues]
        scaled_object(
            name,
            "tf-serving",
            args.namespace,
            labels,
            scaled_object_spec(self.deployment.metadata.name, triggers, args.max_replicas,
                               cooldown_seconds=args.cooldown_seconds),
            child,
            keda=args.keda,
        )
        ingress_only_from(name, "tf-serving", args.namespace, labels, [
            ([{"podSelector": {"matchLabels": MODEL_CLIENT_LABEL}}], [GRPC_PORT, REST_PORT]),
            # Metrics scrapers read the REST port only.
            ([namespace_selector(ns) for ns in args.metrics_namespaces], [REST_PORT]),
        ], child)
        pod_disruption_budget(name, "tf-serving", args.namespace, labels, child)
        self.address = pulumi.Output.concat(service_host(self.service), ":", str(GRPC_PORT))
        # Prometheus metrics on the REST port (monitoring.config).
        self.metrics = MetricsEndpoint(name="tf-serving", pod_labels=labels, port="http", path=METRICS_PATH)
        self.register_outputs({"address": self.address})
