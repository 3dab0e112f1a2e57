"""Focused tests of the AWS family's components and policy builders."""

from __future__ import annotations

import json

import pulumi
import pytest
from pulumi.runtime.sync_await import _sync_await

from components.aws.bucket import S3Bucket, S3BucketArgs
from components.aws.bucket_cors import BucketCors, BucketCorsArgs
from components.aws.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from components.aws.eks import EksCluster, EksClusterArgs, GpuGroupSpec, kubeconfig
from components.aws.gpu_device_plugin import GpuDevicePlugin, GpuDevicePluginArgs
from components.aws.load_balancer_controller import LoadBalancerController, LoadBalancerControllerArgs
from components.aws.network import Vpc, VpcArgs, subnet_cidrs
from components.aws.node_group import ManagedNodeGroup, ManagedNodeGroupArgs, NodeGroupSpec, node_template_tags
from components.aws.pod_identity import PodIdentityRole, PodIdentityRoleArgs
from components.aws.policies import cluster_autoscaler_policy, s3_workload_policy
from components.aws.portal import AlbPortal, AlbPortalArgs
from components.aws.registry import EcrRegistry, EcrRegistryArgs, lifecycle_policy
from components.k8s.frontend import Frontend, FrontendArgs
from components.k8s.tf_serving import ModelSync, ServedModel, TfServing, TfServingArgs
from components.shapes import Taint
from tests.infra.mockrun import construct, k8s_provider, resolve
from tests.infra.run_stack import ECR_HOST

ZONES = {"us-east-1a": "subnet-a", "us-east-1b": "subnet-b"}


# --- argument validation (before anything is registered) ------------------------------

def eks_args(**overrides) -> EksClusterArgs:
    return EksClusterArgs(**{"cluster_name": "kiosk-t", "region": "us-east-1", "subnet_ids_by_zone": ZONES,
                             **overrides})


@pytest.mark.parametrize("build,match", [
    (lambda: Vpc("v", VpcArgs(region="r", availability_zones=("a",))), "two distinct"),
    (lambda: Vpc("v", VpcArgs(region="r", availability_zones=("a", "a"))), "two distinct"),
    (lambda: Vpc("v", VpcArgs(region="r", availability_zones=("a", "b"), cidr="10.0.0.0/20")), "/16"),
    (lambda: EksCluster("c", eks_args(subnet_ids_by_zone={"a": "s"})), "two availability zones"),
    (lambda: EksCluster("c", eks_args(public_access_cidrs=("0.0.0.0/0",))), "open the control plane"),
    (lambda: EksCluster("c", eks_args(admin_principals=("alice",))), "IAM role or user ARN"),
    (lambda: EksCluster("c", eks_args(gpu_group=GpuGroupSpec(zones=("us-east-1f",)))), "no subnet"),
    (lambda: EksCluster("c", eks_args(cluster_name="kiosk test")), "cluster name"),
    (lambda: EksCluster("c", eks_args(log_retention_days=0)), "log_retention_days"),
    (lambda: EksCluster("c", eks_args(log_retention_days=10)), "log_retention_days"),
    (lambda: ManagedNodeGroup("g", ManagedNodeGroupArgs(cluster_name="c", node_role_arn="r", subnet_ids=("s",),
                                                        spec=NodeGroupSpec(instance_types=(), max_size=1))),
     "instance type"),
    (lambda: ManagedNodeGroup("g", ManagedNodeGroupArgs(
        cluster_name="c", node_role_arn="r", subnet_ids=("s",),
        spec=NodeGroupSpec(instance_types=("m6i.large",), max_size=2, min_size=3))), "min_size"),
    (lambda: ManagedNodeGroup("g", ManagedNodeGroupArgs(
        cluster_name="c", node_role_arn="r", subnet_ids=("s",),
        spec=NodeGroupSpec(instance_types=("m6i.large",), max_size=1, taints=(Taint("k", "v", "NO_SCHEDULE"),)))),
     "taint effects"),
    (lambda: PodIdentityRole("p", PodIdentityRoleArgs(cluster_name="c", namespace="n", service_account="s")),
     "without a policy"),
    (lambda: PodIdentityRole("p", PodIdentityRoleArgs(cluster_name="c", namespace="n", service_account="s",
                                                      managed_policy_arns=("arn:aws:iam::1:policy/x",))),
     "AWS-managed"),
    (lambda: S3Bucket("b", S3BucketArgs(output_expire_days=0)), "output_expire_days"),
    (lambda: BucketCors("c", BucketCorsArgs(bucket="b", origins=())), "origin"),
    (lambda: EcrRegistry("r", EcrRegistryArgs(namespace="Kiosk_Dev", image_names=("a",))), "namespace"),
    (lambda: AlbPortal("p", AlbPortalArgs(health_check_path="/h", domain="kiosk.example.org")), "Route 53 zone"),
    (lambda: AlbPortal("p", AlbPortalArgs(health_check_path="/h", domain="https://kiosk.example.org",
                                          zone_id="Z1")), "bare host"),
    (lambda: ClusterAutoscaler("ca", ClusterAutoscalerArgs(provider=None, cluster_name="c", region="r",
                                                           node_group_arns=("a",), image_tag="1.33")), "image tag"),
    (lambda: ClusterAutoscaler("ca", ClusterAutoscalerArgs(provider=None, cluster_name="c", region="r",
                                                           node_group_arns=())), "no node groups"),
    (lambda: LoadBalancerController("l", LoadBalancerControllerArgs(provider=None, cluster_name="c", region="r",
                                                                    vpc_id="v", chart_version="1.x")), "exact chart"),
    (lambda: GpuDevicePlugin("d", GpuDevicePluginArgs(provider=None, gpu_node_labels={})), "labels"),
    (lambda: TfServing("t", TfServingArgs(
        provider=None, namespace="n", service_account_name="s", model_base_uri="s3://b/models",
        models=(ServedModel("M", (1,)),), redis_address="a", queues=("queue:x",),
        model_sync=ModelSync(image="amazon/aws-cli:2.32.8", copy_command="true"))), "model_base_uri"),
    (lambda: TfServing("t", TfServingArgs(
        provider=None, namespace="n", service_account_name="s", model_base_uri="/models",
        models=(ServedModel("M", (1,)),), redis_address="a", queues=("queue:x",),
        model_sync=ModelSync(image="amazon/aws-cli", copy_command="true"))), "pinned image"),
])
def test_invalid_args_raise_value_error(build, match):
    with pytest.raises(ValueError, match=match):
        build()


