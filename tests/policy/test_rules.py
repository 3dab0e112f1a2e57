"""Each mandatory rule, called directly, on compliant and violating props."""

import copy
import json

import pytest

import kiosk_rules as rules

GCS = "gcp:storage/bucket:Bucket"


def gcs_bucket(**overrides):
    props = {
        "publicAccessPrevention": "enforced",
        "uniformBucketLevelAccess": True,
        "lifecycleRules": [
            {"action": {"type": "Delete"}, "condition": {"age": 7, "matchesPrefixes": ["uploads/"]}},
            {"action": {"type": "Delete"}, "condition": {"age": 7, "matchesPrefixes": ["output/"]}},
        ],
    }
    props.update(overrides)
    return props


def deployment(resources):
    return {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "x", "resources": resources}]}}}}


FULL = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


# --- no public bucket -------------------------------------------------------------

def test_private_gcs_bucket_passes():
    assert rules.no_public_bucket(GCS, gcs_bucket()) == []


@pytest.mark.parametrize("overrides", [
    {"publicAccessPrevention": "inherited"},
    {"publicAccessPrevention": None},
    {"uniformBucketLevelAccess": False},
])
def test_gcs_bucket_open_to_public_fails(overrides):
    assert rules.no_public_bucket(GCS, gcs_bucket(**overrides))


@pytest.mark.parametrize("typ,props", [
    ("gcp:storage/bucketIAMMember:BucketIAMMember", {"member": "allUsers", "role": "roles/storage.objectViewer"}),
    ("gcp:storage/bucketIAMBinding:BucketIAMBinding", {"members": ["user:a@b.c", "allAuthenticatedUsers"]}),
    ("gcp:storage/bucketAccessControl:BucketAccessControl", {"entity": "allUsers", "role": "READER"}),
])
def test_public_gcs_grants_fail(typ, props):
    assert rules.no_public_bucket(typ, props)


IAM_POLICY = "gcp:storage/bucketIAMPolicy:BucketIAMPolicy"


@pytest.mark.parametrize("public", ["allUsers", "allAuthenticatedUsers"])
def test_gcs_iam_policy_granting_the_public_fails(public):
    import json

    policy = {"bindings": [
        {"role": "roles/storage.objectAdmin", "members": ["serviceAccount:x@p.iam.gserviceaccount.com"]},
        {"role": "roles/storage.objectViewer", "members": ["user:a@b.c", public]},
    ]}
    messages = rules.no_public_bucket(IAM_POLICY, {"bucket": "b", "policyData": json.dumps(policy)})
    assert messages and public in messages[0]
    # Already-parsed policy data (as some engines hand it) is judged the same.
    assert rules.no_public_bucket(IAM_POLICY, {"bucket": "b", "policyData": policy})


def test_gcs_iam_policy_without_the_public_passes():
    import json

    policy = {"bindings": [{"role": "roles/storage.objectViewer",
                            "members": ["serviceAccount:x@p.iam.gserviceaccount.com"]}]}
    assert rules.no_public_bucket(IAM_POLICY, {"bucket": "b", "policyData": json.dumps(policy)}) == []
    # Unknown during a preview: nothing to judge yet.
    assert rules.no_public_bucket(IAM_POLICY, {"bucket": "b", "policyData": None}) == []


def test_private_gcs_grant_passes():
    props = {"member": "serviceAccount:x@p.iam.gserviceaccount.com", "role": "roles/storage.objectUser"}
    assert rules.no_public_bucket("gcp:storage/bucketIAMMember:BucketIAMMember", props) == []


def test_s3_public_access_block_needs_all_four_flags():
    full = {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
            "restrictPublicBuckets": True}
    assert rules.no_public_bucket(rules.S3_PUBLIC_ACCESS_BLOCK, full) == []
    for flag in full:
        weakened = {**full, flag: False}
        messages = rules.no_public_bucket(rules.S3_PUBLIC_ACCESS_BLOCK, weakened)
        assert messages and flag in messages[0]


def test_s3_public_acl_fails_private_passes():
    assert rules.no_public_bucket("aws:s3/bucketAclV2:BucketAclV2", {"acl": "public-read"})
    assert rules.no_public_bucket("aws:s3/bucketAclV2:BucketAclV2", {"acl": "private"}) == []


