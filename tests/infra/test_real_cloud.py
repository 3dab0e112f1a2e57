"""What a real cloud does that a mock run does not show by itself: the second
`up`, upgrades, `destroy`, least privilege (issue 10).

Each test reads the resource options the engine would receive (ignoreChanges,
deleteBeforeReplace, protect, dependencies, ...), recorded by run_stack.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import date
from pathlib import Path

import pytest
import yaml

from tests.infra.conftest import CLOUDS, STACKS
from tests.infra.run_stack import AWS_ACCOUNT, ECR_HOST, _fake_outputs
from tests.infra.stackrun import ROOT, StackRun

GKE_CLUSTER = "gcp:container/cluster:Cluster"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
K8S_PROVIDER = "pulumi:providers:kubernetes"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
RELEASE = "kubernetes:helm.sh/v3:Release"
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"

# End of standard support per minor version: EKS from its release calendar
# (docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html), GKE
# from its release schedule (cloud.google.com/kubernetes-engine/docs/release-schedule).
END_OF_STANDARD_SUPPORT = {
    "aws": {"1.33": date(2026, 7, 29), "1.34": date(2026, 12, 2), "1.35": date(2027, 3, 27)},
    "gcp": {"1.33": date(2026, 6, 30), "1.34": date(2026, 8, 30), "1.35": date(2027, 2, 28)},
}
# The stacks must stay in standard support at least through this day.
SUPPORTED_THROUGH = date(2026, 12, 31)


def workload_selected_by(run: StackRun, selector: dict):
    found = [r for r in run.k8s_objects() if r.kind in ("Deployment", "StatefulSet")
             and selector.items() <= r.inputs["spec"]["template"]["metadata"]["labels"].items()]
    assert len(found) == 1, f"{run.stack}: PDB selector {selector} matches {[r.urn for r in found]}"
    return found[0]


# --- 1. GKE: node_config is read back empty, and a replacement needs the master CIDR ---------

def test_gke_cluster_ignores_node_config_and_deletes_before_it_replaces(gcp_run):
    cluster = gcp_run.one(GKE_CLUSTER)
    assert cluster.inputs["removeDefaultNodePool"] is True, cluster.urn
    assert "nodeConfig" in cluster.options["ignoreChanges"], \
        f"{cluster.urn}: the next up would plan a replacement (node_config reads back empty)"
    assert cluster.options["deleteBeforeReplace"], \
        f"{cluster.urn}: a new cluster cannot take the old one's master CIDR while it exists"


# --- 2. node upgrades can drain every node ------------------------------------------------

def test_every_pdb_lets_a_node_drain_and_redis_stays_out_of_scale_down(run):
    budgets = run.of_type(PDB)
    assert budgets, run.stack
    for pdb in budgets:
        spec = pdb.inputs["spec"]
        workload = workload_selected_by(run, spec["selector"]["matchLabels"])
        replicas = workload.inputs["spec"].get("replicas", 1) or 1
        allowed = spec["maxUnavailable"] if "maxUnavailable" in spec else replicas - spec["minAvailable"]
        assert allowed >= 1, (f"{pdb.urn}: allows no eviction of {replicas} pod(s): a managed node group "
                              "update fails with PodEvictionFailure")
    redis = [w for w in run.k8s_objects() if w.kind == "StatefulSet"
             and w.inputs["metadata"]["name"] == "redis"]
    for statefulset in redis:
        annotations = statefulset.inputs["spec"]["template"]["metadata"].get("annotations", {})
        assert annotations.get(SAFE_TO_EVICT) == "false", \
            f"{statefulset.urn}: the cluster autoscaler must not move Redis to empty a node"


# --- 3. a Kubernetes minor in standard support on both clouds -----------------------------

def test_kubernetes_version_in_standard_support_with_a_matching_autoscaler(run):
    version = run.cfg("kubernetesVersion")
    ends = END_OF_STANDARD_SUPPORT[run.cfg("cloud")].get(version)
    assert ends is not None and ends > SUPPORTED_THROUGH, \
        f"{run.stack}: Kubernetes {version} leaves standard support on {ends} (before {SUPPORTED_THROUGH})"
    if run.cfg("cloud") == "gcp":
        assert run.one(GKE_CLUSTER).inputs["minMasterVersion"] == version
    else:
        assert run.one(EKS_CLUSTER).inputs["version"] == version
        for group in run.of_type("aws:eks/nodeGroup:NodeGroup"):
            assert group.inputs["version"] == version, group.urn
        (autoscaler,) = [r for r in run.of_type(RELEASE) if r.inputs["chart"] == "cluster-autoscaler"]
        tag = autoscaler.inputs["values"]["image"]["tag"]
        assert tag.startswith(f"v{version}."), f"{autoscaler.urn}: image {tag} is not of minor {version}"


def test_component_defaults_follow_the_config_schema():
    from components.aws.cluster_autoscaler import ClusterAutoscalerArgs
    from components.aws.eks import EksClusterArgs
    from components.gcp.gke import GkeClusterArgs

    schema = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    version = schema["kubernetesVersion"]["default"]
    assert EksClusterArgs.__dataclass_fields__["kubernetes_version"].default == version
    assert GkeClusterArgs.__dataclass_fields__["kubernetes_version"].default == version
    autoscaler = ClusterAutoscalerArgs.__dataclass_fields__
    assert autoscaler["image_tag"].default == schema["clusterAutoscalerImageTag"]["default"]
    assert autoscaler["chart_version"].default == schema["clusterAutoscalerChartVersion"]["default"]


# --- 4. AWS CI reaches the private EKS endpoint ------------------------------------------

def listed_stacks(glob: str) -> list[dict]:
    """Run the stacks workflow's listing step as GitHub would, for a stack glob."""
    from tests.infra.test_workflows import load

    job = load("pulumi-stacks.yml")["jobs"]["stacks"]
    (step,) = [s for s in job["steps"] if s.get("id") == "list"]
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"kiosk-gh-output-{os.getpid()}"
    out.write_text("")
    try:
        subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], cwd=ROOT, check=True,
                       env={**os.environ, "GITHUB_OUTPUT": str(out), "STACKS": glob})
        outputs = dict(line.split("=", 1) for line in out.read_text().splitlines() if line)
    finally:
        out.unlink()
    return json.loads(outputs["stacks"])