# --- pure builders ------------------------------------------------------------------------

def test_subnets_are_disjoint_and_inside_the_vpc():
    import ipaddress

    private, public = subnet_cidrs("10.40.0.0/16", 3)
    nets = [ipaddress.ip_network(c) for c in private + public]
    assert [n.prefixlen for n in nets] == [19, 19, 19, 24, 24, 24]
    assert all(n.subnet_of(ipaddress.ip_network("10.40.0.0/16")) for n in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])


def test_node_template_tags_describe_labels_taints_and_gpus():
    spec = NodeGroupSpec(instance_types=("g6.xlarge",), max_size=2, labels={"pool": "gpu"},
                         taints=(Taint("nvidia.com/gpu", "present"),), extended_resources={"nvidia.com/gpu": "4"})
    assert node_template_tags(spec) == {
        "k8s.io/cluster-autoscaler/node-template/label/pool": "gpu",
        "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu": "present:NoSchedule",
        "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu": "4",
    }


def test_workload_s3_policies_stay_in_their_prefixes():
    arn = "arn:aws:s3:::kiosk-bucket"
    for workload in ("consumers", "frontend", "tfserving"):
        for statement in json.loads(s3_workload_policy(workload, arn))["Statement"]:
            for resource in statement["Resource"]:
                assert resource == arn or resource.startswith(f"{arn}/"), (workload, resource)
    with pytest.raises(ValueError):
        s3_workload_policy("redis", arn)


def test_cluster_autoscaler_policy_binds_changes_to_the_cluster_tag():
    doc = json.loads(cluster_autoscaler_policy("kiosk-t", ["arn:aws:eks:r:1:nodegroup/kiosk-t/gpu/x"]))
    mutating = [s for s in doc["Statement"] if "autoscaling:SetDesiredCapacity" in s["Action"]]
    (statement,) = mutating
    assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/kiosk-t": "owned"}}
    describe = [s for s in doc["Statement"] if "eks:DescribeNodegroup" in s["Action"]]
    assert describe[0]["Resource"] == ["arn:aws:eks:r:1:nodegroup/kiosk-t/gpu/x"]


