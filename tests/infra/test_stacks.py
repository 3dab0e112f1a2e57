"""Invariants of the whole program, checked for every stack file in stacks/.

Tests taking `run` hold on every cloud; `gcp_run` ones are GKE's (the AWS
family's own are in test_stacks_aws.py).
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

import kubernetes_validate
import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tests.infra.conftest import CLOUDS
from tests.infra.run_stack import ECR_HOST, _fake_outputs
from tests.infra.stackrun import ROOT, StackRun, is_secret

GPU = "nvidia.com/gpu"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
BUCKET = "gcp:storage/bucket:Bucket"
IMAGE = "docker-build:index:Image"
# Objects the stack puts into its bucket, and the key field of each, per cloud.
BUCKET_OBJECTS = {"gcp": ("gcp:storage/bucketObject:BucketObject", "name"),
                  "aws": ("aws:s3/bucketObjectv2:BucketObjectv2", "key")}
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
POD_MONITORING = "kubernetes:monitoring.googleapis.com/v1:PodMonitoring"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
GMP_NAMESPACE = "gmp-system"


def workloads(run: StackRun):
    return [r for r in run.k8s_objects() if r.kind in WORKLOAD_KINDS]


def pod_spec(resource) -> dict:
    return resource.inputs["spec"]["template"]["spec"]


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def gpu_pools(run: StackRun):
    return [p for p in run.of_type(NODE_POOL) if p.inputs["nodeConfig"].get("guestAccelerators")]


def gpu_node_groups(run: StackRun):
    return [g for g in run.of_type(NODE_GROUP) if "NVIDIA" in g.inputs.get("amiType", "")]


def gpu_nodes(run: StackRun) -> tuple[dict, set[tuple[str, str]]]:
    """Labels and (taint key, Kubernetes effect) of the GPU nodes, whatever the cloud."""
    if run.cfg("cloud") == "gcp":
        (pool,) = gpu_pools(run)
        node = pool.inputs["nodeConfig"]
        return node["labels"], {(t["key"], EFFECTS[t["effect"]]) for t in node.get("taints", [])}
    (group,) = gpu_node_groups(run)
    return group.inputs["labels"], {(t["key"], EFFECTS[t["effect"]]) for t in group.inputs.get("taints", [])}


def registry_prefix(run: StackRun) -> str:
    """Where the stack's images must go: its own Artifact Registry repository or ECR namespace."""
    if run.cfg("cloud") == "gcp":
        return f"{run.config['gcp:region']}-docker.pkg.dev/{run.config['gcp:project']}/"
    return f"{ECR_HOST}/kiosk-{run.stack}"


def test_every_cloud_has_a_dev_and_a_prod_stack():
    for cloud in ("gcp", "aws"):
        names = {n for n, c in CLOUDS.items() if c == cloud}
        assert {f"dev-{cloud}", f"prod-{cloud}"} <= names, f"stacks of {cloud}: {sorted(names)}"


# --- cluster ---------------------------------------------------------------

def test_cluster_is_private_vpc_native_with_workload_identity(gcp_run):
    run = gcp_run
    cluster = run.one(CLUSTER)
    i = cluster.inputs
    assert i.get("removeDefaultNodePool") is True, f"{cluster.urn}: default node pool must be removed"
    assert i.get("networkingMode") == "VPC_NATIVE", f"{cluster.urn}: must be VPC-native"
    assert i["privateClusterConfig"]["enablePrivateNodes"] is True, f"{cluster.urn}: nodes must be private"
    assert i["workloadIdentityConfig"]["workloadPool"] == f"{run.config['gcp:project']}.svc.id.goog", cluster.urn
    assert i["releaseChannel"]["channel"] == run.cfg("releaseChannel"), cluster.urn
    assert i["minMasterVersion"] == run.cfg("kubernetesVersion"), cluster.urn
    assert i.get("datapathProvider") == "ADVANCED_DATAPATH", f"{cluster.urn}: NetworkPolicies need Dataplane V2"


def test_control_plane_never_open_to_the_world(gcp_run):
    run = gcp_run
    cluster = run.one(CLUSTER)
    networks = cluster.inputs.get("masterAuthorizedNetworksConfig")
    assert networks is not None, f"{cluster.urn}: without authorized networks the endpoint is open to all"
    for block in networks.get("cidrBlocks", []):
        net = ipaddress.ip_network(block["cidrBlock"], strict=False)
        assert net.prefixlen > 0, f"{cluster.urn}: authorized network {net} opens the control plane"


def test_gpu_pool_autoscales_from_zero_and_is_tainted(gcp_run):
    run = gcp_run
    pools = gpu_pools(run)
    assert len(pools) == 1, f"{run.stack}: expected one GPU pool, found {[p.urn for p in pools]}"
    pool = pools[0]
    auto = pool.inputs["autoscaling"]
    low = auto.get("totalMinNodeCount", auto.get("minNodeCount"))
    high = auto.get("totalMaxNodeCount", auto.get("maxNodeCount"))
    assert low == 0, f"{pool.urn}: GPU pool must scale from 0, min is {low}"
    assert high >= 1, f"{pool.urn}: GPU pool max must be >= 1"
    node = pool.inputs["nodeConfig"]
    accel = node["guestAccelerators"][0]
    assert accel["type"] == run.cfg("gpuType"), pool.urn
    assert accel["gpuDriverInstallationConfig"]["gpuDriverVersion"] in ("DEFAULT", "LATEST"), \
        f"{pool.urn}: GKE must install the GPU driver"
    assert high * accel["count"] <= run.cfg("maxGpus"), f"{pool.urn}: pool can exceed kiosk:maxGpus"
    assert node.get("spot") is run.cfg("gpuSpot"), pool.urn
    taints = {(t["key"], t["effect"]) for t in node.get("taints", [])}
    assert (GPU, "NO_SCHEDULE") in taints, f"{pool.urn}: GPU pool must be tainted so only GPU work lands"


