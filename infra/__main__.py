"""The kiosk's Pulumi program. It only wires components: one typed config in,
each component's outputs straight into the next one's args."""

import os
import sys
from pathlib import Path

# Pulumi runs this file with infra/ as the working directory and only infra/
# on sys.path; the components live beside it at the repository root.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pulumi  # noqa: E402

from components.k8s.consumers import ConsumerPool, ConsumerPoolArgs, queue_stream  # noqa: E402
from components.k8s.frontend import Frontend, FrontendArgs  # noqa: E402
from components.k8s.images import ContainerImages, ContainerImagesArgs  # noqa: E402
from components.k8s.keda import Keda, KedaArgs  # noqa: E402
from components.k8s.namespace import KioskNamespace, KioskNamespaceArgs  # noqa: E402
from components.k8s.redis import PeerSelector, RedisServer, RedisServerArgs  # noqa: E402
from components.k8s.redis_auth import RedisCredentials, RedisCredentialsArgs  # noqa: E402
from components.k8s.tf_serving import ServedModel, TfServing, TfServingArgs  # noqa: E402
from infra import config  # noqa: E402
from infra.platforms import PLATFORMS  # noqa: E402

cfg = config.load()
platform = PLATFORMS[cfg.cloud](cfg)
cluster = platform.cluster

namespace = KioskNamespace("kiosk-ns", KioskNamespaceArgs(provider=cluster.provider, name=cfg.namespace))
keda_namespace = KioskNamespace("keda-ns", KioskNamespaceArgs(provider=cluster.provider, name=cfg.keda_namespace))
accounts = platform.service_accounts(namespace.name)

images = ContainerImages("kiosk-build", ContainerImagesArgs(
    registry=platform.registry,
    # Build context = repository root, relative so state is machine-independent.
    context=os.path.relpath(ROOT, os.getcwd()),
    tag=cfg.image_tag,
    platforms=(cfg.image_platform,),
    build_on_preview=cfg.build_images_on_preview,
))

keda = Keda("keda", KedaArgs(
    provider=cluster.provider,
    namespace=keda_namespace.name,
    chart_version=cfg.keda_chart_version,
    node_selector=cluster.system_node_labels,
))

if platform.managed_redis is not None:
    redis = platform.managed_redis
else:
    redis = RedisServer("redis", RedisServerArgs(
        provider=cluster.provider,
        namespace=namespace.name,
        image=cfg.redis_image,
        storage_gi=cfg.redis_storage_gi,
        memory_mi=cfg.redis_memory_mi,
        storage_class=cluster.storage_class,
        node_selector=cluster.system_node_labels,
        extra_peers=(PeerSelector(namespace=keda.namespace, pod_labels=keda.operator_pod_labels),),
        image_mirror=platform.image_mirror,
    )).endpoint
# Redis takes AUTH (Memorystore's password, or the in-cluster server's
# generated one): its URL reaches the pods through a Secret, its password
# KEDA's scaler through a TriggerAuthentication.
redis_credentials = RedisCredentials("redis-credentials", RedisCredentialsArgs(
    provider=cluster.provider, namespace=namespace.name, endpoint=redis, keda=keda.release,
))

tf_serving = TfServing("tf-serving", TfServingArgs(
    provider=cluster.provider,
    namespace=namespace.name,
    service_account_name=accounts.tf_serving,
    model_base_uri=platform.models_uri,
    model_sync=platform.model_sync,
    models=tuple(ServedModel(m.name, m.versions) for m in cfg.models),
    redis_address=redis.address,
    queues=tuple(queue_stream(jt) for jt in cfg.job_types),
    max_batch_size=cfg.max_batch_size,
    batch_timeout_micros=cfg.batch_timeout_micros,
    image=cfg.tf_serving_image,
    gpus_per_replica=cfg.gpus_per_replica,
    max_replicas=cfg.tf_serving_max_replicas,
    jobs_per_replica=cfg.tf_serving_jobs_per_replica,
    cooldown_seconds=cfg.tf_serving_cooldown_seconds,
    gpu_node_labels=cluster.gpu_node_labels,
    gpu_taints=cluster.gpu_taints,
    metrics_namespaces=cluster.metrics_namespaces,
    keda=keda.release,
    redis_trigger_authentication=redis_credentials.trigger_authentication,
    image_mirror=platform.image_mirror,
))

consumer_pools = [
    ConsumerPool(f"consumers-{job_type}", ConsumerPoolArgs(
        provider=cluster.provider,
        namespace=namespace.name,
        service_account_name=accounts.consumers,
        image=images.consumers_ref,
        job_type=job_type,
        redis_url=redis_credentials.url,
        redis_address=redis.address,
        storage_url=platform.storage_url,
        model_server=tf_serving.address,
        max_batch_size=cfg.max_batch_size,
        lease_seconds=cfg.lease_seconds,
        shutdown_grace_seconds=cfg.shutdown_grace_seconds,
        job_ttl_seconds=cfg.job_ttl_seconds,
        max_replicas=cfg.consumer_max_replicas,
        jobs_per_replica=cfg.consumer_jobs_per_replica,
        cpu=cfg.consumer_cpu,
        memory=cfg.consumer_memory,
        max_image_pixels=cfg.max_image_pixels,
        node_selector=cluster.worker_node_labels,
        node_taints=cluster.worker_taints,
        extra_env=platform.workload_env,
        keda=keda.release,
        redis_trigger_authentication=redis_credentials.trigger_authentication,
    ))
    for job_type in cfg.job_types
]

ingress_config = platform.ingress_config(namespace.name) if platform.ingress_config is not None else None
frontend = Frontend("frontend", FrontendArgs(
    provider=cluster.provider,
    namespace=namespace.name,
    service_account_name=accounts.frontend,
    image=images.frontend_ref,
    redis_url=redis_credentials.url,
    storage_url=platform.storage_url,
    public_url=platform.portal_url,
    auth_enabled=cfg.auth_enabled,
    replicas=cfg.frontend_replicas,
    node_selector=cluster.system_node_labels,
    host=platform.portal_host,
    ingress_class_name=platform.ingress_class_name,
    ingress_annotations=platform.ingress_annotations,
    service_annotations=platform.service_annotations,
    ingress_controller=platform.ingress_controller,
    ingress_config=ingress_config,
    extra_env=platform.workload_env,
))
portal = platform.publish_portal(frontend.address)
if platform.scrape_metrics is not None:
    platform.scrape_metrics(namespace.name, [
        tf_serving.metrics, *(pool.metrics for pool in consumer_pools), frontend.metrics,
    ])

pulumi.export("portalUrl", portal.url)
pulumi.export("portalAddress", portal.address)
pulumi.export("bucket", platform.bucket_name)
pulumi.export("registry", platform.registry.repository_url)
pulumi.export("kubeconfig", pulumi.Output.secret(cluster.kubeconfig))
for key, value in platform.outputs.items():
    pulumi.export(key, value)
if frontend.auth_token is not None:
    pulumi.export("apiToken", frontend.auth_token)
