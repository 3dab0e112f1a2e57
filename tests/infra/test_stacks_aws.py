"""Invariants of the AWS family, for every stack file with `kiosk:cloud: aws`."""

from __future__ import annotations

import ipaddress
import json

import pytest

from tests.infra.conftest import STACKS
from tests.infra.run_stack import ECR_HOST, _fake_outputs, asg_name
from tests.infra.stackrun import StackRun, is_secret, run_stacks
from tests.infra.test_stacks import EFFECTS, NODE_GROUP, env_of, pod_spec, workloads

CLUSTER = "aws:eks/cluster:Cluster"
ASG_TAG = "aws:autoscaling/tag:Tag"
SUBNET = "aws:ec2/subnet:Subnet"
BUCKET = "aws:s3/bucket:Bucket"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
ROLE = "aws:iam/role:Role"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
RELEASE = "kubernetes:helm.sh/v3:Release"
TEMPLATE = "k8s.io/cluster-autoscaler/node-template"
POOL = "kiosk.dev/pool"


def group(run: StackRun, pool: str):
    found = [g for g in run.of_type(NODE_GROUP) if g.inputs.get("labels", {}).get(POOL) == pool]
    assert len(found) == 1, f"{run.stack}: expected one {pool} node group, found {[g.urn for g in found]}"
    return found[0]


def release(run: StackRun, chart: str):
    found = [r for r in run.of_type(RELEASE) if r.inputs["chart"] == chart]
    assert len(found) == 1, f"{run.stack}: expected one {chart} release"
    return found[0]


def bucket_arn(run: StackRun) -> str:
    return f"arn:aws:s3:::{run.outputs['bucket']['value']}"


def role_of(run: StackRun, association) -> object:
    """The IAM role an association binds (matched by the ARN the mocks give it)."""
    arn = association.inputs["roleArn"]
    roles = [r for r in run.of_type(ROLE) if _fake_outputs(ROLE, r.name, r.inputs)["arn"] == arn]
    assert len(roles) == 1, f"{association.urn}: binds unknown role {arn}"
    return roles[0]


def policies_of(run: StackRun, role) -> list[dict]:
    role_id = f"{role.name}-id"
    return [json.loads(p.inputs["policy"]) for p in run.of_type(ROLE_POLICY) if p.inputs["role"] == role_id]


def association_for(run: StackRun, namespace: str, service_account: str):
    found = [a for a in run.of_type(ASSOCIATION)
             if a.inputs["namespace"] == namespace and a.inputs["serviceAccount"] == service_account]
    assert len(found) == 1, f"{run.stack}: no Pod Identity association for {namespace}/{service_account}"
    return found[0]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# --- network and cluster ----------------------------------------------------------

def test_control_plane_logs_expire_and_go_with_the_stack(aws_run):
    """EKS creates /aws/eks/<cluster>/cluster itself, never expiring, and
    destroy would leave it behind; the stack's own group comes first."""
    run = aws_run
    cluster = run.one(CLUSTER)
    (group,) = run.of_type(LOG_GROUP)
    assert group.inputs["name"] == f"/aws/eks/{cluster.inputs['name']}/cluster", group.urn
    assert group.inputs["retentionInDays"] == run.cfg("controlPlaneLogRetentionDays") > 0, group.urn
    assert group.inputs.get("skipDestroy") is not True, f"{group.urn}: destroy must delete the group"
    assert group.urn in cluster.dependencies, f"{cluster.urn}: must be created after {group.urn}"
    assert cluster.inputs["enabledClusterLogTypes"], f"{cluster.urn}: logs nothing into {group.inputs['name']}"