def test_cpu_pool_autoscales_with_spot_option(gcp_run):
    run = gcp_run
    pools = [p for p in run.of_type(NODE_POOL) if p.inputs["nodeConfig"]["labels"].get("kiosk.dev/pool") == "cpu"]
    assert len(pools) == 1, f"{run.stack}: expected one CPU pool"
    pool = pools[0]
    auto = pool.inputs["autoscaling"]
    assert auto["totalMinNodeCount"] == 0 and auto["totalMaxNodeCount"] == run.cfg("cpuMaxNodes"), pool.urn
    assert pool.inputs["nodeConfig"]["spot"] is run.cfg("cpuSpot"), pool.urn


def test_nodes_use_workload_metadata_and_a_dedicated_account(gcp_run):
    run = gcp_run
    for pool in run.of_type(NODE_POOL):
        node = pool.inputs["nodeConfig"]
        assert node["workloadMetadataConfig"]["mode"] == "GKE_METADATA", pool.urn
        assert not node["serviceAccount"].endswith("-compute@developer.gserviceaccount.com"), pool.urn


def test_stack_sizes_match_their_environment(gcp_run):
    run = gcp_run
    cluster = run.one(CLUSTER)
    region = run.config["gcp:region"]
    total_gpus = sum(p.inputs["autoscaling"]["totalMaxNodeCount"] * p.inputs["nodeConfig"]["guestAccelerators"][0]["count"]
                     for p in gpu_pools(run))
    if run.stack.startswith("dev"):
        assert total_gpus <= 1, f"{cluster.urn}: dev allows at most 1 GPU, got {total_gpus}"
        assert all(p.inputs["nodeConfig"]["spot"] for p in run.of_type(NODE_POOL)
                   if "autoscaling" in p.inputs), f"{run.stack}: dev autoscaled pools must be Spot"
    if run.stack.startswith("prod"):
        assert cluster.inputs["location"] == region, f"{cluster.urn}: prod must be regional"
        assert total_gpus <= 8, f"{cluster.urn}: prod allows at most 8 GPUs, got {total_gpus}"


# --- bucket -------------------------------------------------------------------

def test_bucket_not_public_and_uploads_output_expire(gcp_run):
    run = gcp_run
    buckets = run.of_type(BUCKET)
    assert buckets, f"{run.stack}: no bucket"
    for bucket in buckets:
        i = bucket.inputs
        assert i.get("publicAccessPrevention") == "enforced", f"{bucket.urn}: public access must be prevented"
        assert i.get("uniformBucketLevelAccess") is True, f"{bucket.urn}: uniform access required"
        expiry = {}
        for rule in i.get("lifecycleRules", []):
            assert rule["action"]["type"] == "Delete", bucket.urn
            prefixes = rule["condition"].get("matchesPrefixes")
            assert prefixes, f"{bucket.urn}: a Delete rule without a prefix would delete models/"
            for prefix in prefixes:
                assert not prefix.startswith("models"), f"{bucket.urn}: models/ must never expire"
                expiry[prefix] = rule["condition"]["age"]
        assert expiry.get("uploads/") == run.cfg("uploadsExpireDays"), f"{bucket.urn}: uploads/ expiry {expiry}"
        assert expiry.get("output/") == run.cfg("outputExpireDays"), f"{bucket.urn}: output/ expiry {expiry}"
        cors = i.get("cors") or []
        assert any(run.outputs["portalUrl"]["value"] in c["origins"] for c in cors), \
            f"{bucket.urn}: CORS must allow the portal"


def test_no_iam_binding_makes_anything_public(gcp_run):
    run = gcp_run
    for r in run.resources:
        if "IAMMember" in r.type or "IamMember" in r.type:
            member = r.inputs.get("member", "")
            assert member not in ("allUsers", "allAuthenticatedUsers"), f"{r.urn}: public member {member}"
            assert r.inputs.get("role") not in ("roles/owner", "roles/editor", "roles/storage.admin"), \
                f"{r.urn}: role too broad"


def test_repository_models_are_uploaded_to_the_bucket(run):
    """Every file of each configured model version the repository ships is an
    object of the stack's bucket at models/<Name>/<version>/..., from that file."""
    typ, key_field = BUCKET_OBJECTS[run.cfg("cloud")]
    bucket = run.outputs["bucket"]["value"]
    objects = {o.inputs[key_field]: o for o in run.of_type(typ)}
    expected = {}
    for model in run.cfg("models"):
        name, versions = model.split(":")
        for version in versions.split(","):
            version_dir = ROOT / "models" / name / version
            for path in sorted(version_dir.rglob("*")) if version_dir.is_dir() else []:
                if path.is_file() and not path.name.startswith("."):
                    expected[f"models/{name}/{version}/{path.relative_to(version_dir).as_posix()}"] = path
    assert "models/NuclearSegmentation/1/saved_model.pb" in expected, "the repository's default model is missing"
    assert {k for k in expected if k.startswith("models/NuclearSegmentation/1/variables/")}, expected
    assert set(objects) == set(expected), f"{run.stack}: uploaded {sorted(objects)}, expected {sorted(expected)}"
    infra_dir = ROOT / "infra"
    for key, obj in objects.items():
        assert obj.inputs["bucket"] == bucket, f"{obj.urn}: goes to {obj.inputs['bucket']}, not {bucket}"
        assert "ModelObjects$" in obj.urn, f"{obj.urn}: not grouped under the models component"
        assert obj.name.endswith(key), f"{obj.urn}: name is not derived from the key"
        source = obj.inputs["source"]
        assert set(source) == {"__file_asset__"}, f"{obj.urn}: source {source!r} is not a file asset"
        path = source["__file_asset__"]
        assert not os.path.isabs(path), f"{obj.urn}: absolute source path {path} makes state machine-bound"
        assert (infra_dir / path).resolve() == expected[key].resolve(), f"{obj.urn}: uploads {path}"


# --- images -------------------------------------------------------------------