def test_aws_stacks_run_on_a_runner_inside_their_vpc():
    from tests.infra.test_workflows import load

    matrix = listed_stacks("*")
    assert sorted(entry["name"] for entry in matrix) == sorted(STACKS)
    runs_on = load("pulumi-stacks.yml")["jobs"]["stack"]["runs-on"]
    assert runs_on == "${{ fromJSON(matrix.stack.runner) }}", runs_on
    for entry in matrix:
        runner = json.loads(entry["runner"])
        if CLOUDS[entry["name"]] == "aws":
            assert runner == ["self-hosted", f"kiosk-{entry['name']}"], entry
        else:
            assert runner == "ubuntu-latest", entry


# --- 14. CI: dev before prod covers every stack --------------------------------------------

def test_deploy_globs_split_the_stacks_into_dev_then_prod():
    dev = {e["name"] for e in listed_stacks("dev-*")}
    prod = {e["name"] for e in listed_stacks("prod-*")}
    assert dev and prod and not dev & prod
    assert dev | prod == set(STACKS), "a stack that neither deploy job runs would never be deployed"


def test_ci_runner_reaches_the_private_endpoint_and_the_preview_role_is_admin(aws_run):
    run = aws_run
    cluster = run.one(EKS_CLUSTER)
    assert cluster.inputs["vpcConfig"]["endpointPrivateAccess"] is True, cluster.urn
    (runner_sg,) = [r for r in run.of_type("aws:ec2/securityGroup:SecurityGroup") if "ci-runner" in r.name]
    (vpc,) = run.of_type("aws:ec2/vpc:Vpc")
    assert runner_sg.inputs["vpcId"] == f"{vpc.name}-id", runner_sg.urn
    rules = [r for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
             if r.inputs.get("referencedSecurityGroupId") == f"{runner_sg.name}-id"]
    assert len(rules) == 1, f"{run.stack}: the runner's group must be admitted to the cluster's"
    (rule,) = rules
    assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == (443, 443, "tcp")
    assert rule.inputs["securityGroupId"] == f"sg-{cluster.name}", f"{rule.urn}: not the cluster security group"
    assert run.outputs["ciRunnerSecurityGroup"]["value"] == f"{runner_sg.name}-id"
    assert run.outputs["ciRunnerSubnets"]["value"], run.stack
    principals = {e.inputs["principalArn"] for e in run.of_type("aws:eks/accessEntry:AccessEntry")}
    assert any(p.endswith(":role/kiosk-ci-preview") for p in principals), \
        f"{run.stack}: the preview role has no access entry ({sorted(principals)})"