def test_nodes_live_in_private_subnets_behind_nat(aws_run):
    run = aws_run
    zones = run.cfg("availabilityZones")
    subnets = run.of_type(SUBNET)
    private = [s for s in subnets if "kubernetes.io/role/internal-elb" in s.inputs.get("tags", {})]
    public = [s for s in subnets if "kubernetes.io/role/elb" in s.inputs.get("tags", {})]
    assert sorted(s.inputs["availabilityZone"] for s in private) == sorted(zones), run.stack
    assert sorted(s.inputs["availabilityZone"] for s in public) == sorted(zones), run.stack
    for s in subnets:
        assert s.inputs.get("mapPublicIpOnLaunch") is not True, f"{s.urn}: no instance gets a public IP"
        assert ipaddress.ip_network(s.inputs["cidrBlock"]).subnet_of(ipaddress.ip_network(run.cfg("vpcCidr"))), s.urn
    nats = run.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == (len(zones) if run.cfg("natGatewayPerZone") else 1), f"{run.stack}: {len(nats)} NAT gateways"
    tables = run.of_type("aws:ec2/routeTable:RouteTable")
    private_routes = [t for t in tables if "private" in t.name]
    assert len(private_routes) == len(zones), run.stack
    for t in private_routes:
        (route,) = t.inputs["routes"]
        assert route["cidrBlock"] == "0.0.0.0/0" and route.get("natGatewayId"), f"{t.urn}: private egress via NAT"
        assert not route.get("gatewayId"), f"{t.urn}: private subnets must not route to the internet gateway"
    private_ids = {f"{s.name}-id" for s in private}
    for g in run.of_type(NODE_GROUP):
        assert set(g.inputs["subnetIds"]) <= private_ids, f"{g.urn}: nodes must be in private subnets"
    assert set(run.one(CLUSTER).inputs["vpcConfig"]["subnetIds"]) <= private_ids