# --- uploads expire ----------------------------------------------------------------

def test_gcs_bucket_with_upload_expiry_passes():
    assert rules.uploads_expire(GCS, gcs_bucket()) == []


def test_gcs_bucket_without_upload_expiry_fails():
    only_output = gcs_bucket(lifecycleRules=gcs_bucket()["lifecycleRules"][1:])
    assert rules.uploads_expire(GCS, only_output)
    assert rules.uploads_expire(GCS, gcs_bucket(lifecycleRules=[]))


def test_gcs_rule_that_is_not_delete_does_not_count():
    props = gcs_bucket()
    props["lifecycleRules"][0]["action"]["type"] = "SetStorageClass"
    assert rules.uploads_expire(GCS, props)


def test_expiring_models_fails():
    props = gcs_bucket()
    props["lifecycleRules"].append(
        {"action": {"type": "Delete"}, "condition": {"age": 30, "matchesPrefixes": ["models/"]}})
    assert any("models" in m for m in rules.uploads_expire(GCS, props))


def test_s3_lifecycle_rules():
    typ = "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2"
    good = {"rules": [{"id": "u", "status": "Enabled", "filter": {"prefix": "uploads/"}, "expiration": {"days": 7}}]}
    assert rules.uploads_expire(typ, good) == []
    disabled = copy.deepcopy(good)
    disabled["rules"][0]["status"] = "Disabled"
    assert rules.uploads_expire(typ, disabled)
    assert rules.uploads_expire(typ, {"rules": []})


def test_every_s3_bucket_needs_a_lifecycle_configuration():
    bucket = ("aws:s3/bucketV2:BucketV2", {})
    lifecycle = ("aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
                 {"rules": [{"status": "Enabled", "filter": {"prefix": "uploads/"}, "expiration": {"days": 3}}]})
    assert rules.s3_buckets_have_lifecycle([bucket, lifecycle]) == []
    assert rules.s3_buckets_have_lifecycle([bucket, bucket, lifecycle])
    assert rules.s3_buckets_have_lifecycle([bucket])


def test_uploads_rule_ignores_other_types():
    assert rules.uploads_expire("kubernetes:core/v1:Service", {}) == []


# --- GPU pools scale to zero ---------------------------------------------------------

def gke_pool(autoscaling, accelerators=True, machine_type=None, **extra):
    node = {"machineType": machine_type or ("g2-standard-8" if accelerators else "e2-standard-4")}
    if accelerators:
        node["guestAccelerators"] = [{"type": "nvidia-l4", "count": 1}]
    return {"nodeConfig": node, "autoscaling": autoscaling, **extra}


@pytest.mark.parametrize("autoscaling", [
    {"totalMinNodeCount": 0, "totalMaxNodeCount": 4},
    {"minNodeCount": 0, "maxNodeCount": 2},
    {"totalMinNodeCount": 0.0, "totalMaxNodeCount": 8.0},
])
def test_gke_gpu_pool_from_zero_passes(autoscaling):
    assert rules.gpu_pools_scale_to_zero(rules.GKE_NODE_POOL, gke_pool(autoscaling)) == []


@pytest.mark.parametrize("props", [
    gke_pool({"totalMinNodeCount": 1, "totalMaxNodeCount": 4}),
    gke_pool({"minNodeCount": 2, "maxNodeCount": 2}),
    gke_pool(None),
    gke_pool({"totalMinNodeCount": 0, "totalMaxNodeCount": 0}),
    gke_pool({"totalMinNodeCount": 0, "totalMaxNodeCount": 4}, nodeCount=1),
])
def test_gke_gpu_pool_not_from_zero_fails(props):
    assert rules.gpu_pools_scale_to_zero(rules.GKE_NODE_POOL, props)