# --- 5. a stable kubeconfig: node pools never make the provider look like a new cluster ------

NODE_POOLS = ("gcp:container/nodePool:NodePool", "aws:eks/nodeGroup:NodeGroup")


def test_kubeconfig_and_cluster_identifier_come_from_the_cluster_alone(run):
    provider = run.one(K8S_PROVIDER)
    pools = {r.urn for r in run.resources if r.type in NODE_POOLS}
    (cluster,) = [r for r in run.resources if r.type in (GKE_CLUSTER, EKS_CLUSTER)]
    for prop in ("kubeconfig", "clusterIdentifier"):
        sources = set(provider.property_dependencies.get(prop, ()))
        assert sources == {cluster.urn}, f"{provider.urn}: {prop} is computed from {sorted(sources)}"
    assert provider.inputs["clusterIdentifier"].startswith(cluster.inputs.get("name") or "kiosk"), provider.urn
    # Nothing is deployed before the system nodes exist: the provider waits for them.
    (system,) = [r for r in run.resources if r.urn in pools and r.name.endswith("-system")]
    assert system.urn in provider.dependencies, f"{provider.urn}: must wait for the system nodes"


# --- 6. EKS destroy: every Kubernetes object goes before the add-ons -------------------------

def test_eks_objects_wait_for_the_addons_so_destroy_deletes_them_first(aws_run):
    run = aws_run
    addons = {a.inputs["addonName"]: a for a in run.of_type("aws:eks/addon:Addon")}
    objects = [r for r in run.resources if r.type.startswith("kubernetes:")]
    ingress = run.one("kubernetes:networking.k8s.io/v1:Ingress", "frontend")
    (controller,) = [r for r in run.of_type(RELEASE) if r.inputs["chart"] == "aws-load-balancer-controller"]
    assert run.waits_for(ingress, controller.urn), f"{ingress.urn}: its ALB controller must outlive it"
    for name in ("coredns", "kube-proxy", "vpc-cni", "aws-ebs-csi-driver"):
        for obj in objects:
            assert run.waits_for(obj, addons[name].urn), \
                f"{obj.urn}: destroy would delete {name} while it still exists"


# --- 7. GKE destroy: NEGs are gone before the cluster and the network ------------------------

def test_gke_neg_service_namespace_outwaits_the_neg_garbage_collection(gcp_run):
    run = gcp_run
    service = run.one("kubernetes:core/v1:Service", "frontend")
    assert "cloud.google.com/neg" in service.inputs["metadata"]["annotations"], service.urn
    (namespace,) = [r for r in run.of_type("kubernetes:core/v1:Namespace")
                    if r.inputs["metadata"]["name"] == service.inputs["metadata"]["namespace"]]
    assert run.waits_for(service, namespace.urn), f"{service.urn}: must be deleted before its namespace"
    timeout = namespace.options["customTimeouts"].get("delete", "")
    assert timeout.endswith("m") and int(timeout[:-1]) >= 20, \
        f"{namespace.urn}: delete timeout {timeout or 'default'} is shorter than NEG garbage collection"
    (cluster,) = run.of_type(GKE_CLUSTER)
    (network,) = run.of_type("gcp:compute/network:Network")
    assert run.waits_for(namespace, cluster.urn) and run.waits_for(cluster, network.urn), \
        "the namespace must be gone before the cluster, and the cluster before the network"


# --- 8. dev-aws: the system nodes stay in the zones of their Redis volume ------------------

def test_system_nodes_span_no_more_zones_than_nodes(aws_run):
    run = aws_run
    (system,) = [g for g in run.of_type("aws:eks/nodeGroup:NodeGroup") if g.name.endswith("-system")]
    subnets = {s.name: s.inputs["availabilityZone"] for s in run.of_type("aws:ec2/subnet:Subnet")}
    zones = {subnets[sid.removesuffix("-id")] for sid in system.inputs["subnetIds"]}
    nodes = system.inputs["scalingConfig"]["minSize"]
    assert nodes == system.inputs["scalingConfig"]["maxSize"], system.urn
    assert nodes % len(zones) == 0, \
        f"{system.urn}: {nodes} node(s) over {sorted(zones)}: a replacement may leave Redis' volume's zone"