def test_cluster_version_access_and_endpoint(aws_run):
    run = aws_run
    cluster = run.one(CLUSTER)
    i = cluster.inputs
    assert i["version"] == run.cfg("kubernetesVersion"), cluster.urn
    assert i["name"] == f"kiosk-{run.stack}", cluster.urn
    assert i["accessConfig"]["authenticationMode"] == "API", f"{cluster.urn}: access entries, not aws-auth"
    vpc = i["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True, cluster.urn
    cidrs = run.cfg("masterAuthorizedCidrs")
    assert vpc["endpointPublicAccess"] is bool(cidrs), cluster.urn
    assert vpc.get("publicAccessCidrs", []) == cidrs, cluster.urn
    for cidr in vpc.get("publicAccessCidrs", []):
        assert ipaddress.ip_network(cidr, strict=False).prefixlen > 0, f"{cluster.urn}: open to {cidr}"
    assert i.get("deletionProtection", False) is run.cfg("deletionProtection"), cluster.urn
    provider = run.one("pulumi:providers:kubernetes")
    kubeconfig = json.loads(provider.inputs["kubeconfig"])
    user = kubeconfig["users"][0]["user"]["exec"]
    assert user["command"] == "aws" and user["args"][:2] == ["eks", "get-token"], f"{provider.urn}: no static token"
    assert kubeconfig["clusters"][0]["cluster"]["server"].startswith("https://"), provider.urn


# --- node groups ---------------------------------------------------------------------

def test_gpu_group_scales_from_zero_with_node_template_tags_on_its_asg(aws_run):
    run = aws_run
    gpu = group(run, "gpu")
    i = gpu.inputs
    assert i["amiType"] == "AL2023_x86_64_NVIDIA", gpu.urn
    assert i["instanceTypes"] == [run.cfg("gpuInstanceType")], gpu.urn
    scaling = i["scalingConfig"]
    assert scaling["minSize"] == 0 and scaling["desiredSize"] == 0, f"{gpu.urn}: GPU group must scale from 0"
    assert scaling["maxSize"] * run.cfg("gpusPerNode") <= run.cfg("maxGpus"), f"{gpu.urn}: exceeds kiosk:maxGpus"
    assert scaling["maxSize"] >= 1, gpu.urn
    assert i["capacityType"] == ("SPOT" if run.cfg("gpuSpot") else "ON_DEMAND"), gpu.urn
    taints = {(t["key"], t["value"], EFFECTS[t["effect"]]) for t in i["taints"]}
    assert ("nvidia.com/gpu", "present", "NoSchedule") in taints, f"{gpu.urn}: GPU nodes must be tainted"
    # Every label, taint and the GPU count as a tag on the Auto Scaling group EKS made.
    expected = {f"{TEMPLATE}/label/{k}": v for k, v in i["labels"].items()}
    expected |= {f"{TEMPLATE}/taint/{k}": f"{v}:{e}" for k, v, e in taints}
    expected[f"{TEMPLATE}/resources/nvidia.com/gpu"] = str(run.cfg("gpusPerNode"))
    asg = asg_name(gpu.name)
    tags = [t for t in run.of_type(ASG_TAG) if t.inputs["autoscalingGroupName"] == asg]
    got = {t.inputs["tag"]["key"]: t.inputs["tag"]["value"] for t in tags}
    assert got == expected, f"{gpu.urn}: ASG {asg} tags {got}, expected {expected}"
    assert all(t.inputs["tag"]["propagateAtLaunch"] is True for t in tags), gpu.urn
    assert f"{TEMPLATE}/label/{POOL}" in got and f"{TEMPLATE}/label/k8s.amazonaws.com/accelerator" in got


def test_cpu_group_scales_from_zero_with_spot_option(aws_run):
    run = aws_run
    cpu = group(run, "cpu")
    scaling = cpu.inputs["scalingConfig"]
    assert scaling["minSize"] == 0 and scaling["maxSize"] == run.cfg("cpuMaxNodes"), cpu.urn
    assert cpu.inputs["capacityType"] == ("SPOT" if run.cfg("cpuSpot") else "ON_DEMAND"), cpu.urn
    assert cpu.inputs["instanceTypes"] == run.cfg("cpuInstanceTypes"), cpu.urn
    tags = {t.inputs["tag"]["key"]: t.inputs["tag"]["value"]
            for t in run.of_type(ASG_TAG) if t.inputs["autoscalingGroupName"] == asg_name(cpu.name)}
    assert tags == {f"{TEMPLATE}/label/{POOL}": "cpu"}, f"{cpu.urn}: {tags}"
    system = group(run, "system")
    s = system.inputs["scalingConfig"]
    assert s["minSize"] == s["maxSize"] == run.cfg("systemNodeCount"), system.urn
    assert system.inputs["capacityType"] == "ON_DEMAND", f"{system.urn}: Redis and the frontend stay on demand"


def test_stack_sizes_match_their_environment(aws_run):
    run = aws_run
    gpu = group(run, "gpu").inputs
    total_gpus = gpu["scalingConfig"]["maxSize"] * run.cfg("gpusPerNode")
    if run.stack.startswith("dev"):
        assert total_gpus <= 1, f"{run.stack}: dev allows at most 1 GPU, got {total_gpus}"
        assert all(g.inputs["capacityType"] == "SPOT" for g in run.of_type(NODE_GROUP)
                   if g.inputs["scalingConfig"]["minSize"] == 0), f"{run.stack}: dev autoscaled groups must be Spot"
    if run.stack.startswith("prod"):
        assert total_gpus <= 8, f"{run.stack}: prod allows at most 8 GPUs, got {total_gpus}"
        assert len(run.cfg("availabilityZones")) >= 3 and run.cfg("natGatewayPerZone"), run.stack
        assert run.cfg("deletionProtection") is True, run.stack


# --- add-ons ------------------------------------------------------------------------

def test_cluster_addons_and_their_identities(aws_run):
    run = aws_run
    cluster = run.one(CLUSTER).inputs["name"]
    addons = {a.inputs["addonName"]: a for a in run.of_type("aws:eks/addon:Addon")}
    assert {"vpc-cni", "eks-pod-identity-agent", "aws-ebs-csi-driver", "coredns", "kube-proxy"} <= set(addons)
    cni = json.loads(addons["vpc-cni"].inputs["configurationValues"])
    assert cni["enableNetworkPolicy"] == "true", "the kiosk's NetworkPolicies need the VPC CNI to enforce them"

    autoscaler = release(run, "cluster-autoscaler").inputs
    values = autoscaler["values"]
    assert autoscaler["repositoryOpts"]["repo"] == "https://kubernetes.github.io/autoscaler"
    assert values["autoDiscovery"]["clusterName"] == cluster and values["awsRegion"] == run.config["aws:region"]
    assert values["image"]["tag"].lstrip("v").startswith(run.cfg("kubernetesVersion") + "."), values["image"]
    association_for(run, autoscaler["namespace"], values["rbac"]["serviceAccount"]["name"])

    plugin = release(run, "nvidia-device-plugin").inputs["values"]
    terms = plugin["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    gpu_labels = group(run, "gpu").inputs["labels"]
    (term,) = terms
    for expr in term["matchExpressions"]:
        assert gpu_labels.get(expr["key"]) in expr["values"], f"device plugin would not land on GPU nodes: {expr}"
    tolerated = {(t["key"], t["value"], t["effect"]) for t in plugin["tolerations"]}
    assert ("nvidia.com/gpu", "present", "NoSchedule") in tolerated, plugin["tolerations"]

    lbc = release(run, "aws-load-balancer-controller").inputs
    (vpc,) = run.of_type("aws:ec2/vpc:Vpc")
    assert lbc["values"]["clusterName"] == cluster and lbc["values"]["vpcId"] == f"{vpc.name}-id", lbc["values"]
    association_for(run, lbc["namespace"], lbc["values"]["serviceAccount"]["name"])
    association_for(run, "kube-system", "ebs-csi-controller-sa")


def test_redis_volume_uses_the_ebs_storage_class(aws_run):
    run = aws_run
    (storage_class,) = run.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    assert storage_class.inputs["provisioner"] == "ebs.csi.aws.com", storage_class.urn
    assert storage_class.inputs["parameters"]["encrypted"] == "true", storage_class.urn
    redis = run.one("kubernetes:apps/v1:StatefulSet", "redis")
    claim = redis.inputs["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == storage_class.inputs["metadata"]["name"], redis.urn


# --- bucket ---------------------------------------------------------------------------

def test_bucket_private_encrypted_and_expiring(aws_run):
    run = aws_run
    (bucket,) = run.of_type(BUCKET)
    assert not bucket.inputs.get("acl"), f"{bucket.urn}: no ACL"
    assert bucket.inputs.get("forceDestroy", False) is run.cfg("bucketForceDestroy"), bucket.urn
    bucket_id = f"{bucket.name}-id"
    (block,) = run.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block.inputs[flag] is True, f"{block.urn}: {flag}"
    assert block.inputs["bucket"] == bucket_id, block.urn
    (ownership,) = run.of_type("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced", f"{ownership.urn}: ACLs must be off"
    (sse,) = run.of_type("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    algorithm = sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
    assert algorithm in ("AES256", "aws:kms"), f"{sse.urn}: {algorithm}"
    (policy,) = run.of_type("aws:s3/bucketPolicy:BucketPolicy")
    statements = json.loads(policy.inputs["policy"])["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
               for s in statements), f"{policy.urn}: plain HTTP must be refused"
    assert not [s for s in statements if s["Effect"] == "Allow"], f"{policy.urn}: grants nothing"

    (lifecycle,) = run.of_type(LIFECYCLE)
    assert lifecycle.inputs["bucket"] == bucket_id, lifecycle.urn
    expiry = {}
    for rule in lifecycle.inputs["rules"]:
        assert rule["status"] == "Enabled", lifecycle.urn
        prefix = rule["filter"]["prefix"]
        if "expiration" in rule:
            assert prefix and not prefix.startswith("models"), f"{lifecycle.urn}: rule {rule['id']} would expire models/"
            expiry[prefix] = rule["expiration"]["days"]
    assert expiry == {"uploads/": run.cfg("uploadsExpireDays"), "output/": run.cfg("outputExpireDays")}, expiry

    (cors,) = run.of_type("aws:s3/bucketCorsConfiguration:BucketCorsConfiguration")
    assert cors.inputs["bucket"] == run.outputs["bucket"]["value"], cors.urn
    origins = cors.inputs["corsRules"][0]["allowedOrigins"]
    assert run.outputs["portalUrl"]["value"] in origins, f"{cors.urn}: CORS must allow the portal"
    assert "*" not in origins, cors.urn


# --- images -----------------------------------------------------------------------------

def test_images_pushed_to_the_stacks_ecr_repositories(aws_run):
    run = aws_run
    repos = {r.inputs["name"]: r for r in run.of_type("aws:ecr/repository:Repository")}
    namespace = f"kiosk-{run.stack}"
    assert set(repos) == {f"{namespace}/kiosk-consumers", f"{namespace}/kiosk-frontend"}, sorted(repos)
    for repo in repos.values():
        assert repo.inputs["imageScanningConfiguration"]["scanOnPush"] is True, repo.urn
    urls = {f"{ECR_HOST}/{name}" for name in repos}
    images = run.of_type("docker-build:index:Image")
    assert len(images) == 2, run.stack
    for image in images:
        (tag,) = image.inputs["tags"]
        assert tag.rsplit(":", 1)[0] in urls, f"{image.urn}: {tag} is not one of the stack's ECR repositories"
        assert [r["address"] for r in image.inputs["registries"]] == [ECR_HOST], image.urn
        assert image.inputs["registries"][0]["username"] == "AWS", image.urn
        raw = image.raw_inputs["registries"]
        assert is_secret(raw) or is_secret(raw[0]["password"]), f"{image.urn}: the ECR token must be secret"
        cache = image.inputs["cacheTo"][0]["registry"]
        assert cache["imageManifest"] is True and cache["ociMediaTypes"] is True, f"{image.urn}: ECR needs OCI caches"


# --- IAM ---------------------------------------------------------------------------------

def policy_documents(run: StackRun):
    """(urn, document) for every permission policy the program declares."""
    for r in run.resources:
        if r.type in ("aws:iam/policy:Policy", ROLE_POLICY, "aws:s3/bucketPolicy:BucketPolicy"):
            yield r.urn, json.loads(r.inputs["policy"])
        elif r.type == ROLE:
            for inline in r.inputs.get("inlinePolicies", []):
                yield r.urn, json.loads(inline["policy"])


def test_every_iam_policy_is_least_privilege(aws_run):
    run = aws_run
    arn = bucket_arn(run)
    documents = list(policy_documents(run))
    assert len(documents) >= 6, f"{run.stack}: only {len(documents)} policies"
    s3_statements = 0
    for urn, doc in documents:
        for statement in as_list(doc["Statement"]):
            if statement["Effect"] != "Allow":
                continue
            assert "NotAction" not in statement and "NotResource" not in statement, f"{urn}: {statement}"
            actions = as_list(statement["Action"])
            resources = as_list(statement["Resource"])
            for action in actions:
                wildcard = action == "*" or action.endswith(":*")
                assert not (wildcard and "*" in resources), f"{urn}: {action} on every resource"
            if any(a.startswith("s3:") for a in actions):
                s3_statements += 1
                assert all(a.startswith("s3:") for a in actions), f"{urn}: mixes S3 with other services"
                for resource in resources:
                    assert resource == arn or resource.startswith(f"{arn}/"), \
                        f"{urn}: S3 access to {resource}, outside the stack's bucket {arn}"
            if {"autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"} & set(actions):
                condition = statement.get("Condition", {}).get("StringEquals", {})
                key = f"aws:ResourceTag/k8s.io/cluster-autoscaler/{run.one(CLUSTER).inputs['name']}"
                assert condition.get(key) == "owned", f"{urn}: scaling must be limited to this cluster's groups"
    assert s3_statements >= 3, f"{run.stack}: the workloads' S3 statements are missing"


def test_load_balancer_controller_changes_only_this_clusters_load_balancers(aws_run):
    """Upstream's policy accepts any value of the controller's cluster tag; the
    stack's requires this cluster's name, the value its controller writes."""
    run = aws_run
    cluster_name = run.one(CLUSTER).inputs["name"]
    controller = release(run, "aws-load-balancer-controller")
    assert controller.inputs["values"]["clusterName"] == cluster_name, controller.urn
    association = association_for(run, "kube-system", "aws-load-balancer-controller")
    (policy,) = policies_of(run, role_of(run, association))
    bound = 0
    for statement in policy["Statement"]:
        for operator, keys in statement.get("Condition", {}).items():
            for key, value in keys.items():
                if "elbv2.k8s.aws/cluster" not in key:
                    continue
                if operator == "StringEquals":
                    bound += 1
                    assert value == cluster_name, f"{association.urn}: {key} bound to {value!r}"
                else:
                    assert (operator, value) == ("Null", "true") and key.startswith("aws:RequestTag/"), \
                        f"{association.urn}: {operator} {key} {value} accepts any cluster's tag"
    assert bound >= 7, f"{association.urn}: only {bound} conditions name the cluster"


def test_workloads_reach_s3_through_pod_identity(aws_run):
    run = aws_run
    arn = bucket_arn(run)
    accounts = {sa.inputs["metadata"]["name"]: sa for sa in run.of_type("kubernetes:core/v1:ServiceAccount")}
    seen = {}
    for w in workloads(run):
        if w.inputs["metadata"]["name"] == "redis":
            continue
        name = pod_spec(w).get("serviceAccountName")
        assert name in accounts, f"{w.urn}: runs as {name!r}, not a kiosk service account"
        association = association_for(run, w.inputs["metadata"]["namespace"], name)
        role = role_of(run, association)
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
        assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}, f"{role.urn}: {trust}"
        assert set(trust["Action"]) == {"sts:AssumeRole", "sts:TagSession"}, role.urn
        (policy,) = policies_of(run, role)
        seen[w.inputs["metadata"]["name"]] = policy
        for container in pod_spec(w)["containers"] + pod_spec(w).get("initContainers", []):
            env = {e["name"] for e in container.get("env", [])}
            assert not env & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}, f"{w.urn}: no keys in pods"
        if w.inputs["metadata"]["name"] != "tf-serving":
            env = env_of(pod_spec(w)["containers"][0])
            assert env["AWS_REGION"] == run.config["aws:region"], f"{w.urn}: S3 URLs must be signed for the region"
    writes = {name: {r for s in doc["Statement"] if "s3:PutObject" in as_list(s["Action"]) for r in as_list(s["Resource"])}
              for name, doc in seen.items()}
    assert writes["tf-serving"] == set(), "TF-Serving's model copy must not write to the bucket"
    assert writes["frontend"] == {f"{arn}/uploads/*"}, writes["frontend"]
    reads = {r for s in seen["tf-serving"]["Statement"] if "s3:GetObject" in as_list(s["Action"])
             for r in as_list(s["Resource"])}
    assert reads == {f"{arn}/models/*"}, f"TF-Serving reads {reads}"


# --- TF-Serving models from S3 -------------------------------------------------------------

def model_sync_container(run: StackRun) -> tuple[object, dict]:
    deployment = run.one("kubernetes:apps/v1:Deployment", "tf-serving")
    (sidecar,) = pod_spec(deployment)["initContainers"]
    return deployment, sidecar


def test_tf_serving_reads_models_from_a_synced_copy(aws_run):
    run = aws_run
    deployment, sidecar = model_sync_container(run)
    spec = pod_spec(deployment)
    assert sidecar["restartPolicy"] == "Always", f"{deployment.urn}: the copy must keep running (native sidecar)"
    assert sidecar["image"].endswith("/" + run.cfg("modelSyncImage")), deployment.urn
    assert "startupProbe" in sidecar, f"{deployment.urn}: TF-Serving must wait for the first copy"
    env = env_of(sidecar)
    assert env["KIOSK_MODELS_SOURCE"] == f"s3://{run.outputs['bucket']['value']}/models", env
    assert env["KIOSK_SYNC_INTERVAL_SECONDS"] == str(run.cfg("modelSyncIntervalSeconds")), env
    (serving,) = spec["containers"]
    mounts = {m["name"]: m for m in serving["volumeMounts"]}
    sidecar_mounts = {m["name"]: m for m in sidecar["volumeMounts"]}
    assert mounts["models"]["readOnly"] is True, f"{deployment.urn}: TF-Serving only reads the copy"
    assert mounts["models"]["mountPath"] == sidecar_mounts["models"]["mountPath"] == env["KIOSK_MODELS_DIR"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes["models"], deployment.urn
    assert spec["serviceAccountName"] == "kiosk-tf-serving", deployment.urn


def test_portal_ingress_on_an_internet_facing_alb(aws_run):
    run = aws_run
    ingress = run.one("kubernetes:networking.k8s.io/v1:Ingress", "frontend")
    assert ingress.inputs["spec"]["ingressClassName"] == "alb", ingress.urn
    annotations = ingress.inputs["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing", ingress.urn
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip", ingress.urn
    frontend = run.one("kubernetes:apps/v1:Deployment", "frontend")
    container = pod_spec(frontend)["containers"][0]
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == \
        container["readinessProbe"]["httpGet"]["path"], f"{ingress.urn}: ALB must check what the pod answers"
    url, address = run.outputs["portalUrl"]["value"], run.outputs["portalAddress"]["value"]
    assert address.endswith(".elb.amazonaws.com"), address
    if run.cfg("domain"):
        assert url == f"https://{run.cfg('domain')}", url
        assert env_of(container)["KIOSK_PUBLIC_URL"] == url, frontend.urn
    else:
        assert url == f"http://{address}", url
        assert "KIOSK_PUBLIC_URL" not in env_of(container), f"{frontend.urn}: no URL is known before the ALB"


# --- a domain: ACM certificate and DNS ---------------------------------------------------

DOMAIN = "kiosk.example.org"
ZONE = "Z0123456789ABCDEFGHIJ"


@pytest.fixture(scope="module")
def domain_run(tmp_path_factory):
    stack = STACKS["dev-aws"]
    overrides = {"kiosk:domain": DOMAIN, "kiosk:route53ZoneId": ZONE}
    (rc, out, err), = run_stacks([stack], overrides, tmp_path_factory.mktemp("domain")).values()
    assert rc == 0, err[-4000:]
    return StackRun(stack, json.loads(out), overrides)


def test_domain_gets_a_validated_certificate_and_an_alias(domain_run):
    run = domain_run
    (certificate,) = run.of_type("aws:acm/certificate:Certificate")
    assert certificate.inputs["domainName"] == DOMAIN and certificate.inputs["validationMethod"] == "DNS"
    records = {r.inputs["type"]: r for r in run.of_type("aws:route53/record:Record")}
    assert records["CNAME"].inputs["zoneId"] == ZONE, "the validation record goes to the domain's zone"
    (validation,) = run.of_type("aws:acm/certificateValidation:CertificateValidation")
    assert validation.inputs["validationRecordFqdns"] == [records["CNAME"].inputs["name"]], validation.urn
    ingress = run.one("kubernetes:networking.k8s.io/v1:Ingress", "frontend")
    annotations = ingress.inputs["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == validation.inputs["certificateArn"]
    # The ALB takes the ARN from the validation (issued), not from the certificate (maybe pending).
    assert validation.urn in ingress.dependencies and certificate.urn not in ingress.dependencies, ingress.urn
    assert {"HTTPS": 443} in json.loads(annotations["alb.ingress.kubernetes.io/listen-ports"]), ingress.urn
    assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443", ingress.urn
    alias = records["A"].inputs
    assert alias["name"] == DOMAIN and alias["zoneId"] == ZONE, alias
    assert alias["aliases"][0]["name"] == run.outputs["portalAddress"]["value"], alias
    assert run.outputs["portalUrl"]["value"] == f"https://{DOMAIN}"
    test_portal_ingress_on_an_internet_facing_alb(run)
    (cors,) = run.of_type("aws:s3/bucketCorsConfiguration:BucketCorsConfiguration")
    assert f"https://{DOMAIN}" in cors.inputs["corsRules"][0]["allowedOrigins"], cors.urn