def test_ecr_lifecycle_expires_only_untagged_images():
    (rule,) = json.loads(lifecycle_policy(7))["rules"]
    assert rule["selection"]["tagStatus"] == "untagged" and rule["selection"]["countNumber"] == 7


def test_kubeconfig_execs_aws_eks_get_token():
    config = json.loads(kubeconfig("kiosk-t", "https://x.eks.amazonaws.com", "Y2E=", "eu-west-1"))
    user = config["users"][0]["user"]["exec"]
    assert user["command"] == "aws"
    assert user["args"] == ["eks", "get-token", "--cluster-name", "kiosk-t", "--region", "eu-west-1",
                            "--output", "json"]
    assert "token" not in json.dumps(config["users"][0]["user"]).replace("get-token", "")


# --- components constructed on their own ----------------------------------------------

def test_node_group_with_a_floor_gets_no_scale_from_zero_tags(mocks):
    construct(lambda: ManagedNodeGroup("g", ManagedNodeGroupArgs(
        cluster_name="c", node_role_arn="r", subnet_ids=("s",),
        spec=NodeGroupSpec(instance_types=("m6i.large",), min_size=2, max_size=2, labels={"pool": "system"}))))
    assert mocks.of_type("aws:autoscaling/tag:Tag") == []
    (group,) = mocks.of_type("aws:eks/nodeGroup:NodeGroup")
    assert group["scalingConfig"] == {"minSize": 2, "maxSize": 2, "desiredSize": 2}
    assert group["capacityType"] == "ON_DEMAND"


def test_ecr_registry_exposes_the_namespace_and_a_secret_login(mocks):
    holder = {}

    def build():
        holder["registry"] = EcrRegistry("r", EcrRegistryArgs(namespace="kiosk-t", image_names=("a", "b")))
    construct(build)
    registry = holder["registry"]
    assert resolve(registry.repository_url) == f"{ECR_HOST}/kiosk-t"
    assert resolve(registry.address) == ECR_HOST
    assert _sync_await(registry.password.is_secret())
    assert sorted(r["name"] for r in mocks.of_type("aws:ecr/repository:Repository")) == ["kiosk-t/a", "kiosk-t/b"]


def test_frontend_without_a_known_url_and_behind_a_controller(mocks):
    def build():
        import pulumi_kubernetes as k8s

        provider = k8s_provider()
        controller = k8s.core.v1.ConfigMap("controller", metadata={"name": "c"},
                                           opts=pulumi.ResourceOptions(provider=provider))
        Frontend("fe", FrontendArgs(
            provider=provider, namespace="kiosk", service_account_name="sa", image="img", redis_url="u",
            storage_url="s3://b", public_url=None, ingress_class_name="alb", ingress_controller=controller))
    construct(build)
    (deployment,) = mocks.of_type("kubernetes:apps/v1:Deployment")
    env = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "KIOSK_PUBLIC_URL" not in env and "KIOSK_STORAGE_URL" in env
    (ingress,) = [r for r in mocks.resources if r.typ == "kubernetes:networking.k8s.io/v1:Ingress"]
    assert ingress.inputs["spec"]["ingressClassName"] == "alb"