def test_images_built_from_repo_and_pushed_to_stack_registry(run):
    registry = run.outputs["registry"]["value"]
    assert registry.startswith(registry_prefix(run)), f"{run.stack}: registry {registry}"
    images = run.of_type(IMAGE)
    assert {i.name.rsplit("-", 1)[-1] for i in images} == {"consumers", "frontend"}, [i.urn for i in images]
    infra_dir = ROOT / "infra"
    for image in images:
        i = image.inputs
        assert i["push"] is True, f"{image.urn}: must push"
        assert i["buildOnPreview"] is run.cfg("buildImagesOnPreview"), image.urn
        assert i["tags"] and all(t.startswith(registry + "/") for t in i["tags"]), f"{image.urn}: {i['tags']}"
        host = registry.split("/")[0]
        assert [r["address"] for r in i["registries"]] == [host], f"{image.urn}: must log in to {host}"
        raw = image.raw_inputs["registries"]
        assert is_secret(raw) or is_secret(raw[0]["password"]), f"{image.urn}: registry password must be secret"
        context = (infra_dir / i["context"]["location"]).resolve()
        assert context == ROOT, f"{image.urn}: context {context} is not the repository root"
        dockerfile = Path(os.path.normpath(infra_dir / i["dockerfile"]["location"]))
        assert dockerfile.relative_to(ROOT).as_posix() in ("consumers/Dockerfile", "frontend/Dockerfile"), image.urn
        assert dockerfile.is_file(), f"{image.urn}: {dockerfile} does not exist"
    refs = {image.name.rsplit("-", 1)[-1]: f"{image.inputs['tags'][0]}@" for image in images}
    for w in workloads(run):
        for c in pod_spec(w)["containers"]:
            if c.get("command", [])[:2] == ["python", "-m"]:
                app = c["command"][2]
                assert c["image"].startswith(refs[app]), f"{w.urn}: {c['image']} is not the pushed {app} image"


# --- autoscaling --------------------------------------------------------------

def redis_url_of(run: StackRun, workload) -> str:
    """KIOSK_REDIS_URL of a workload's first container, read from its Secret when it is a secretKeyRef."""
    (entry,) = [e for e in pod_spec(workload)["containers"][0]["env"] if e["name"] == "KIOSK_REDIS_URL"]
    if "value" in entry:
        return entry["value"]
    ref = entry["valueFrom"]["secretKeyRef"]
    return run.one("kubernetes:core/v1:Secret", ref["name"]).inputs["stringData"][ref["key"]]


def redis_address(run: StackRun) -> str:
    consumer = next(w for w in workloads(run) if w.inputs["metadata"]["name"].startswith("consumers-"))
    url = redis_url_of(run, consumer)
    assert url.startswith("redis://") and url.endswith("/0"), url
    return url[len("redis://"):-len("/0")].rsplit("@", 1)[-1]


def server_password(run: StackRun) -> str:
    """The password Redis itself requires: Memorystore's AUTH string, or the in-cluster server's."""
    if run.cfg("redisMode") == "memorystore":
        instance = run.one("gcp:redis/instance:Instance")
        assert instance.inputs["authEnabled"] is True, f"{instance.urn}: AUTH must be enabled"
        return _fake_outputs(instance.type, instance.name, instance.inputs)["authString"]
    redis = run.one("kubernetes:apps/v1:StatefulSet", "redis")
    (container,) = pod_spec(redis)["containers"]
    command = container["command"]
    variable = command[command.index("--requirepass") + 1]
    assert re.fullmatch(r"\$\([A-Z_]+\)", variable), f"{redis.urn}: the password must come from the env"
    env = {e["name"]: e for e in container["env"]}
    ref = env[variable[2:-1]]["valueFrom"]["secretKeyRef"]
    assert env["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"] == ref, f"{redis.urn}: the probe's redis-cli needs it"
    secret = run.one("kubernetes:core/v1:Secret", ref["name"])
    raw = secret.raw_inputs["stringData"]
    assert is_secret(raw) or is_secret(raw[ref["key"]]), f"{secret.urn}: password in plain text"
    return secret.inputs["stringData"][ref["key"]]


def test_redis_takes_auth_and_the_password_stays_in_secrets(run):
    password = server_password(run)
    secret = run.one("kubernetes:core/v1:Secret", "redis-auth")
    raw = secret.raw_inputs["stringData"]
    assert is_secret(raw) or all(is_secret(v) for v in raw.values()), f"{secret.urn}: password in plain text"
    assert password and secret.inputs["stringData"]["password"] == password, secret.urn
    assert secret.inputs["stringData"]["url"].startswith(f"redis://:{password}@"), secret.urn
    clients = [w for w in workloads(run) if w.inputs["metadata"]["name"].startswith(("consumers-", "frontend"))]
    assert len(clients) >= 2, run.stack
    for w in clients:
        (entry,) = [e for e in pod_spec(w)["containers"][0]["env"] if e["name"] == "KIOSK_REDIS_URL"]
        assert entry.get("valueFrom", {}).get("secretKeyRef") == {"name": "redis-auth", "key": "url"}, \
            f"{w.urn}: the Redis URL with its password must come from the Secret"
        assert password not in str(w.inputs), f"{w.urn}: Redis password in the pod spec"
    auth = run.one("kubernetes:keda.sh/v1alpha1:TriggerAuthentication")
    assert auth.inputs["metadata"]["namespace"] == secret.inputs["metadata"]["namespace"], auth.urn
    assert auth.inputs["spec"]["secretTargetRef"] == [{"parameter": "password", "name": "redis-auth", "key": "password"}]
    for so in run.of_type(SCALED_OBJECT):
        for t in so.inputs["spec"]["triggers"]:
            assert t.get("authenticationRef") == {"name": auth.inputs["metadata"]["name"]}, \
                f"{so.urn}: KEDA's scaler needs Redis's password"


def check_stream_trigger(so, stream: str, address: str) -> None:
    spec = so.inputs["spec"]
    triggers = [t for t in spec["triggers"] if t["metadata"]["stream"] == stream]
    assert len(triggers) == 1, f"{so.urn}: one trigger on {stream} expected"
    t = triggers[0]
    assert t["type"] == "redis-streams", so.urn
    meta = t["metadata"]
    # No consumerGroup: KEDA then scales on XLEN with target streamLength.
    assert "consumerGroup" not in meta, f"{so.urn}: consumerGroup would switch KEDA to pending entries"
    assert int(meta["streamLength"]) >= 1, so.urn
    assert meta["address"] == address, f"{so.urn}: scaler polls {meta['address']}, consumers use {address}"
    assert int(meta.get("activationLagCount", "0")) == 0, so.urn