# --- 9. GKE: only the consumers run on (and keep alive) the CPU pool --------------------------

def test_gke_cpu_pool_is_tainted_and_only_consumers_tolerate_it(gcp_run):
    run = gcp_run
    (cpu,) = [p for p in run.of_type("gcp:container/nodePool:NodePool") if p.name.endswith("-cpu")]
    taints = cpu.inputs["nodeConfig"].get("taints", [])
    assert taints, f"{cpu.urn}: untainted, kube-system pods land on it and keep its last node"
    expected = [{"key": t["key"], "operator": "Equal", "value": t["value"], "effect": "NoSchedule"}
                for t in taints if t["effect"] == "NO_SCHEDULE"]
    for workload in run.k8s_objects():
        if workload.kind not in ("Deployment", "StatefulSet"):
            continue
        spec = workload.inputs["spec"]["template"]["spec"]
        tolerated = [t for t in spec.get("tolerations", []) if t in expected]
        if workload.inputs["metadata"]["name"].startswith("consumers-"):
            assert tolerated == expected, f"{workload.urn}: consumers must tolerate the CPU pool's taint"
        else:
            assert not tolerated, f"{workload.urn}: only consumers may run on the CPU pool"


# --- 10. KEDA-owned Deployments start at zero and leave replicas to KEDA ----------------------

