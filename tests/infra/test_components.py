"""Focused tests of single components: argument validation, generated configs,
and what each one declares when constructed on its own under mocks."""

from __future__ import annotations

import hashlib
import json

import pulumi
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf import wrappers_pb2  # noqa: F401  (registers Int64Value in the default pool)
from pulumi.runtime.sync_await import _sync_await
from tensorflow_serving.config import model_server_config_pb2

from components.gcp.bucket import KioskBucket, KioskBucketArgs
from components.gcp.gke import GkeCluster, GkeClusterArgs
from components.gcp.memorystore import Memorystore, MemorystoreArgs
from components.gcp.network import Network, NetworkArgs
from components.gcp.workload_identity import GkeWorkloadIdentity, GkeWorkloadIdentityArgs
from components.k8s.consumers import ConsumerPool, ConsumerPoolArgs
from components.k8s.frontend import Frontend, FrontendArgs
from components.k8s.images import ContainerImages, ContainerImagesArgs
from components.k8s.keda import Keda, KedaArgs, StreamTrigger, scaled_object_spec
from components.k8s.namespace import KioskNamespace, KioskNamespaceArgs
from components.k8s.redis import RedisServer, RedisServerArgs
from components.k8s.tf_serving import (
    ServedModel,
    TfServing,
    TfServingArgs,
    batching_parameters,
    model_config,
    monitoring_config,
)
from components.shapes import RegistryLogin
from infra.config import ModelSpec
from infra.platforms import account_id_prefix
from tests.infra.mockrun import construct, k8s_provider
from tests.infra.run_stack import _plain
from tests.infra.stackrun import unsecret

# --- argument validation (before anything is registered) ------------------------------

LOGIN = RegistryLogin(address="r", repository_url="r/p", username="u", password="p")