def test_scaled_object_per_consumer_scaling_to_zero(run):
    address = redis_address(run)
    scaled = {so.inputs["spec"]["scaleTargetRef"]["name"]: so for so in run.of_type(SCALED_OBJECT)}
    for job_type in run.cfg("jobTypes"):
        deployment = run.one("kubernetes:apps/v1:Deployment", f"consumers-{job_type}")
        assert f"consumers-{job_type}" in scaled, f"{deployment.urn}: no ScaledObject"
        so = scaled[f"consumers-{job_type}"]
        spec = so.inputs["spec"]
        assert spec["scaleTargetRef"]["kind"] == "Deployment", so.urn
        assert spec["minReplicaCount"] == 0, f"{so.urn}: consumers must scale to zero"
        assert spec["maxReplicaCount"] == run.cfg("consumerMaxReplicas"), so.urn
        assert so.inputs["metadata"]["namespace"] == deployment.inputs["metadata"]["namespace"], so.urn
        check_stream_trigger(so, f"queue:{job_type}", address)
        assert "spec.replicas" in deployment.options["ignoreChanges"], f"{deployment.urn}: KEDA owns replicas"


def test_tf_serving_scales_with_every_queue(run):
    address = redis_address(run)
    so = next(s for s in run.of_type(SCALED_OBJECT) if s.inputs["spec"]["scaleTargetRef"]["name"] == "tf-serving")
    spec = so.inputs["spec"]
    assert spec["minReplicaCount"] == 0, f"{so.urn}: TF-Serving must scale to zero when queues are empty"
    assert spec["maxReplicaCount"] == run.cfg("maxGpus") // run.cfg("gpusPerReplica"), so.urn
    for job_type in run.cfg("jobTypes"):
        check_stream_trigger(so, f"queue:{job_type}", address)


# --- TF-Serving -----------------------------------------------------------------

def test_tf_serving_requests_gpus_on_the_gpu_pool(run):
    deployment = run.one("kubernetes:apps/v1:Deployment", "tf-serving")
    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    res = container["resources"]
    assert int(res["limits"][GPU]) == run.cfg("gpusPerReplica") == int(res["requests"][GPU]), deployment.urn
    assert container["image"].endswith("-gpu"), f"{deployment.urn}: must use the GPU image"
    labels, taints = gpu_nodes(run)
    assert taints, f"{run.stack}: GPU nodes must be tainted"
    for key, value in spec["nodeSelector"].items():
        assert labels.get(key) == value, f"{deployment.urn}: selector {key}={value} misses the GPU nodes"
    tolerated = {(t["key"], t["effect"]) for t in spec["tolerations"]}
    for taint in taints:
        assert taint in tolerated, f"{deployment.urn}: does not tolerate {taint}"
    readiness = container["readinessProbe"]["httpGet"]["path"]
    first_model = run.cfg("models")[0].split(":")[0]
    assert readiness.startswith(f"/v1/models/{first_model}/"), deployment.urn


def test_tf_serving_config_matches_consumers(run):
    config_map = run.one("kubernetes:core/v1:ConfigMap", "tf-serving")
    data = config_map.inputs["data"]
    models = text_format.Parse(data["models.config"], model_server_config_pb2.ModelServerConfig())
    bucket = run.outputs["bucket"]["value"]
    expected = {m.split(":")[0]: sorted(int(v) for v in m.split(":")[1].split(",")) for m in run.cfg("models")}
    got = {c.name: sorted(c.model_version_policy.specific.versions) for c in models.model_config_list.config}
    assert got == expected, f"{config_map.urn}: models {got}"
    # GCS is read by TF-Serving itself; S3 through the pod-local copy (test_stacks_aws).
    scheme, base = ("gs", f"gs://{bucket}/models") if run.cfg("cloud") == "gcp" else ("s3", "/models")
    for c in models.model_config_list.config:
        assert c.base_path == f"{base}/{c.name}", f"{config_map.urn}: {c.base_path}"
    assert f"max_batch_size {{ value: {run.cfg('maxBatchSize')} }}" in data["batching.config"], config_map.urn
    for job_type in run.cfg("jobTypes"):
        consumer = run.one("kubernetes:apps/v1:Deployment", f"consumers-{job_type}")
        env = env_of(pod_spec(consumer)["containers"][0])
        assert int(env["KIOSK_MAX_BATCH_SIZE"]) == run.cfg("maxBatchSize"), consumer.urn
        assert env["KIOSK_MODEL_SERVER"].endswith(":8500"), consumer.urn
        assert env["KIOSK_STORAGE_URL"] == f"{scheme}://{bucket}", consumer.urn
    args = pod_spec(run.one("kubernetes:apps/v1:Deployment", "tf-serving"))["containers"][0]["args"]
    for flag in ("--model_config_file=", "--enable_batching=true", "--batching_parameters_file=",
                 "--monitoring_config_file=", "--rest_api_port=8501", "--port=8500"):
        assert any(a.startswith(flag) for a in args), f"tf-serving is missing {flag}"


# --- workloads ----------------------------------------------------------------

def test_every_container_has_requests_limits_and_probes(run):
    assert workloads(run), run.stack
    for w in workloads(run):
        spec = pod_spec(w)
        for c in spec.get("initContainers", []) + spec["containers"]:
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    assert resource in res.get(kind, {}), f"{w.urn}: container {c['name']} lacks {kind}.{resource}"
            assert "readinessProbe" in c and "livenessProbe" in c, f"{w.urn}: {c['name']} needs probes"
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, w.urn
        assert spec["securityContext"]["runAsNonRoot"] is True, f"{w.urn}: must run as non-root"


def test_consumers_grace_period_outlasts_their_shutdown_grace(run):
    for job_type in run.cfg("jobTypes"):
        d = run.one("kubernetes:apps/v1:Deployment", f"consumers-{job_type}")
        spec = pod_spec(d)
        env = env_of(spec["containers"][0])
        grace = int(env["KIOSK_SHUTDOWN_GRACE_SECONDS"])
        assert grace == run.cfg("shutdownGraceSeconds"), d.urn
        assert spec["terminationGracePeriodSeconds"] >= grace + 10, \
            f"{d.urn}: pod grace {spec['terminationGracePeriodSeconds']}s must exceed job grace {grace}s"
        assert env["KIOSK_JOB_TYPE"] == job_type, d.urn


