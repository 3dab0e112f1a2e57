"""The kiosk's policy rules as plain functions over (resource type, props).

Each rule returns a list of violation messages (empty when the resource
complies). The pulumi-policy validators in `kiosk_policies.py` only call these, so
the unit tests exercise the same code the engine runs. Props arrive as the
engine sends them: camelCase property names, Kubernetes objects as written.
AWS types are covered where the equivalent is obvious, so the EKS stacks get
the same guarantees.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from typing import Any

Props = Mapping[str, Any]

PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")
UPLOADS_PREFIX = "uploads/"

GCS_BUCKET = "gcp:storage/bucket:Bucket"
GCS_IAM_TYPES = (
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:storage/bucketIAMBinding:BucketIAMBinding",
    "gcp:storage/bucketAccessControl:BucketAccessControl",
    "gcp:storage/defaultObjectAccessControl:DefaultObjectAccessControl",
    "gcp:storage/objectAccessControl:ObjectAccessControl",
)
S3_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
S3_BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
S3_ACL_TYPES = ("aws:s3/bucketAclV2:BucketAclV2", "aws:s3/bucketAcl:BucketAcl")
S3_BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
S3_LIFECYCLE_TYPES = (
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
)
GCS_IAM_POLICY = "gcp:storage/bucketIAMPolicy:BucketIAMPolicy"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
# Compute Engine families whose machine types come with GPUs attached (no
# guestAccelerators block): A2/A3/A4 (A100, H100/H200, B200), G2 (L4), G4.
GPU_MACHINE_FAMILIES = ("a2-", "a3-", "a4-", "a4x-", "g2-", "g4-")
GKE_CLUSTER = "gcp:container/cluster:Cluster"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
# EC2 families with NVIDIA GPUs (g4dn, g5, g6, p3, p4d, p5...).
GPU_INSTANCE_PREFIXES = ("g3", "g4", "g5", "g6", "p2", "p3", "p4", "p5")

# IAM: resources carrying a policy document in `policy`, roles with inline ones,
# and AWS-managed policies too broad to attach to anything of the kiosk.
IAM_ROLE = "aws:iam/role:Role"
IAM_POLICY_TYPES = (
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
    S3_BUCKET_POLICY,
)
IAM_ATTACHMENT_TYPES = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
)
BROAD_MANAGED_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess", "AmazonS3FullAccess")

K8S_SERVICE = "kubernetes:core/v1:Service"
K8S_INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
# Pod template location per workload kind.
K8S_POD_TEMPLATES: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
# What identifies Redis / TF-Serving Services: names and ports.
INTERNAL_NAMES = ("redis", "tf-serving", "tfserving", "tensorflow-serving")
INTERNAL_PORTS = (6379, 8500, 8501)
EXPOSED_SERVICE_TYPES = ("LoadBalancer", "NodePort")


def _get(props: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(props, Mapping):
            return None
        props = props.get(key)
    return props


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _policy_statements(document: Any) -> list[Mapping] | None:
    """The statements of a policy document (JSON text or already parsed).

    None when the document is not known yet (an unknown value in a preview)
    or is not a policy: such props cannot be judged, only known ones.
    """
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return None
    if not isinstance(document, Mapping):
        return None
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, Mapping)]


def _is_public_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return "*" in _as_list(principal.get("AWS"))
    return False


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- no public bucket -----------------------------------------------------------

def _iam_policy_members(policy_data: Any) -> list[str] | None:
    """Members of every binding of a GCP IAM policy (policyData JSON); None when unknown."""
    if isinstance(policy_data, str):
        try:
            policy_data = json.loads(policy_data)
        except ValueError:
            return None
    if not isinstance(policy_data, Mapping):
        return None
    members: list[str] = []
    for binding in _as_list(policy_data.get("bindings")):
        if isinstance(binding, Mapping):
            members += [m for m in _as_list(binding.get("members")) if isinstance(m, str)]
    return members


def no_public_bucket(resource_type: str, props: Props) -> list[str]:
    """Buckets prevent public access; no IAM/ACL grants them to everyone."""
    if resource_type == GCS_BUCKET:
        if props.get("publicAccessPrevention") != "enforced":
            return ["GCS bucket must set publicAccessPrevention to 'enforced'"]
        if props.get("uniformBucketLevelAccess") is not True:
            return ["GCS bucket must use uniform bucket-level access (no per-object ACLs)"]
        return []
    if resource_type in GCS_IAM_TYPES:
        members = list(props.get("members") or []) + [props.get("member"), props.get("entity")]
        public = [m for m in members if m in PUBLIC_MEMBERS]
        return [f"bucket grant to {m} makes it public" for m in public]
    if resource_type == GCS_IAM_POLICY:
        members = _iam_policy_members(props.get("policyData")) or []
        public = sorted({m for m in members if m in PUBLIC_MEMBERS})
        return [f"bucket IAM policy grants {m}, making it public" for m in public]
    if resource_type == S3_PUBLIC_ACCESS_BLOCK:
        flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        off = [f for f in flags if props.get(f) is not True]
        return [f"S3 public access block must set {', '.join(off)} to true"] if off else []
    if resource_type in S3_ACL_TYPES or resource_type in S3_BUCKET_TYPES:
        acl = props.get("acl")
        return [f"S3 bucket ACL {acl!r} is public"] if acl in PUBLIC_ACLS else []
    if resource_type == S3_BUCKET_POLICY:
        statements = _policy_statements(props.get("policy")) or []
        public = [s for s in statements if s.get("Effect") == "Allow" and _is_public_principal(s.get("Principal"))]
        return ["S3 bucket policy allows anyone (Principal *)"] if public else []
    return []


# --- uploads expire -------------------------------------------------------------

def _gcs_expiring_prefixes(props: Props) -> dict[str, int]:
    expiring: dict[str, int] = {}
    for rule in props.get("lifecycleRules") or []:
        if _get(rule, "action", "type") != "Delete":
            continue
        age = _as_int(_get(rule, "condition", "age"))
        for prefix in _get(rule, "condition", "matchesPrefixes") or []:
            if age is not None and age > 0:
                expiring[prefix] = age
    return expiring


def _s3_expiring_prefixes(props: Props) -> dict[str, int]:
    expiring: dict[str, int] = {}
    for rule in props.get("rules") or []:
        if rule.get("status") != "Enabled":
            continue
        days = _as_int(_get(rule, "expiration", "days"))
        prefix = _get(rule, "filter", "prefix")
        if prefix is None:
            prefix = rule.get("prefix")
        if days is not None and days > 0 and prefix is not None:
            expiring[prefix] = days
    return expiring


def uploads_expire(resource_type: str, props: Props) -> list[str]:
    """Buckets holding uploads delete them after a number of days.

    Every kiosk bucket holds uploads/. On S3 the rule lives on the lifecycle
    configuration resource; `s3_buckets_have_lifecycle` checks the pairing.
    """
    if resource_type == GCS_BUCKET:
        expiring = _gcs_expiring_prefixes(props)
    elif resource_type in S3_LIFECYCLE_TYPES:
        expiring = _s3_expiring_prefixes(props)
    else:
        return []
    problems = []
    if UPLOADS_PREFIX not in expiring:
        problems.append(f"bucket holding uploads needs a Delete/expiration rule on {UPLOADS_PREFIX}")
    if any(p == "" or p.startswith("models") for p in expiring):
        problems.append("expiry rules must not match models/ (or the whole bucket)")
    return problems


def s3_buckets_have_lifecycle(resources: Iterable[tuple[str, Props]]) -> list[str]:
    """Stack check: as many uploads-expiring lifecycle configurations as S3 buckets."""
    resources = list(resources)
    buckets = sum(1 for t, _ in resources if t in S3_BUCKET_TYPES)
    lifecycles = sum(1 for t, p in resources if t in S3_LIFECYCLE_TYPES and not uploads_expire(t, p))
    if lifecycles < buckets:
        return [f"{buckets} S3 bucket(s) but only {lifecycles} lifecycle configuration(s) expiring {UPLOADS_PREFIX}"]
    return []


# --- GPU pools scale to zero ----------------------------------------------------

def _is_gpu_node_group(props: Props) -> bool:
    ami = str(props.get("amiType") or "").upper()
    if "GPU" in ami or "NVIDIA" in ami:
        return True
    return any(str(t).startswith(GPU_INSTANCE_PREFIXES) for t in props.get("instanceTypes") or [])


def gpu_pools_scale_to_zero(resource_type: str, props: Props) -> list[str]:
    """GPU node pools/groups autoscale with a minimum of zero nodes."""
    if resource_type == GKE_NODE_POOL:
        machine_type = _get(props, "nodeConfig", "machineType")
        built_in_gpus = isinstance(machine_type, str) and machine_type.startswith(GPU_MACHINE_FAMILIES)
        if not _get(props, "nodeConfig", "guestAccelerators") and not built_in_gpus:
            return []
        auto = props.get("autoscaling")
        if not auto:
            return ["GPU node pool must autoscale (autoscaling block missing)"]
        low = _as_int(auto.get("totalMinNodeCount", auto.get("minNodeCount", 0)))
        high = _as_int(auto.get("totalMaxNodeCount", auto.get("maxNodeCount")))
        problems = []
        if low != 0:
            problems.append(f"GPU node pool must scale down to 0 nodes, minimum is {low}")
        if high is None or high < 1:
            problems.append("GPU node pool needs a maximum of at least 1 node")
        if _as_int(props.get("nodeCount")):
            problems.append("GPU node pool must not pin nodeCount")
        return problems
    if resource_type == EKS_NODE_GROUP:
        if not _is_gpu_node_group(props):
            return []
        low = _as_int(_get(props, "scalingConfig", "minSize"))
        return [] if low == 0 else [f"GPU node group must scale down to 0 nodes, minSize is {low}"]
    return []


# --- requests and limits --------------------------------------------------------

def containers_have_requests_and_limits(resource_type: str, props: Props) -> list[str]:
    """Every container and init container requests and limits CPU and memory."""
    path = K8S_POD_TEMPLATES.get(resource_type)
    if path is None:
        return []
    pod = _get(props, *path) or {}
    problems = []
    for container in list(pod.get("initContainers") or []) + list(pod.get("containers") or []):
        name = container.get("name", "?")
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            missing = [r for r in ("cpu", "memory") if r not in (resources.get(kind) or {})]
            if missing:
                problems.append(f"container {name!r} has no {kind} for {', '.join(missing)}")
    return problems


# --- Redis and TF-Serving stay inside ---------------------------------------------

def _is_internal_service(props: Props) -> bool:
    metadata = props.get("metadata") or {}
    labels = {**(metadata.get("labels") or {}), **(_get(props, "spec", "selector") or {})}
    names = [str(metadata.get("name") or "")] + [str(v) for v in labels.values()]
    if any(n == i or n.startswith(f"{i}-") or n.endswith(f"-{i}") for n in names for i in INTERNAL_NAMES):
        return True
    ports = _get(props, "spec", "ports") or []
    return any(_as_int(p.get("port")) in INTERNAL_PORTS for p in ports)


def internal_services_not_exposed(resource_type: str, props: Props) -> list[str]:
    """Redis and TF-Serving are ClusterIP only and never behind an Ingress."""
    if resource_type == K8S_SERVICE:
        if not _is_internal_service(props):
            return []
        spec = props.get("spec") or {}
        problems = []
        if spec.get("type") in EXPOSED_SERVICE_TYPES:
            problems.append(f"Redis/TF-Serving Service must be ClusterIP, not {spec['type']}")
        if spec.get("externalIPs"):
            problems.append("Redis/TF-Serving Service must not have externalIPs")
        return problems
    if resource_type == K8S_INGRESS:
        spec = props.get("spec") or {}
        backends = [_get(spec, "defaultBackend", "service", "name")]
        for rule in spec.get("rules") or []:
            for path in _get(rule, "http", "paths") or []:
                backends.append(_get(path, "backend", "service", "name"))
        exposed = [b for b in backends if b and any(b == i or b.startswith(f"{i}-") for i in INTERNAL_NAMES)]
        return [f"Ingress exposes internal Service {b!r}" for b in exposed]
    return []


# --- control plane ----------------------------------------------------------------

def control_plane_not_open(resource_type: str, props: Props) -> list[str]:
    """Cluster API endpoints are never open to 0.0.0.0/0."""
    cidrs: list[str] = []
    if resource_type == GKE_CLUSTER:
        networks = props.get("masterAuthorizedNetworksConfig")
        if networks is None and not _get(props, "privateClusterConfig", "enablePrivateEndpoint"):
            return ["GKE cluster needs masterAuthorizedNetworksConfig (its absence opens the endpoint to all)"]
        cidrs = [b.get("cidrBlock", "") for b in (networks or {}).get("cidrBlocks") or []]
    elif resource_type == EKS_CLUSTER:
        vpc = props.get("vpcConfig") or {}
        if vpc.get("endpointPublicAccess") is False:
            return []
        cidrs = list(vpc.get("publicAccessCidrs") or ["0.0.0.0/0"])
    problems = []
    for cidr in cidrs:
        try:
            open_to_all = ipaddress.ip_network(cidr, strict=False).prefixlen == 0
        except ValueError:
            problems.append(f"unparseable authorized network {cidr!r}")
            continue
        if open_to_all:
            problems.append(f"control plane is open to {cidr}")
    return problems


# --- IAM least privilege ----------------------------------------------------------------

def iam_least_privilege(resource_type: str, props: Props) -> list[str]:
    """No Allow grants every action of a service (or all) on every resource,
    no Allow uses NotAction, and no AWS-managed admin policy is attached."""
    if resource_type in IAM_ATTACHMENT_TYPES:
        arn = str(props.get("policyArn") or "")
        name = arn.rsplit("/", 1)[-1]
        return [f"attaches the broad AWS-managed policy {name}"] if name in BROAD_MANAGED_POLICIES else []
    if resource_type in IAM_POLICY_TYPES:
        documents = [props.get("policy")]
    elif resource_type == IAM_ROLE:
        documents = [p.get("policy") for p in props.get("inlinePolicies") or [] if isinstance(p, Mapping)]
    else:
        return []
    problems = []
    for document in documents:
        for statement in _policy_statements(document) or []:
            if statement.get("Effect") != "Allow":
                continue
            if "NotAction" in statement or "NotResource" in statement:
                problems.append("an Allow with NotAction/NotResource grants everything not listed")
                continue
            actions = [str(a) for a in _as_list(statement.get("Action"))]
            resources = [str(r) for r in _as_list(statement.get("Resource"))]
            broad = [a for a in actions if a == "*" or a.endswith(":*")]
            if broad and "*" in resources:
                problems.append(f"allows {', '.join(broad)} on every resource")
    return problems


RESOURCE_RULES = {
    "kiosk-no-public-bucket": no_public_bucket,
    "kiosk-uploads-expire": uploads_expire,
    "kiosk-gpu-pools-scale-to-zero": gpu_pools_scale_to_zero,
    "kiosk-containers-requests-limits": containers_have_requests_and_limits,
    "kiosk-internal-services-not-exposed": internal_services_not_exposed,
    "kiosk-control-plane-not-open": control_plane_not_open,
    "kiosk-iam-least-privilege": iam_least_privilege,
}