@pytest.mark.parametrize("machine_type", ["a2-highgpu-1g", "a3-highgpu-8g", "g2-standard-8", "a2-ultragpu-1g"])
def test_gke_pool_with_built_in_gpus_is_a_gpu_pool(machine_type):
    """A2/A3/G2 machine types carry their GPUs without a guestAccelerators block."""
    fixed = gke_pool({"totalMinNodeCount": 1, "totalMaxNodeCount": 2}, accelerators=False, machine_type=machine_type)
    assert rules.gpu_pools_scale_to_zero(rules.GKE_NODE_POOL, fixed)
    pinned = gke_pool(None, accelerators=False, machine_type=machine_type, nodeCount=1)
    assert rules.gpu_pools_scale_to_zero(rules.GKE_NODE_POOL, pinned)
    from_zero = gke_pool({"totalMinNodeCount": 0, "totalMaxNodeCount": 2}, accelerators=False,
                         machine_type=machine_type)
    assert rules.gpu_pools_scale_to_zero(rules.GKE_NODE_POOL, from_zero) == []


@pytest.mark.parametrize("machine_type", ["e2-standard-4", "n2-standard-8", "c3-standard-4", "n2d-standard-2"])
def test_gke_pool_of_cpu_machine_types_may_keep_nodes(machine_type):
    props = gke_pool(None, accelerators=False, machine_type=machine_type, nodeCount=1)
    assert rules.gpu_pools_scale_to_zero(rules.GKE_NODE_POOL, props) == []


def test_cpu_pool_may_keep_nodes():
    props = gke_pool({"totalMinNodeCount": 1, "totalMaxNodeCount": 3}, accelerators=False)
    assert rules.gpu_pools_scale_to_zero(rules.GKE_NODE_POOL, props) == []


@pytest.mark.parametrize("props,violations", [
    ({"amiType": "AL2023_x86_64_NVIDIA", "scalingConfig": {"minSize": 0, "maxSize": 4}}, 0),
    ({"amiType": "AL2023_x86_64_NVIDIA", "scalingConfig": {"minSize": 1, "maxSize": 4}}, 1),
    ({"instanceTypes": ["g5.xlarge"], "scalingConfig": {"minSize": 2, "maxSize": 4}}, 1),
    ({"instanceTypes": ["m6i.large"], "scalingConfig": {"minSize": 2, "maxSize": 4}}, 0),
])
def test_eks_node_groups(props, violations):
    assert len(rules.gpu_pools_scale_to_zero(rules.EKS_NODE_GROUP, props)) == violations


# --- requests and limits --------------------------------------------------------------

def test_container_with_requests_and_limits_passes():
    assert rules.containers_have_requests_and_limits("kubernetes:apps/v1:Deployment", deployment(FULL)) == []


@pytest.mark.parametrize("resources", [
    {},
    {"requests": FULL["requests"]},
    {"limits": FULL["limits"]},
    {"requests": {"cpu": "1"}, "limits": FULL["limits"]},
    {"requests": FULL["requests"], "limits": {"nvidia.com/gpu": "1"}},
])
def test_container_missing_requests_or_limits_fails(resources):
    assert rules.containers_have_requests_and_limits("kubernetes:apps/v1:Deployment", deployment(resources))


def test_init_containers_and_cronjobs_are_checked():
    props = deployment(FULL)
    props["spec"]["template"]["spec"]["initContainers"] = [{"name": "init", "image": "x"}]
    assert rules.containers_have_requests_and_limits("kubernetes:apps/v1:StatefulSet", props)
    cron = {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}}}
    assert rules.containers_have_requests_and_limits("kubernetes:batch/v1:CronJob", cron)


# --- Redis and TF-Serving stay inside --------------------------------------------------

def service(name, typ="ClusterIP", port=6379, **spec):
    return {"metadata": {"name": name}, "spec": {"type": typ, "ports": [{"port": port}], **spec}}


@pytest.mark.parametrize("props", [
    service("redis", "LoadBalancer"),
    service("tf-serving", "NodePort", port=8500),
    service("cache", "LoadBalancer", port=6379),
    service("redis", "ClusterIP", externalIPs=["203.0.113.5"]),
])
def test_exposed_internal_services_fail(props):
    assert rules.internal_services_not_exposed(rules.K8S_SERVICE, props)


@pytest.mark.parametrize("props", [
    service("redis"),
    service("tf-serving", port=8500),
    service("frontend", "LoadBalancer", port=80),
])
def test_internal_cluster_ip_and_public_frontend_pass(props):
    assert rules.internal_services_not_exposed(rules.K8S_SERVICE, props) == []