def test_frontend_listens_on_every_interface_in_cloud_mode(run):
    spec = pod_spec(run.one("kubernetes:apps/v1:Deployment", "frontend"))
    env = env_of(spec["containers"][0])
    assert env["KIOSK_HOST"] == "0.0.0.0" and env["KIOSK_ENVIRONMENT"] == "cloud", run.stack
    assert "KIOSK_AUTH_TOKEN" in {e["name"] for e in spec["containers"][0]["env"]}, run.stack


def test_frontend_metrics_are_not_behind_the_public_service(run):
    spec = pod_spec(run.one("kubernetes:apps/v1:Deployment", "frontend"))
    container = spec["containers"][0]
    metrics_port = int(env_of(container)["KIOSK_METRICS_PORT"])
    assert {"name": "metrics", "containerPort": metrics_port} in container["ports"], run.stack
    service = run.one("kubernetes:core/v1:Service", "frontend")
    exposed = {p.get("targetPort", p["port"]) for p in service.inputs["spec"]["ports"]}
    assert exposed.isdisjoint({"metrics", metrics_port}), f"{service.urn} exposes the metrics port"


def test_every_workload_has_a_matching_pdb(run):
    pdbs = run.of_type("kubernetes:policy/v1:PodDisruptionBudget")
    for w in workloads(run):
        labels = w.inputs["spec"]["template"]["metadata"]["labels"]
        matching = [p for p in pdbs
                    if p.inputs["metadata"]["namespace"] == w.inputs["metadata"]["namespace"]
                    and all(labels.get(k) == v for k, v in p.inputs["spec"]["selector"]["matchLabels"].items())]
        assert matching, f"{w.urn}: no PodDisruptionBudget selects its pods"


def test_redis_and_tf_serving_stay_inside_the_cluster(run):
    policies = run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    for service in run.of_type("kubernetes:core/v1:Service"):
        name = service.inputs["metadata"]["name"]
        if name not in ("redis", "tf-serving"):
            continue
        assert service.inputs["spec"].get("type", "ClusterIP") == "ClusterIP", f"{service.urn}: must not be exposed"
        selector = service.inputs["spec"]["selector"]
        guarding = [p for p in policies
                    if all(selector.get(k) == v for k, v in p.inputs["spec"]["podSelector"]["matchLabels"].items())]
        assert guarding, f"{service.urn}: no NetworkPolicy guards its pods"
        for policy in guarding:
            for rule in policy.inputs["spec"]["ingress"]:
                assert rule.get("from"), f"{policy.urn}: an ingress rule without 'from' admits every pod"
    for ingress in run.of_type("kubernetes:networking.k8s.io/v1:Ingress"):
        backend = ingress.inputs["spec"]["defaultBackend"]["service"]["name"]
        assert backend == "frontend", f"{ingress.urn}: only the frontend is exposed"


def test_clients_carry_the_labels_the_policies_admit(run):
    for job_type in run.cfg("jobTypes"):
        labels = run.one("kubernetes:apps/v1:Deployment", f"consumers-{job_type}").inputs["spec"]["template"]["metadata"]["labels"]
        assert labels.get("kiosk.dev/redis-client") == "true" and labels.get("kiosk.dev/model-client") == "true"
    frontend = run.one("kubernetes:apps/v1:Deployment", "frontend")
    assert frontend.inputs["spec"]["template"]["metadata"]["labels"].get("kiosk.dev/redis-client") == "true", \
        frontend.urn
    if run.cfg("redisMode") == "in-cluster":
        policy = run.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "redis")
        peers = policy.inputs["spec"]["ingress"][0]["from"]
        keda_ns = run.cfg("kedaNamespace")
        assert any(p.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == keda_ns
                   for p in peers), f"{policy.urn}: KEDA's operator must reach Redis to read queue lengths"