@pytest.mark.parametrize("build,match", [
    (lambda: Network("n", NetworkArgs(region="r", pods_cidr="10.10.0.0/16")), "overlaps"),
    (lambda: Network("n", NetworkArgs(region="r", master_cidr="172.16.0.0/24")), "/28"),
    (lambda: KioskBucket("b", KioskBucketArgs(location="US", uploads_expire_days=0)), "uploads_expire_days"),
    (lambda: GkeCluster("c", GkeClusterArgs(project="p", location="l", network="n", subnetwork="s",
                                            master_cidr="172.16.0.32/28", account_id_prefix="kiosk-t",
                                            master_authorized_cidrs=("0.0.0.0/0",))), "open the control plane"),
    (lambda: GkeCluster("c", GkeClusterArgs(project="p", location="l", network="n", subnetwork="s",
                                            master_cidr="172.16.0.32/28", account_id_prefix="kiosk-t",
                                            release_channel="NIGHTLY")), "release_channel"),
    (lambda: GkeCluster("c", GkeClusterArgs(project="p", location="l", network="n", subnetwork="s",
                                            master_cidr="172.16.0.32/28", account_id_prefix="kiosk-t",
                                            dns_endpoint=False)), "master_authorized_cidrs"),
    (lambda: Memorystore("m", MemorystoreArgs(region="r", network="n", tier="PREMIUM")), "tier"),
    (lambda: KioskNamespace("ns", KioskNamespaceArgs(provider=None, name="Kiosk_NS")), "DNS label"),
    (lambda: Keda("k", KedaArgs(provider=None, namespace="keda", chart_version="2.x")), "exact chart version"),
    (lambda: RedisServer("r", RedisServerArgs(provider=None, namespace="n", image="redis")), "pin the image"),
    (lambda: ContainerImages("i", ContainerImagesArgs(registry=LOGIN, context=".", tag="a:b")), "invalid tag"),
    (lambda: ContainerImages("i", ContainerImagesArgs(registry=LOGIN, context=".", platforms=("linux/z80",))),
     "platform"),
    (lambda: ConsumerPool("c", ConsumerPoolArgs(provider=None, namespace="n", service_account_name="s",
                                                image="i", job_type="Segmentation!", redis_url="u",
                                                redis_address="a", storage_url="s", model_server="m")),
     "job type"),
    (lambda: TfServing("t", TfServingArgs(provider=None, namespace="n", service_account_name="s",
                                          model_base_uri="gs://b/models", models=(), redis_address="a",
                                          queues=("queue:x",))), "model"),
    (lambda: TfServing("t", TfServingArgs(provider=None, namespace="n", service_account_name="s",
                                          model_base_uri="gs://b/models", models=(ServedModel("M", (1,)),),
                                          redis_address="a", queues=())), "queue"),
    (lambda: Frontend("f", FrontendArgs(provider=None, namespace="n", service_account_name="s", image="i",
                                        redis_url="u", storage_url="s", public_url="p",
                                        tls_secret_name="tls")), "needs a host"),
])
def test_invalid_args_raise_value_error(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("text", ["NuclearSegmentation", "X:", ":1", "X:one", "X:0"])
def test_model_spec_rejects_bad_entries(text):
    with pytest.raises(ValueError):
        ModelSpec.parse(text)


def test_model_spec_parses_versions():
    assert ModelSpec.parse("NuclearSegmentation:1,3") == ModelSpec("NuclearSegmentation", (1, 3))


def test_account_id_prefix_is_short_and_valid():
    assert account_id_prefix("dev-gcp") == "kiosk-dev-gcp"
    long = account_id_prefix("a-very-long-production-stack-name")
    assert len(long) <= 23 and not long.endswith("-")


def test_scaled_object_spec_requires_triggers_and_a_ceiling():
    with pytest.raises(ValueError):
        scaled_object_spec("d", [], 3)
    with pytest.raises(ValueError):
        scaled_object_spec("d", [StreamTrigger("r:6379", "queue:x", 2)], 0)


# --- generated TF-Serving configs parse as the protos TF-Serving reads ---------------

def _batching_parameters_class():
    """BatchingParameters' fields used here (tensorflow_serving/servables/tensorflow/
    session_bundle_config.proto); the pip package does not ship that proto."""
    file = descriptor_pb2.FileDescriptorProto(name="kiosk_test_batching.proto", package="kiosktest",
                                              dependency=["google/protobuf/wrappers.proto"])
    msg = file.message_type.add(name="BatchingParameters")
    for number, field in enumerate(
            ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"), start=1):
        msg.field.add(name=field, number=number, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                      type_name=".google.protobuf.Int64Value")
    mon = file.message_type.add(name="PrometheusConfig")
    mon.field.add(name="enable", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_BOOL)
    mon.field.add(name="path", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING)
    top = file.message_type.add(name="MonitoringConfig")
    top.field.add(name="prometheus_config", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                  type_name=".kiosktest.PrometheusConfig")
    pool = descriptor_pool.Default()
    try:
        pool.Add(file)
    except TypeError:
        pass  # already added by an earlier test
    get = message_factory.GetMessageClass
    return (get(pool.FindMessageTypeByName("kiosktest.BatchingParameters")),
            get(pool.FindMessageTypeByName("kiosktest.MonitoringConfig")))


def test_model_config_parses_and_lists_every_version():
    text = model_config("gs://bucket/models/", [ServedModel("A", (1, 2)), ServedModel("B", (3,))])
    parsed = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    configs = {c.name: c for c in parsed.model_config_list.config}
    assert configs["A"].base_path == "gs://bucket/models/A"
    assert list(configs["A"].model_version_policy.specific.versions) == [1, 2]
    assert list(configs["B"].model_version_policy.specific.versions) == [3]
    assert all(c.model_platform == "tensorflow" for c in configs.values())


def test_batching_and_monitoring_configs_parse():
    batching_cls, monitoring_cls = _batching_parameters_class()
    batching = text_format.Parse(batching_parameters(32, 2000, 4, 100), batching_cls())
    assert batching.max_batch_size.value == 32 and batching.batch_timeout_micros.value == 2000
    monitoring = text_format.Parse(monitoring_config(), monitoring_cls())
    assert monitoring.prometheus_config.enable and monitoring.prometheus_config.path.startswith("/")


# --- components constructed on their own ----------------------------------------------

def test_gke_cluster_without_dns_endpoint_uses_ip_and_ca(mocks):
    holder = {}

    def build():
        cluster = GkeCluster("c", GkeClusterArgs(
            project="p", location="us-central1-a", network="n", subnetwork="s", master_cidr="172.16.0.32/28",
            account_id_prefix="kiosk-t", dns_endpoint=False, master_authorized_cidrs=("198.51.100.0/24",)))
        holder["kubeconfig"] = cluster.kubeconfig
    construct(build)
    (provider,) = [r for r in mocks.resources if r.typ == "pulumi:providers:kubernetes"]
    kubeconfig = json.loads(unsecret(_plain(provider.inputs))["kubeconfig"])
    cluster_entry = kubeconfig["clusters"][0]["cluster"]
    assert cluster_entry["server"] == "https://203.0.113.1"
    assert cluster_entry["certificate-authority-data"] == "Y2VydA=="
    assert kubeconfig["users"][0]["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert _sync_await(holder["kubeconfig"].is_secret())
    (cluster,) = mocks.of_type("gcp:container/cluster:Cluster")
    assert "controlPlaneEndpointsConfig" not in cluster
    blocks = cluster["masterAuthorizedNetworksConfig"]["cidrBlocks"]
    assert [b["cidrBlock"] for b in blocks] == ["198.51.100.0/24"]


def test_bucket_cors_and_expiry(mocks):
    construct(lambda: KioskBucket("b", KioskBucketArgs(location="US", uploads_expire_days=2, output_expire_days=9,
                                                       cors_origins=("https://kiosk.example.org",))))
    (bucket,) = mocks.of_type("gcp:storage/bucket:Bucket")
    ages = {r["condition"]["matchesPrefixes"][0]: r["condition"]["age"] for r in bucket["lifecycleRules"]}
    assert ages == {"uploads/": 2, "output/": 9}
    assert bucket["cors"][0]["origins"] == ["https://kiosk.example.org"]
    assert "PUT" in bucket["cors"][0]["methods"]


def test_memorystore_never_evicts_jobs(mocks):
    construct(lambda: Memorystore("m", MemorystoreArgs(region="r", network="n")))
    (instance,) = mocks.of_type("gcp:redis/instance:Instance")
    assert instance["redisConfigs"]["maxmemory-policy"] == "noeviction"
    assert instance["redisVersion"].startswith("REDIS_7")
    assert instance["authEnabled"] is True


def test_redis_credentials_only_for_a_password(mocks):
    from components.k8s.redis_auth import RedisCredentials, RedisCredentialsArgs
    from components.shapes import RedisEndpoint, SecretKeyRef

    holder = {}

    def build():
        provider = k8s_provider()
        plain = RedisCredentials("plain", RedisCredentialsArgs(
            provider=provider, namespace="kiosk", endpoint=RedisEndpoint(host=pulumi.Output.from_input("r"))))
        holder["plain"] = (plain.url, plain.trigger_authentication)
        authed = RedisCredentials("authed", RedisCredentialsArgs(
            provider=provider, namespace="kiosk",
            endpoint=RedisEndpoint(host=pulumi.Output.from_input("10.0.0.3"),
                                   password=pulumi.Output.secret("s3cret"))))
        holder["authed"] = (authed.url, authed.trigger_authentication)
    construct(build)
    url, trigger_auth = holder["plain"]
    assert _sync_await(url.future()) == "redis://r:6379/0" and trigger_auth is None
    url, trigger_auth = holder["authed"]
    assert isinstance(url, SecretKeyRef) and url.key == "url" and trigger_auth == "redis-auth"
    (secret,) = mocks.of_type("kubernetes:core/v1:Secret")
    assert secret["stringData"] == {"url": "redis://:s3cret@10.0.0.3:6379/0", "password": "s3cret"}
    (auth,) = mocks.of_type("kubernetes:keda.sh/v1alpha1:TriggerAuthentication")
    assert auth["spec"]["secretTargetRef"] == [{"parameter": "password", "name": "redis-auth", "key": "password"}]


def test_workload_identity_roles_are_least_privilege(mocks):
    construct(lambda: GkeWorkloadIdentity("id", GkeWorkloadIdentityArgs(
        provider=k8s_provider(), namespace="kiosk", project="p", bucket="b", account_id_prefix="kiosk-t")))
    roles = {}
    for m in mocks.of_type("gcp:storage/bucketIAMMember:BucketIAMMember"):
        roles.setdefault(m["member"].split("@")[0].split("-")[-1], set()).add(m["role"])
    assert roles == {
        "cons": {"roles/storage.objectUser"},
        "front": {"roles/storage.objectCreator", "roles/storage.objectViewer"},
        "tfs": {"roles/storage.objectViewer"},
    }
    signer = [m for m in mocks.of_type("gcp:serviceaccount/iAMMember:IAMMember")
              if m["role"] == "roles/iam.serviceAccountTokenCreator"]
    assert len(signer) == 1 and "front" in signer[0]["member"]
    for sa in mocks.of_type("kubernetes:core/v1:ServiceAccount"):
        assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(".iam.gserviceaccount.com")


def test_consumer_pools_per_job_type(mocks):
    def build():
        provider = k8s_provider()
        for job_type in ("segmentation", "tracking"):
            ConsumerPool(f"consumers-{job_type}", ConsumerPoolArgs(
                provider=provider, namespace="kiosk", service_account_name="sa", image="img@sha256:x",
                job_type=job_type, redis_url="redis://r:6379/0", redis_address="r:6379", storage_url="gs://b",
                model_server="tf:8500", shutdown_grace_seconds=90, max_replicas=5))
    construct(build)
    deployments = {d["metadata"]["name"]: d for d in mocks.of_type("kubernetes:apps/v1:Deployment")}
    assert set(deployments) == {"consumers-segmentation", "consumers-tracking"}
    for name, d in deployments.items():
        assert d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 120
    scaled = {s["spec"]["triggers"][0]["metadata"]["stream"]: s for s in
              mocks.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")}
    assert set(scaled) == {"queue:segmentation", "queue:tracking"}
    assert all(s["spec"]["maxReplicaCount"] == 5 for s in scaled.values())


def test_tf_serving_wakes_on_any_queue(mocks):
    construct(lambda: TfServing("tfs", TfServingArgs(
        provider=k8s_provider(), namespace="kiosk", service_account_name="sa", model_base_uri="gs://b/models",
        models=(ServedModel("M", (1,)),), redis_address="r:6379", queues=("queue:a", "queue:b"),
        max_replicas=4, gpus_per_replica=2)))
    (so,) = mocks.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
    assert [t["metadata"]["stream"] for t in so["spec"]["triggers"]] == ["queue:a", "queue:b"]
    (deployment,) = mocks.of_type("kubernetes:apps/v1:Deployment")
    limits = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "2"


def test_redis_persists_with_aof_and_admits_only_clients(mocks):
    construct(lambda: RedisServer("redis", RedisServerArgs(provider=k8s_provider(), namespace="kiosk",
                                                           memory_mi=1000)))
    (sts,) = mocks.of_type("kubernetes:apps/v1:StatefulSet")
    command = sts["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert command[command.index("--maxmemory") + 1] == "800mb"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete", \
        "destroy must not leave the Redis volume behind"
    (policy,) = mocks.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    assert policy["spec"]["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"kiosk.dev/redis-client": "true"}}}]


def test_frontend_without_auth_and_with_tls_secret(mocks):
    construct(lambda: Frontend("fe", FrontendArgs(
        provider=k8s_provider(), namespace="kiosk", service_account_name="sa", image="img", redis_url="u",
        storage_url="gs://b", public_url="https://kiosk.example.org", auth_enabled=False,
        host="kiosk.example.org", tls_secret_name="kiosk-tls", ingress_class_name="nginx")))
    assert mocks.of_type("kubernetes:core/v1:Secret") == []
    assert mocks.of_type("random:index/randomPassword:RandomPassword") == []
    (deployment,) = mocks.of_type("kubernetes:apps/v1:Deployment")
    env = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "KIOSK_AUTH_TOKEN" not in env and "KIOSK_PUBLIC_URL" in env
    (ingress,) = mocks.of_type("kubernetes:networking.k8s.io/v1:Ingress")
    assert ingress["spec"]["tls"] == [{"hosts": ["kiosk.example.org"], "secretName": "kiosk-tls"}]
    assert ingress["spec"]["ingressClassName"] == "nginx"


def test_model_files_lists_present_versions_and_skips_the_rest(tmp_path):
    from components.models import model_files

    (tmp_path / "A" / "1" / "variables").mkdir(parents=True)
    (tmp_path / "A" / "1" / "saved_model.pb").write_bytes(b"graph")
    (tmp_path / "A" / "1" / "variables" / "variables.index").write_bytes(b"idx")
    (tmp_path / "A" / "1" / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "A" / "2").mkdir()  # an empty version uploads nothing
    files = model_files(tmp_path, [("A", (1, 2, 3)), ("Missing", (1,))], relative_to=tmp_path / "infra")
    assert [f.key for f in files] == ["models/A/1/saved_model.pb", "models/A/1/variables/variables.index"]
    assert files[0].source == "../A/1/saved_model.pb"
    assert files[0].md5_base64 == "+LC5JOvXBG2/qFqFbkaCyA=="  # base64 MD5 of b"graph", as GCS spells it
    assert files[0].sha256_hex == hashlib.sha256(b"graph").hexdigest()


# --- Keda, images, registry and network on their own ---------------------------------

def test_keda_release_is_the_pinned_kedacore_chart_on_the_system_nodes(mocks):
    construct(lambda: Keda("keda", KedaArgs(provider=k8s_provider(), namespace="keda", chart_version="2.18.3",
                                            node_selector={"kiosk.dev/pool": "system"})))
    (release,) = mocks.of_type("kubernetes:helm.sh/v3:Release")
    assert release["chart"] == "keda" and release["version"] == "2.18.3"
    assert release["repositoryOpts"]["repo"] == "https://kedacore.github.io/charts"
    assert release["namespace"] == "keda"
    values = release["values"]
    assert values["nodeSelector"] == {"kiosk.dev/pool": "system"}
    assert set(values["resources"]) == {"operator", "metricServer", "webhooks"}
    for part, res in values["resources"].items():
        assert res["requests"]["cpu"] and res["requests"]["memory"], part
        assert res["limits"]["memory"], f"{part}: a memory limit keeps a leak off the system node"


def test_container_images_push_to_the_registry_and_honour_build_on_preview(mocks):
    login = RegistryLogin(address="us-central1-docker.pkg.dev",
                          repository_url="us-central1-docker.pkg.dev/p/kiosk-t", username="oauth2accesstoken",
                          password=pulumi.Output.secret("token"))
    construct(lambda: ContainerImages("build", ContainerImagesArgs(
        registry=login, context="..", tag="v7", platforms=("linux/arm64",), build_on_preview=True)))
    images = {r.name: _plain(r.inputs) for r in mocks.resources if r.typ == "docker-build:index:Image"}
    assert set(images) == {"build-kiosk-consumers", "build-kiosk-frontend"}
    for name, raw in images.items():
        image = unsecret(raw)
        repo = f"us-central1-docker.pkg.dev/p/kiosk-t/{name.removeprefix('build-')}"
        assert image["push"] is True and image["buildOnPreview"] is True, name
        assert image["tags"] == [f"{repo}:v7"], name
        assert image["platforms"] == ["linux/arm64"], name
        assert image["context"]["location"] == ".."
        assert image["dockerfile"]["location"] in ("../consumers/Dockerfile", "../frontend/Dockerfile")
        (registry,) = image["registries"]
        assert registry["address"] == "us-central1-docker.pkg.dev" and registry["username"] == "oauth2accesstoken"
        raw_registries = raw["registries"]
        assert "__secret__" in json.dumps(raw_registries), f"{name}: the registry password must stay secret"
        assert image["cacheFrom"][0]["registry"]["ref"] == f"{repo}:buildcache"
        assert image["cacheTo"][0]["registry"]["ref"] == f"{repo}:buildcache"
    construct(lambda: ContainerImages("quiet", ContainerImagesArgs(registry=login, context=".")))
    quiet = [unsecret(_plain(r.inputs)) for r in mocks.resources if r.name.startswith("quiet-")]
    assert quiet and all(i["buildOnPreview"] is False for i in quiet)


def test_artifact_registry_cleans_up_and_lets_the_nodes_pull(mocks):
    from components.gcp.registry import ArtifactRegistry, ArtifactRegistryArgs

    holder = {}

    def build():
        registry = ArtifactRegistry("images", ArtifactRegistryArgs(
            project="p", location="us-central1", repository_id="kiosk-t", keep_recent_versions=5,
            reader_members=("serviceAccount:nodes@p.iam.gserviceaccount.com",)))
        holder["login"] = registry.login
    construct(build)
    (repo,) = mocks.of_type("gcp:artifactregistry/repository:Repository")
    assert repo["format"] == "DOCKER" and repo["repositoryId"] == "kiosk-t" and repo["location"] == "us-central1"
    policies = {p["id"]: p for p in repo["cleanupPolicies"]}
    assert policies["keep-recent"]["action"] == "KEEP"
    assert policies["keep-recent"]["mostRecentVersions"]["keepCount"] == 5
    old = policies["delete-old-untagged"]
    assert old["action"] == "DELETE" and old["condition"]["tagState"] == "UNTAGGED"
    assert old["condition"]["olderThan"].endswith("s") and int(old["condition"]["olderThan"][:-1]) >= 86400
    (reader,) = mocks.of_type("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
    assert reader["role"] == "roles/artifactregistry.reader"
    assert reader["member"] == "serviceAccount:nodes@p.iam.gserviceaccount.com"
    assert reader["repository"] == "kiosk-t" and reader["location"] == "us-central1"
    login = holder["login"]
    assert login.address == "us-central1-docker.pkg.dev"
    assert _sync_await(login.repository_url.future()) == "us-central1-docker.pkg.dev/p/kiosk-t"
    assert _sync_await(login.password.is_secret())


def test_network_has_cloud_nat_and_opens_only_the_webhook_ports_to_the_control_plane(mocks):
    construct(lambda: Network("kiosk", NetworkArgs(region="us-central1")))
    (nat,) = mocks.of_type("gcp:compute/routerNat:RouterNat")
    assert nat["natIpAllocateOption"] == "AUTO_ONLY"
    assert nat["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"
    assert nat["region"] == "us-central1"
    (router,) = mocks.of_type("gcp:compute/router:Router")
    assert router["region"] == "us-central1"
    (subnet,) = mocks.of_type("gcp:compute/subnetwork:Subnetwork")
    assert subnet["privateIpGoogleAccess"] is True
    ranges = {r["rangeName"]: r["ipCidrRange"] for r in subnet["secondaryIpRanges"]}
    assert set(ranges) == {"pods", "services"}
    (firewall,) = mocks.of_type("gcp:compute/firewall:Firewall")
    assert firewall["direction"] == "INGRESS"
    assert firewall["sourceRanges"] == ["172.16.0.32/28"], "only the control plane's /28"
    assert firewall["destinationRanges"] == [ranges["pods"]]
    (allow,) = firewall["allows"]
    assert allow["protocol"] == "tcp" and sorted(allow["ports"]) == ["6443", "9443"]
    assert firewall["targetTags"], "the rule applies to the kiosk's nodes only"


def test_pod_monitorings_follow_the_workloads_metrics_endpoints(mocks):
    from components.gcp.pod_monitoring import ManagedPrometheusScrapes, ManagedPrometheusScrapesArgs
    from components.shapes import MetricsEndpoint

    holder = {}

    def build():
        provider = k8s_provider()
        tf = TfServing("tf", TfServingArgs(
            provider=provider, namespace="kiosk", service_account_name="sa", model_base_uri="gs://b/models",
            models=(ServedModel("M", (1,)),), redis_address="redis:6379", queues=("queue:x",),
            metrics_namespaces=("gmp-system",)))
        holder["tf"] = tf
        ManagedPrometheusScrapes("m", ManagedPrometheusScrapesArgs(
            provider=provider, namespace="kiosk", endpoints=(tf.metrics, MetricsEndpoint("x", {"a": "b"}, "metrics")),
            interval="1m"))
    construct(build)
    monitorings = {m["metadata"]["name"]: m for m in mocks.of_type("kubernetes:monitoring.googleapis.com/v1:PodMonitoring")}
    assert set(monitorings) == {"tf-serving", "x"}
    tf_spec = monitorings["tf-serving"]["spec"]
    (deployment,) = mocks.of_type("kubernetes:apps/v1:Deployment")
    assert tf_spec["selector"]["matchLabels"] == deployment["spec"]["template"]["metadata"]["labels"]
    assert tf_spec["endpoints"] == [{"port": "http", "path": "/monitoring/prometheus/metrics", "interval": "1m"}]
    ports = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert "http" in ports
    (policy,) = mocks.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    assert {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gmp-system"}}}],
            "ports": [{"protocol": "TCP", "port": 8501}]} in policy["spec"]["ingress"]


@pytest.mark.parametrize("endpoints,interval,match", [
    ((), "30s", "no endpoints"),
    (("a", "a"), "30s", "repeat"),
    (("a",), "30", "duration"),
    (("a",), "", "duration"),
])
def test_pod_monitoring_args_are_checked(endpoints, interval, match):
    from components.gcp.pod_monitoring import ManagedPrometheusScrapes, ManagedPrometheusScrapesArgs
    from components.shapes import MetricsEndpoint

    with pytest.raises(ValueError, match=match):
        ManagedPrometheusScrapes("m", ManagedPrometheusScrapesArgs(
            provider=None, namespace="kiosk", interval=interval,
            endpoints=tuple(MetricsEndpoint(n, {"app": n}, "metrics") for n in endpoints)))


def test_gke_without_managed_prometheus_admits_no_scraper(mocks):
    holder = {}

    def build():
        holder["cluster"] = GkeCluster("c", GkeClusterArgs(
            project="p", location="us-central1-a", network="n", subnetwork="s", master_cidr="172.16.0.32/28",
            account_id_prefix="kiosk-t", managed_prometheus=False))
    construct(build)
    cluster = holder["cluster"]
    assert cluster.managed_prometheus is False and cluster.info.metrics_namespaces == ()
    (resource,) = mocks.of_type("gcp:container/cluster:Cluster")
    assert resource["monitoringConfig"]["managedPrometheus"]["enabled"] is False