def test_keda_scaled_deployments_start_at_zero_and_ignore_replicas(run):
    targets = {so.inputs["spec"]["scaleTargetRef"]["name"]
               for so in run.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")}
    assert targets, run.stack
    for name in targets:
        deployment = run.one("kubernetes:apps/v1:Deployment", name)
        assert deployment.inputs["spec"].get("replicas") == 0, \
            f"{deployment.urn}: created with the default one replica, the first up starts a node for nothing"
        assert "spec.replicas" in deployment.options["ignoreChanges"], \
            f"{deployment.urn}: later updates would take spec.replicas back from KEDA"


# --- 11. GCS: each identity holds its roles only on its prefixes ---------------------------

OBJECT = "storage.googleapis.com/Object"
# What each role lets a member do with an object's content.
ROLE_ACCESS = {"roles/storage.objectUser": {"read", "write"}, "roles/storage.objectViewer": {"read"},
               "roles/storage.objectCreator": {"write"}}
# The S3 policies' prefixes (components/aws/policies.py), per GSA id suffix.
EXPECTED_ACCESS = {
    "cons": {("read", "uploads/"), ("write", "uploads/"), ("read", "output/"), ("write", "output/")},
    "front": {("write", "uploads/"), ("read", "uploads/"), ("read", "output/"), ("read", "models/")},
    "tfs": {("read", "models/")},
}
TERM = re.compile(r'^resource\.(type) == "([^"]+)"$|^resource\.(name)\.startsWith\("([^"]+)"\)$')


def condition_holds(expression: str, resource: dict) -> bool:
    """Evaluate the CEL subset the kiosk writes: `||` of type equalities and name prefixes."""
    for term in expression.split(" || "):
        match = TERM.match(term.strip())
        assert match, f"unexpected condition term {term!r}"
        if match.group(1) and resource["type"] == match.group(2):
            return True
        if match.group(3) and resource["name"].startswith(match.group(4)):
            return True
    return False


def test_gcs_roles_are_scoped_to_each_identitys_prefixes(gcp_run):
    run = gcp_run
    bucket = run.outputs["bucket"]["value"]
    granted: dict[str, set] = {suffix: set() for suffix in EXPECTED_ACCESS}
    for binding in run.of_type("gcp:storage/bucketIAMMember:BucketIAMMember"):
        suffix = binding.inputs["member"].split("@")[0].rsplit("-", 1)[-1]
        condition = binding.inputs.get("condition")
        assert condition, f"{binding.urn}: {binding.inputs['role']} on the whole bucket"
        for access in ROLE_ACCESS[binding.inputs["role"]]:
            for prefix in ("uploads/", "output/", "models/", ""):
                obj = {"type": OBJECT, "name": f"projects/_/buckets/{bucket}/objects/{prefix}x/y.tif"}
                if condition_holds(condition["expression"], obj):
                    granted[suffix].add((access, prefix))
        # Listing (checked on the bucket) stays possible for every identity.
        assert condition_holds(condition["expression"], {"type": "storage.googleapis.com/Bucket",
                                                         "name": f"projects/_/buckets/{bucket}"}), binding.urn
    assert granted == EXPECTED_ACCESS


# --- 13. prod: destroy stops before it starts ------------------------------------------------

PROTECTED = {
    "gcp": (GKE_CLUSTER, "gcp:storage/bucket:Bucket", "gcp:redis/instance:Instance",
            "gcp:artifactregistry/repository:Repository"),
    "aws": (EKS_CLUSTER, "aws:s3/bucket:Bucket", "aws:ecr/repository:Repository"),
}


def test_deletion_protected_stacks_protect_cluster_bucket_redis_and_registries(run):
    protect = run.cfg("deletionProtection")
    assert protect is run.stack.startswith("prod-"), run.stack
    kinds = PROTECTED[run.cfg("cloud")]
    # Caches of Docker Hub hold nothing of the kiosk's own.
    held = [r for r in run.resources if r.type in kinds and r.inputs.get("mode") != "REMOTE_REPOSITORY"]
    assert {r.type for r in held} >= set(kinds) - {"gcp:redis/instance:Instance"}, run.stack
    for r in held:
        assert r.options["protect"] is protect, f"{r.urn}: protect must be {protect}"
    others = [r.urn for r in run.resources if r.options["protect"] and r not in held]
    assert not others, f"{run.stack}: protected beyond the stateful resources: {others}"


# --- 15. Docker Hub images come through the stack's own registry -------------------------

def container_images(run: StackRun) -> dict[str, str]:
    images = {}
    for w in run.k8s_objects():
        if w.kind in ("Deployment", "StatefulSet"):
            spec = w.inputs["spec"]["template"]["spec"]
            for c in spec["containers"] + spec.get("initContainers", []):
                images[f"{w.inputs['metadata']['name']}/{c['name']}"] = c["image"]
    return images


def test_docker_hub_images_are_pulled_through_the_stacks_cache(run):
    from components.shapes import docker_hub_path

    if run.cfg("cloud") == "gcp":
        (remote,) = [r for r in run.of_type("gcp:artifactregistry/repository:Repository")
                     if r.inputs.get("mode") == "REMOTE_REPOSITORY"]
        assert remote.inputs["remoteRepositoryConfig"]["dockerRepository"]["publicRepository"] == "DOCKER_HUB"
        cache = f"{run.config['gcp:region']}-docker.pkg.dev/{run.config['gcp:project']}/{remote.inputs['repositoryId']}/"
        (reader,) = [m for m in run.of_type("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
                     if m.inputs["repository"] == remote.inputs["repositoryId"]]
        (nodes,) = [a for a in run.of_type("gcp:serviceaccount/account:Account") if a.name.endswith("-nodes")]
        assert reader.inputs["member"] == f"serviceAccount:{nodes.inputs['accountId']}@{run.config['gcp:project']}" \
            ".iam.gserviceaccount.com" and reader.inputs["role"] == "roles/artifactregistry.reader", reader.urn
    else:
        (rule,) = run.of_type("aws:ecr/pullThroughCacheRule:PullThroughCacheRule")
        assert rule.inputs["upstreamRegistryUrl"] == "registry-1.docker.io", rule.urn
        assert rule.inputs["credentialArn"] == run.cfg("dockerHubCredentialArn"), rule.urn
        prefix = rule.inputs["ecrRepositoryPrefix"]
        cache = f"{ECR_HOST}/{prefix}/"
        (role,) = [r for r in run.of_type("aws:iam/role:Role") if r.name.endswith("-nodes")]
        role_name = _fake_outputs(role.type, role.name, role.inputs)["name"]
        (policy,) = [p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == role_name]
        (statement,) = json.loads(policy.inputs["policy"])["Statement"]
        assert statement["Action"] == ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"], policy.urn
        assert statement["Resource"] == [f"arn:aws:ecr:{run.config['aws:region']}:{AWS_ACCOUNT}:repository/{prefix}/*"]
    configured = {run.cfg("tfServingImage"), run.cfg("redisImage"), run.cfg("modelSyncImage")}
    mirrored = 0
    for container, image in container_images(run).items():
        assert docker_hub_path(image) is None, f"{container}: {image} comes from Docker Hub through NAT"
        if image.startswith(cache):
            assert image.removeprefix(cache) in {docker_hub_path(i) for i in configured}, (container, image)
            mirrored += 1
    assert mirrored >= 1, f"{run.stack}: TF-Serving's image (and Redis', the model sync's) must come from {cache}"


@pytest.mark.parametrize("image,path", [("redis:7.4-alpine", "library/redis:7.4-alpine"),
                                        ("tensorflow/serving:2.18.0-gpu", "tensorflow/serving:2.18.0-gpu"),
                                        ("ghcr.io/kedacore/keda:2.18.3", None),
                                        ("registry.k8s.io/autoscaling/cluster-autoscaler:v1.35.0", None),
                                        ("localhost:5000/x:1", None), ("localhost/x:1", None)])
def test_docker_hub_path_tells_docker_hub_images_apart(image, path):
    from components.shapes import docker_hub_path

    assert docker_hub_path(image) == path


# --- 16. config rolls pods, the models' copy is bounded, HTTPS redirects ---------------------

def test_tf_serving_rolls_when_its_start_up_config_changes(tmp_path_factory):
    """Two runs of a stack that differ only in batching: the pod template differs (a
    rollout) by its checksum, while a model list change leaves it alone (TF-Serving
    rereads models.config without a restart)."""
    from tests.infra.stackrun import run_stacks

    stack = STACKS["dev-gcp"]
    variants = {"base": {}, "batching": {"kiosk:batchTimeoutMicros": 7000},
                "models": {"kiosk:models": ["NuclearSegmentation:1", "Other:2"]}}
    templates = {}
    for key, overrides in variants.items():
        (rc, out, err), = run_stacks([stack], overrides, tmp_path_factory.mktemp(key)).values()
        assert rc == 0, err[-4000:]
        run = StackRun(stack, json.loads(out), overrides)
        templates[key] = run.one("kubernetes:apps/v1:Deployment", "tf-serving").inputs["spec"]["template"]
    checksum = {k: t["metadata"].get("annotations", {}).get("kiosk.dev/config-checksum") for k, t in templates.items()}
    assert checksum["base"], "no config checksum on TF-Serving's pod template"
    assert checksum["batching"] != checksum["base"], "a batching change must roll TF-Serving's pods"
    assert checksum["models"] == checksum["base"], "a model list change is reread in place, no rollout"


def test_every_empty_dir_is_bounded(run):
    for w in run.k8s_objects():
        if w.kind in ("Deployment", "StatefulSet"):
            for volume in w.inputs["spec"]["template"]["spec"].get("volumes", []):
                if "emptyDir" in volume:
                    assert volume["emptyDir"].get("sizeLimit"), \
                        f"{w.urn}: emptyDir {volume['name']} may fill the node's disk"


def https_redirect_of(run: StackRun):
    ingress = run.one("kubernetes:networking.k8s.io/v1:Ingress", "frontend")
    configs = run.of_type("kubernetes:networking.gke.io/v1beta1:FrontendConfig")
    return ingress, configs


def test_gke_ingress_redirects_http_to_https_with_a_domain(tmp_path_factory, gcp_run):
    from tests.infra.stackrun import run_stacks

    ingress, configs = https_redirect_of(gcp_run)
    if not gcp_run.cfg("domain"):
        assert not configs, f"{gcp_run.stack}: no HTTPS to redirect to without a domain"
        assert "networking.gke.io/v1beta1.FrontendConfig" not in ingress.inputs["metadata"]["annotations"]
    stack = STACKS[gcp_run.stack]
    overrides = {"kiosk:domain": "kiosk.example.org"}
    (rc, out, err), = run_stacks([stack], overrides, tmp_path_factory.mktemp("https")).values()
    assert rc == 0, err[-4000:]
    run = StackRun(stack, json.loads(out), overrides)
    ingress, (config,) = https_redirect_of(run)
    annotations = ingress.inputs["metadata"]["annotations"]
    assert annotations["networking.gke.io/v1beta1.FrontendConfig"] == config.inputs["metadata"]["name"]
    assert config.inputs["metadata"]["namespace"] == ingress.inputs["metadata"]["namespace"], config.urn
    assert config.inputs["spec"]["redirectToHttps"]["enabled"] is True, config.urn
    assert annotations.get("ingress.gcp.kubernetes.io/pre-shared-cert"), "redirect only where HTTPS is served"
    assert run.waits_for(ingress, config.urn), f"{ingress.urn}: its FrontendConfig must exist first"