def test_workload_identity_binds_each_service_account(gcp_run):
    run = gcp_run
    accounts = {sa.inputs["metadata"]["name"]: sa for sa in run.of_type("kubernetes:core/v1:ServiceAccount")}
    gsas = {r.inputs["accountId"]: r for r in run.of_type("gcp:serviceaccount/account:Account")}
    emails = {f"{a}@{run.config['gcp:project']}.iam.gserviceaccount.com" for a in gsas}
    bindings = [r.inputs["member"] for r in run.of_type("gcp:serviceaccount/iAMMember:IAMMember")
                if r.inputs["role"] == "roles/iam.workloadIdentityUser"]
    for w in workloads(run):
        name = pod_spec(w).get("serviceAccountName")
        if w.inputs["metadata"]["name"] == "redis":
            continue
        assert name in accounts, f"{w.urn}: runs as {name!r}, not a kiosk service account"
        annotation = accounts[name].inputs["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
        assert annotation in emails, f"{accounts[name].urn}: bound to unknown GSA {annotation}"
        ns = w.inputs["metadata"]["namespace"]
        member = f"serviceAccount:{run.config['gcp:project']}.svc.id.goog[{ns}/{name}]"
        assert member in bindings, f"{w.urn}: no workloadIdentityUser binding for {member}"


def test_kubernetes_resources_use_the_cluster_provider(run):
    provider = run.one("pulumi:providers:kubernetes")
    assert is_secret(provider.raw_inputs["kubeconfig"]), f"{provider.urn}: kubeconfig must be secret"
    for r in run.resources:
        if r.type.startswith("kubernetes:"):
            assert r.provider.startswith(provider.urn + "::"), \
                f"{r.urn}: uses provider {r.provider!r}, would deploy to the ambient kubeconfig"


# --- secrets and outputs ------------------------------------------------------

def test_outputs_and_secrets(run):
    for key in ("portalUrl", "portalAddress", "bucket", "registry", "kubeconfig"):
        assert key in run.outputs, f"{run.stack}: missing output {key}"
    assert run.outputs["kubeconfig"]["secret"], f"{run.stack}: kubeconfig output must be secret"
    assert not run.outputs["bucket"]["secret"], run.stack
    if run.cfg("authEnabled"):
        assert run.outputs["apiToken"]["secret"], f"{run.stack}: apiToken output must be secret"
        secret = run.one("kubernetes:core/v1:Secret", "frontend-auth")
        assert is_secret(secret.raw_inputs["stringData"]) or all(
            is_secret(v) for v in secret.raw_inputs["stringData"].values()), f"{secret.urn}: token must be secret"
        frontend = run.one("kubernetes:apps/v1:Deployment", "frontend")
        env = {e["name"]: e for e in pod_spec(frontend)["containers"][0]["env"]}
        assert env["KIOSK_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "frontend-auth", frontend.urn
    for r in run.k8s_objects():
        if r.kind == "Secret":
            for field in ("data", "stringData"):
                if field in r.raw_inputs:
                    value = r.raw_inputs[field]
                    assert is_secret(value) or all(is_secret(v) for v in value.values()), f"{r.urn}: {field} not secret"


# --- schema validation --------------------------------------------------------

def schema_version(run: StackRun) -> str:
    version = f"{run.cfg('kubernetesVersion')}.0"
    shipped = kubernetes_validate.utils.all_versions()
    assert version in shipped, f"kubernetes-validate ships {shipped}, not {version}"
    return version


def test_every_kubernetes_object_validates_strictly(run):
    version = schema_version(run)
    objects = run.k8s_objects()
    assert len(objects) >= 15, f"{run.stack}: suspiciously few objects ({len(objects)})"
    for r in objects:
        obj = {k: v for k, v in r.inputs.items() if v is not None}
        assert obj["apiVersion"] and obj["kind"] == r.kind, r.urn
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{r.urn} does not validate against Kubernetes {version}: {exc.message} at {list(exc.path)}")


def test_scaled_objects_have_the_keda_structure(run):
    for so in run.of_type(SCALED_OBJECT):
        i = so.inputs
        assert i["apiVersion"] == "keda.sh/v1alpha1" and i["kind"] == "ScaledObject", so.urn
        assert set(i["metadata"]) >= {"name", "namespace"}, so.urn
        spec = i["spec"]
        assert set(spec) <= {"scaleTargetRef", "minReplicaCount", "maxReplicaCount", "pollingInterval",
                             "cooldownPeriod", "idleReplicaCount", "initialCooldownPeriod", "advanced",
                             "fallback", "triggers"}, f"{so.urn}: unknown spec keys {set(spec)}"
        assert isinstance(spec["minReplicaCount"], int) and isinstance(spec["maxReplicaCount"], int), so.urn
        assert spec["minReplicaCount"] == 0 < spec["maxReplicaCount"], so.urn
        for t in spec["triggers"]:
            assert set(t) <= {"type", "metadata", "name", "authenticationRef", "metricType", "useCachedMetrics"}, so.urn
            assert all(isinstance(v, str) for v in t["metadata"].values()), \
                f"{so.urn}: KEDA trigger metadata values must be strings"
            assert set(t["metadata"]) <= {"address", "stream", "streamLength", "activationLagCount",
                                          "databaseIndex", "enableTLS"}, f"{so.urn}: unverified metadata keys"


def test_portal_ingress_uses_the_static_ip_and_neg_backends(gcp_run):
    run = gcp_run
    ingress = run.one("kubernetes:networking.k8s.io/v1:Ingress", "frontend")
    annotations = ingress.inputs["metadata"]["annotations"]
    assert len(run.of_type("gcp:compute/globalAddress:GlobalAddress")) == 1, run.stack
    assert annotations["kubernetes.io/ingress.global-static-ip-name"], f"{ingress.urn}: no static IP"
    assert annotations["kubernetes.io/ingress.class"] == "gce", ingress.urn
    assert run.outputs["portalAddress"]["value"] in run.outputs["portalUrl"]["value"] or run.cfg("domain")
    if run.cfg("domain"):
        assert "ingress.gcp.kubernetes.io/pre-shared-cert" in annotations, f"{ingress.urn}: domain without TLS"
    service = run.one("kubernetes:core/v1:Service", "frontend")
    assert service.inputs["metadata"]["annotations"]["cloud.google.com/neg"] == '{"ingress": true}', service.urn
    frontend = run.one("kubernetes:apps/v1:Deployment", "frontend")
    env = env_of(pod_spec(frontend)["containers"][0])
    assert env["KIOSK_PUBLIC_URL"] == run.outputs["portalUrl"]["value"], frontend.urn


# --- system pool capacity ------------------------------------------------------

# vCPUs of the machine types the stacks use for their system pool / group.
VCPUS = {"e2-standard-2": 2, "e2-standard-4": 4, "e2-standard-8": 8,
         "m6i.large": 2, "m6i.xlarge": 4, "m6i.2xlarge": 8}
# Pods of the Helm charts pinned to the system nodes: (path of their resources
# in the values, path of their replica count, the chart's default replicas).
CHART_PODS = {
    "keda": [("resources.operator", "operator.replicaCount", 1),
             ("resources.metricServer", "metricsServer.replicaCount", 1),
             ("resources.webhooks", "webhooks.replicaCount", 1)],
    "cluster-autoscaler": [("resources", "replicaCount", 1)],
    "aws-load-balancer-controller": [("resources", "replicaCount", 2)],
}
# CPU the cloud's own pods take from the system nodes, estimated from their
# manifests (millicores): per node for DaemonSets, once for singletons that
# land on the system pool while the CPU pool is at zero.
#  GKE (Dataplane V2, Managed Prometheus): anetd, fluentbit-gke, gke-metrics-agent,
#   pdcsi-node, GMP collector ~400m a node; kube-dns x2 (260m each), its
#   autoscaler, metrics-server, konnectivity agents, l7 backend, GMP operator ~800m.
#  EKS: aws-node, kube-proxy, ebs-csi-node, eks-pod-identity-agent ~300m a node;
#   coredns x2 (100m each), ebs-csi-controller x2 ~600m.
ADDON_CPU_M = {"gcp": (400, 800), "aws": (300, 600)}


def allocatable_cpu_m(vcpus: int) -> int:
    """Node CPU minus kube-reserved, as GKE and the EKS AMI reserve it alike: 6 % of
    the first core, 1 % of the second, 0.5 % of cores 3-4, 0.25 % above
    (cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes, "CPU
    reservations"; awslabs/amazon-eks-ami nodeadm getCPUMillicoresToReserve).
    2 vCPU -> 1930m, 4 -> 3920m, 8 -> 7910m."""
    total = vcpus * 1000
    reserved = 0.0
    for low, high, share in ((0, 1000, 0.06), (1000, 2000, 0.01), (2000, 4000, 0.005), (4000, total, 0.0025)):
        reserved += max(0, min(total, high) - low) * share
    return total - int(reserved)


def cpu_m(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


def dig(values: dict, path: str):
    for part in path.split("."):
        if not isinstance(values, dict) or part not in values:
            return None
        values = values[part]
    return values


def system_nodes(run: StackRun) -> tuple[str, int, dict]:
    """Machine type, node count and labels of the system pool / group."""
    if run.cfg("cloud") == "gcp":
        (pool,) = [p for p in run.of_type(NODE_POOL) if p.inputs["nodeConfig"]["labels"].get("kiosk.dev/pool") == "system"]
        assert "autoscaling" not in pool.inputs, f"{pool.urn}: sized by node_count here"
        zones = len(pool.inputs.get("nodeLocations") or []) or (1 if run.cfg("clusterLocation") else 3)
        return pool.inputs["nodeConfig"]["machineType"], pool.inputs["nodeCount"] * zones, pool.inputs["nodeConfig"]["labels"]
    (group,) = [g for g in run.of_type(NODE_GROUP) if g.inputs.get("labels", {}).get("kiosk.dev/pool") == "system"]
    (instance_type,) = group.inputs["instanceTypes"]
    return instance_type, group.inputs["scalingConfig"]["minSize"], group.inputs["labels"]


def system_pod_cpu_requests(run: StackRun, labels: dict) -> list[tuple[str, int]]:
    """(who, CPU request in millicores) of every kiosk pod pinned to the system nodes."""
    def pinned(selector) -> bool:
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    pods = []
    for w in workloads(run):
        spec = pod_spec(w)
        if pinned(spec.get("nodeSelector")):
            request = sum(cpu_m(c["resources"]["requests"]["cpu"]) for c in spec["containers"])
            pods += [(w.urn, request)] * w.inputs["spec"].get("replicas", 1)
    for release in run.of_type("kubernetes:helm.sh/v3:Release"):
        values = release.inputs.get("values") or {}
        if not pinned(values.get("nodeSelector")):
            continue
        chart = release.inputs["chart"]
        assert chart in CHART_PODS, f"{release.urn}: pods of chart {chart} not accounted for on the system pool"
        for resources_path, replicas_path, default_replicas in CHART_PODS[chart]:
            resources = dig(values, resources_path)
            assert resources and "cpu" in resources.get("requests", {}), f"{release.urn}: no CPU request at {resources_path}"
            replicas = dig(values, replicas_path) or default_replicas
            pods += [(f"{release.urn}:{resources_path}", cpu_m(resources["requests"]["cpu"]))] * replicas
    return pods


@pytest.mark.parametrize("vcpus,expected", [(2, 1930), (4, 3920), (8, 7910)])
def test_allocatable_cpu_formula(vcpus, expected):
    assert allocatable_cpu_m(vcpus) == expected


def test_system_pool_holds_the_system_pods_and_the_add_ons(run):
    machine, nodes, labels = system_nodes(run)
    assert machine in VCPUS, f"{run.stack}: add {machine}'s vCPUs to VCPUS"
    per_node = allocatable_cpu_m(VCPUS[machine])
    pods = system_pod_cpu_requests(run, labels)
    names = " ".join(who for who, _ in pods)
    assert "frontend" in names and "keda" in names, f"{run.stack}: system pods not found: {pods}"
    daemonsets_m, singletons_m = ADDON_CPU_M[run.cfg("cloud")]
    kiosk_m = sum(m for _, m in pods)
    needed = kiosk_m + singletons_m + daemonsets_m * nodes
    assert needed <= per_node * nodes, (
        f"{run.stack}: system pool of {nodes} x {machine} ({per_node}m allocatable each) holds "
        f"{per_node * nodes}m, the kiosk's system pods request {kiosk_m}m and the add-ons take "
        f"~{singletons_m + daemonsets_m * nodes}m")
    largest = max(m for _, m in pods)
    assert largest + daemonsets_m <= per_node, f"{run.stack}: a {largest}m pod fits no {machine} node"


# --- GKE with a domain (managed certificate) -----------------------------------

GCP_DOMAIN = "kiosk.example.org"


@pytest.fixture(scope="module")
def gcp_domain_run(tmp_path_factory):
    import json

    from tests.infra.conftest import STACKS
    from tests.infra.stackrun import run_stacks

    stack = STACKS["dev-gcp"]
    overrides = {"kiosk:domain": GCP_DOMAIN}
    (rc, out, err), = run_stacks([stack], overrides, tmp_path_factory.mktemp("gcp-domain")).values()
    assert rc == 0, err[-4000:]
    return StackRun(stack, json.loads(out), overrides)


def test_gke_domain_gets_a_managed_certificate_and_https(gcp_domain_run):
    from tests.infra.run_stack import _fake_outputs

    run = gcp_domain_run
    typ = "gcp:compute/managedSslCertificate:ManagedSslCertificate"
    (certificate,) = run.of_type(typ)
    assert certificate.inputs["managed"]["domains"] == [GCP_DOMAIN], certificate.urn
    cert_name = _fake_outputs(typ, certificate.name, certificate.inputs)["name"]
    ingress = run.one("kubernetes:networking.k8s.io/v1:Ingress", "frontend")
    annotations = ingress.inputs["metadata"]["annotations"]
    assert annotations["ingress.gcp.kubernetes.io/pre-shared-cert"] == cert_name, \
        f"{ingress.urn}: the Ingress must present the stack's managed certificate"
    assert [r.get("host") for r in ingress.inputs["spec"]["rules"]] == [GCP_DOMAIN], ingress.urn
    url = f"https://{GCP_DOMAIN}"
    assert run.outputs["portalUrl"]["value"] == url
    # The DNS A record the operator creates points at the reserved address.
    (address,) = run.of_type("gcp:compute/globalAddress:GlobalAddress")
    assert run.outputs["portalAddress"]["value"] == _fake_outputs(address.type, address.name, address.inputs)["address"]
    assert annotations["kubernetes.io/ingress.global-static-ip-name"] == \
        _fake_outputs(address.type, address.name, address.inputs)["name"], ingress.urn
    frontend = run.one("kubernetes:apps/v1:Deployment", "frontend")
    assert env_of(pod_spec(frontend)["containers"][0])["KIOSK_PUBLIC_URL"] == url, frontend.urn
    (bucket,) = run.of_type(BUCKET)
    assert url in bucket.inputs["cors"][0]["origins"], f"{bucket.urn}: CORS must allow {url}"
    test_portal_ingress_uses_the_static_ip_and_neg_backends(run)
    test_bucket_not_public_and_uploads_output_expire(run)
    test_every_kubernetes_object_validates_strictly(run)


# --- GKE Managed Service for Prometheus ---------------------------------------------------

def selects(match_labels: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in match_labels.items())


def scraped_pods(run: StackRun, monitoring) -> list:
    """Workloads in the PodMonitoring's namespace whose pods it selects."""
    namespace = monitoring.inputs["metadata"]["namespace"]
    match = monitoring.inputs["spec"]["selector"]["matchLabels"]
    return [w for w in workloads(run) if w.inputs["metadata"]["namespace"] == namespace
            and selects(match, w.inputs["spec"]["template"]["metadata"]["labels"])]


def container_port(workload, name: str) -> int:
    ports = [p["containerPort"] for c in pod_spec(workload)["containers"] for p in c.get("ports", [])
             if p.get("name") == name]
    assert len(ports) == 1, f"{workload.urn}: no single container port named {name!r}"
    return ports[0]


def admits(rule: dict, namespace: str, port: int, port_name: str) -> bool:
    """Whether one NetworkPolicy ingress rule lets pods of `namespace` reach the port."""
    peers = rule.get("from")
    from_namespace = peers is None or any(
        "podSelector" not in peer and "ipBlock" not in peer
        and selects(peer.get("namespaceSelector", {}).get("matchLabels", {}),
                    {"kubernetes.io/metadata.name": namespace})
        for peer in peers)
    ports = rule.get("ports")
    on_port = ports is None or any(p.get("port") in (port, port_name) and p.get("protocol", "TCP") == "TCP"
                                   for p in ports)
    return from_namespace and on_port


def test_managed_prometheus_scrapes_tf_serving_consumers_and_frontend(gcp_run):
    run = gcp_run
    cluster = run.one(CLUSTER)
    assert cluster.inputs["monitoringConfig"]["managedPrometheus"]["enabled"] is True, cluster.urn
    monitorings = {m.inputs["metadata"]["name"]: m for m in run.of_type(POD_MONITORING)}
    expected = {"tf-serving": ("http", "/monitoring/prometheus/metrics"), "frontend": ("metrics", "/metrics"),
                **{f"consumers-{jt}": ("metrics", "/metrics") for jt in run.cfg("jobTypes")}}
    assert set(monitorings) == set(expected), f"{run.stack}: PodMonitorings {sorted(monitorings)}"
    for name, m in monitorings.items():
        i = m.inputs
        assert i["apiVersion"] == "monitoring.googleapis.com/v1" and i["kind"] == "PodMonitoring", m.urn
        assert i["metadata"]["namespace"] == run.cfg("namespace"), m.urn
        assert set(i["spec"]) <= {"selector", "endpoints", "targetLabels", "filterRunning", "limits"}, m.urn
        assert set(i["spec"]["selector"]) == {"matchLabels"}, m.urn
        (endpoint,) = i["spec"]["endpoints"]
        assert set(endpoint) <= {"port", "path", "interval", "timeout", "scheme", "params", "metricRelabeling",
                                 "authorization", "basicAuth", "oauth2", "tls", "proxyUrl"}, m.urn
        assert (endpoint["port"], endpoint["path"]) == expected[name], m.urn
        assert re.fullmatch(r"(\d+h)?(\d+m)?(\d+s)?", endpoint["interval"]) and endpoint["interval"], m.urn
        (workload,) = scraped_pods(run, m)
        assert workload.inputs["metadata"]["name"] == name, f"{m.urn}: scrapes {workload.urn}"
        container_port(workload, endpoint["port"])
    # TF-Serving serves its metrics where its monitoring config says.
    config = run.one("kubernetes:core/v1:ConfigMap", "tf-serving").inputs["data"]["monitoring.config"]
    assert f'path: "{expected["tf-serving"][1]}"' in config


def test_network_policies_admit_the_managed_collectors_on_the_metrics_ports(gcp_run):
    run = gcp_run
    policies = run.of_type(NETWORK_POLICY)
    checked = 0
    for m in run.of_type(POD_MONITORING):
        (endpoint,) = m.inputs["spec"]["endpoints"]
        for workload in scraped_pods(run, m):
            labels = workload.inputs["spec"]["template"]["metadata"]["labels"]
            port = container_port(workload, endpoint["port"])
            for policy in policies:
                spec = policy.inputs["spec"]
                if (policy.inputs["metadata"]["namespace"] != workload.inputs["metadata"]["namespace"]
                        or "Ingress" not in spec.get("policyTypes", ["Ingress"])
                        or not selects(spec["podSelector"].get("matchLabels", {}), labels)):
                    continue
                checked += 1
                assert any(admits(rule, GMP_NAMESPACE, port, endpoint["port"]) for rule in spec.get("ingress", [])), \
                    f"{policy.urn}: {GMP_NAMESPACE} cannot scrape {workload.urn} on {port}"
    assert checked >= 1, f"{run.stack}: TF-Serving's NetworkPolicy was not checked"


def test_no_pod_monitoring_without_managed_prometheus(aws_run):
    """EKS has no monitoring.googleapis.com CRD: declaring one would fail `pulumi up`."""
    found = [r.urn for r in aws_run.resources if "monitoring.googleapis.com" in r.type]
    assert not found, found