def test_pod_identity_role_binds_its_service_account(mocks):
    construct(lambda: PodIdentityRole("p", PodIdentityRoleArgs(
        cluster_name="kiosk-t", namespace="kube-system", service_account="cluster-autoscaler",
        policy=s3_workload_policy("tfserving", "arn:aws:s3:::b"))))
    (association,) = mocks.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert association["namespace"] == "kube-system" and association["serviceAccount"] == "cluster-autoscaler"
    (role,) = mocks.of_type("aws:iam/role:Role")
    trust = json.loads(role["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert len(mocks.of_type("aws:iam/rolePolicy:RolePolicy")) == 1


# --- the Load Balancer Controller's policy, evaluated -------------------------------------

def _matches(pattern: str, value: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(value, pattern)


def _condition_holds(condition: dict, context: dict) -> bool:
    """StringEquals and Null, the only operators the policy uses (IAM semantics:
    every operator and every key must hold; a list of values is an OR)."""
    for operator, keys in condition.items():
        for key, expected in keys.items():
            if operator == "StringEquals":
                options = expected if isinstance(expected, list) else [expected]
                if context.get(key) not in options:
                    return False
            elif operator == "Null":
                if (key not in context) != (expected == "true"):
                    return False
            else:
                raise AssertionError(f"operator {operator} not modelled")
    return True


def allowed(doc: dict, action: str, resource: str, context: dict) -> bool:
    for statement in doc["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if (statement["Effect"] == "Allow" and action in statement["Action"]
                and any(_matches(r, resource) for r in resources)
                and _condition_holds(statement.get("Condition", {}), context)):
            return True
    return False


LBC_TAG = "elbv2.k8s.aws/cluster"
ALB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/k8s-kiosk/0123"
TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-kiosk/0123"
SG = "arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123"


def request_tag(value: str) -> dict:
    return {f"aws:RequestTag/{LBC_TAG}": value}


def resource_tag(value: str) -> dict:
    return {f"aws:ResourceTag/{LBC_TAG}": value}


def test_load_balancer_controller_policy_binds_the_cluster_tag_to_this_cluster():
    from components.aws.policies import load_balancer_controller_policy

    doc = json.loads(load_balancer_controller_policy("kiosk-t"))
    for statement in doc["Statement"]:
        for operator, keys in statement.get("Condition", {}).items():
            for key, value in keys.items():
                if LBC_TAG in key:
                    # Only "the request does not set the cluster tag" stays a Null test.
                    assert (operator, value) in {("StringEquals", "kiosk-t"), ("Null", "true")}, statement
                    assert operator == "StringEquals" or key.startswith("aws:RequestTag/"), statement
    # Creation: the create calls carry the tag as a request tag, with this cluster's name.
    for action, resource in (("elasticloadbalancing:CreateLoadBalancer", ALB),
                             ("elasticloadbalancing:CreateTargetGroup", TARGET_GROUP)):
        assert allowed(doc, action, resource, request_tag("kiosk-t")), action
        assert not allowed(doc, action, resource, request_tag("other")), action
        assert not allowed(doc, action, resource, {}), action
    for resource in (ALB, TARGET_GROUP):
        for create_action in ("CreateLoadBalancer", "CreateTargetGroup"):
            on_create = {"elasticloadbalancing:CreateAction": create_action}
            assert allowed(doc, "elasticloadbalancing:AddTags", resource, {**on_create, **request_tag("kiosk-t")})
            assert not allowed(doc, "elasticloadbalancing:AddTags", resource, {**on_create, **request_tag("x")})
    assert allowed(doc, "ec2:CreateSecurityGroup", SG, request_tag("kiosk-t"))
    sg_create = {"ec2:CreateAction": "CreateSecurityGroup"}
    assert allowed(doc, "ec2:CreateTags", SG, {**sg_create, **request_tag("kiosk-t")})
    assert not allowed(doc, "ec2:CreateTags", SG, {**sg_create, **request_tag("other")})
    # Changes and deletion: only on resources tagged with this cluster's name.
    for action, resource in (("elasticloadbalancing:DeleteLoadBalancer", ALB),
                             ("elasticloadbalancing:ModifyLoadBalancerAttributes", ALB),
                             ("elasticloadbalancing:DeleteTargetGroup", TARGET_GROUP),
                             ("ec2:DeleteSecurityGroup", SG)):
        assert allowed(doc, action, resource, resource_tag("kiosk-t")), action
        assert not allowed(doc, action, resource, resource_tag("other")), action
        assert not allowed(doc, action, resource, {}), action
    # Retagging its own resources, never adding or moving the cluster tag.
    for action, resource in (("elasticloadbalancing:AddTags", ALB), ("ec2:CreateTags", SG),
                             ("ec2:DeleteTags", SG), ("elasticloadbalancing:RemoveTags", TARGET_GROUP)):
        assert allowed(doc, action, resource, resource_tag("kiosk-t")), action
        assert not allowed(doc, action, resource, resource_tag("other")), action
        assert not allowed(doc, action, resource, {**resource_tag("kiosk-t"), **request_tag("other")}), action
    with pytest.raises(ValueError):
        load_balancer_controller_policy("")


def test_eks_cluster_keeps_its_control_plane_logs_for_the_retention_given(mocks):
    construct(lambda: EksCluster("c", eks_args(log_retention_days=7)))
    (group,) = mocks.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert group["name"] == "/aws/eks/kiosk-t/cluster" and group["retentionInDays"] == 7
    (cluster,) = mocks.of_type("aws:eks/cluster:Cluster")
    assert cluster["enabledClusterLogTypes"] == ["audit", "authenticator"]