def test_ingress_to_tf_serving_fails_frontend_passes():
    def ingress(backend):
        return {"spec": {"rules": [{"http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": backend, "port": {"number": 80}}}}]}}]}}

    assert rules.internal_services_not_exposed(rules.K8S_INGRESS, ingress("tf-serving"))
    assert rules.internal_services_not_exposed(rules.K8S_INGRESS, ingress("frontend")) == []


# --- control plane --------------------------------------------------------------------

def test_gke_control_plane_rules():
    ok = {"masterAuthorizedNetworksConfig": {"cidrBlocks": [{"cidrBlock": "198.51.100.0/24"}]}}
    assert rules.control_plane_not_open(rules.GKE_CLUSTER, ok) == []
    assert rules.control_plane_not_open(rules.GKE_CLUSTER, {"masterAuthorizedNetworksConfig": {}}) == []
    world = {"masterAuthorizedNetworksConfig": {"cidrBlocks": [{"cidrBlock": "0.0.0.0/0"}]}}
    assert rules.control_plane_not_open(rules.GKE_CLUSTER, world)
    assert rules.control_plane_not_open(rules.GKE_CLUSTER, {})


def test_eks_control_plane_rules():
    assert rules.control_plane_not_open(rules.EKS_CLUSTER, {"vpcConfig": {"endpointPublicAccess": True}})
    assert rules.control_plane_not_open(rules.EKS_CLUSTER, {"vpcConfig": {"endpointPublicAccess": False}}) == []
    limited = {"vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": ["198.51.100.7/32"]}}
    assert rules.control_plane_not_open(rules.EKS_CLUSTER, limited) == []


# --- IAM least privilege ----------------------------------------------------------------

def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
READ_BUCKET = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/*"}


@pytest.mark.parametrize("statement", [
    {"Effect": "Allow", "Action": "*", "Resource": "*"},
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:*"], "Resource": ["*"]},
    {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
])
def test_broad_iam_statements_fail(statement):
    messages = rules.iam_least_privilege(ROLE_POLICY, {"policy": policy(READ_BUCKET, statement)})
    assert len(messages) == 1, messages


@pytest.mark.parametrize("statement", [
    READ_BUCKET,
    {"Effect": "Allow", "Action": ["ec2:DescribeInstances"], "Resource": "*"},
    {"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]},
    {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    {"Effect": "Allow", "Action": ["autoscaling:SetDesiredCapacity"], "Resource": "*",
     "Condition": {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/c": "owned"}}},
])
def test_scoped_iam_statements_pass(statement):
    assert rules.iam_least_privilege(ROLE_POLICY, {"policy": policy(statement)}) == []


def test_inline_role_policies_and_parsed_documents_are_checked():
    admin = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    role = {"inlinePolicies": [{"name": "ok", "policy": policy(READ_BUCKET)}, {"name": "admin", "policy": policy(admin)}]}
    assert rules.iam_least_privilege(rules.IAM_ROLE, role)
    parsed = {"Version": "2012-10-17", "Statement": admin}
    assert rules.iam_least_privilege("aws:iam/policy:Policy", {"policy": parsed})


def test_unknown_policy_documents_are_not_judged():
    # In a preview a document built from outputs may still be unknown.
    assert rules.iam_least_privilege(ROLE_POLICY, {"policy": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"}) == []
    assert rules.iam_least_privilege(ROLE_POLICY, {}) == []


def test_broad_managed_policies_fail():
    typ = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    assert rules.iam_least_privilege(typ, {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})
    assert rules.iam_least_privilege(typ, {"policyArn": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy"}) == []


def test_public_s3_bucket_policy_fails_tls_only_passes():
    public = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    assert rules.no_public_bucket(rules.S3_BUCKET_POLICY, {"policy": policy(public)})
    assert rules.no_public_bucket(rules.S3_BUCKET_POLICY, {"policy": policy({**public, "Principal": "*"})})
    tls_only = {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*",
                "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    assert rules.no_public_bucket(rules.S3_BUCKET_POLICY, {"policy": policy(tls_only)}) == []
