"""TF-Serving on the GPU pool, scaled with the queues: 0 when idle, up with work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.keda import StreamTrigger, scaled_object, scaled_object_spec
from components.shapes import (
    GPU_RESOURCE,
    MODEL_CLIENT_LABEL,
    RESTRICTED_CONTAINER,
    Taint,
    resource_requirements,
    restricted_pod,
)

GRPC_PORT = 8500
REST_PORT = 8501
CONFIG_DIR = "/etc/tf-serving"
METRICS_PATH = "/monitoring/prometheus/metrics"
SERVING_UID = 1000


@dataclass(frozen=True)
class ServedModel:
    name: str
    versions: Sequence[int]


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
    image: str = "tensorflow/serving:2.18.0-gpu"
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
        super().__init__("kiosk:k8s:TfServing", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        labels = {"app.kubernetes.io/name": "tf-serving", "app.kubernetes.io/part-of": "kiosk"}

        config = k8s.core.v1.ConfigMap(
            name,
            metadata={"name": "tf-serving", "namespace": args.namespace, "labels": labels},
            data={
                "models.config": pulumi.Output.from_input(args.model_base_uri).apply(
                    lambda uri: model_config(uri, args.models)
                ),
                "batching.config": batching_parameters(
                    args.max_batch_size, args.batch_timeout_micros, args.num_batch_threads,
                    args.max_enqueued_batches,
                ),
                "monitoring.config": monitoring_config(),
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
            "image": args.image,
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
            "startupProbe": {
                "httpGet": {"path": ready_path, "port": "http"},
                "periodSeconds": 10,
                "failureThreshold": 60,
            },
            "readinessProbe": {
                "httpGet": {"path": ready_path, "port": "http"},
                "periodSeconds": 10,
                "timeoutSeconds": 5,
            },
            "livenessProbe": {
                "tcpSocket": {"port": "grpc"},
                "periodSeconds": 20,
                "failureThreshold": 3,
            },
            "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
        }
        self.deployment = k8s.apps.v1.Deployment(
            name,
            metadata={
                "name": "tf-serving",
                "namespace": args.namespace,
                "labels": labels,
                # KEDA scales this Deployment to zero right after creation;
                # waiting for a ready pod would wait for a GPU node nobody needs.
                "annotations": {"pulumi.com/skipAwait": "true"},
            },
            spec={
                # No `replicas`: KEDA's HPA owns the field (0..max_replicas), so
                # server-side apply never fights it.
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": args.service_account_name,
                        "securityContext": restricted_pod(SERVING_UID),
                        "nodeSelector": dict(args.gpu_node_labels),
                        "tolerations": [t.toleration() for t in args.gpu_taints],
                        "terminationGracePeriodSeconds": 30,
                        "containers": [container],
                        "volumes": [{"name": "config", "configMap": {"name": config.metadata.name}}],
                    },
                },
            },
            opts=child,
        )
        self.service = k8s.core.v1.Service(
            name,
            metadata={"name": "tf-serving", "namespace": args.namespace, "labels": labels},
            spec={
                "type": "ClusterIP",
                "selector": labels,
                "ports": [
                    {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc"},
                    {"name": "http", "port": REST_PORT, "targetPort": "http"},
                ],
            },
            opts=child,
        )
        triggers = [StreamTrigger(args.redis_address, q, args.jobs_per_replica) for q in args.queues]
        scaled_object(
            name,
            "tf-serving",
            args.namespace,
            labels,
            scaled_object_spec(self.deployment.metadata.name, triggers, args.max_replicas,
                               cooldown_seconds=args.cooldown_seconds),
            pulumi.ResourceOptions(parent=self, provider=args.provider,
                                   depends_on=[args.keda] if args.keda is not None else None),
        )
        metrics_peers = [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
            for ns in args.metrics_namespaces
        ]
        k8s.networking.v1.NetworkPolicy(
            name,
            metadata={"name": "tf-serving", "namespace": args.namespace, "labels": labels},
            spec={
                "podSelector": {"matchLabels": labels},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": MODEL_CLIENT_LABEL}}],
                        "ports": [{"protocol": "TCP", "port": GRPC_PORT}, {"protocol": "TCP", "port": REST_PORT}],
                    },
                    *([{"from": metrics_peers, "ports": [{"protocol": "TCP", "port": REST_PORT}]}]
                      if metrics_peers else []),
                ],
            },
            opts=child,
        )
        k8s.policy.v1.PodDisruptionBudget(
            name,
            metadata={"name": "tf-serving", "namespace": args.namespace, "labels": labels},
            spec={"maxUnavailable": 1, "selector": {"matchLabels": labels}},
            opts=child,
        )
        self.address = pulumi.Output.concat(
            self.service.metadata.name, ".", self.service.metadata.namespace, ".svc.cluster.local:", str(GRPC_PORT),
        )
        self.register_outputs({"address": self.address})
