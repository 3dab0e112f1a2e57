"""IAM policy documents of the AWS family, as plain functions over ARNs.

Every document here is least-privilege: no `*` action, and every statement
that must use `"Resource": "*"` (Describe calls, resources created later by a
controller) either only reads or is bound by a condition on a tag the
controller owns. The tests parse every recorded document and check that.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from components.shapes import MODELS, OUTPUT, UPLOADS

VERSION = "2012-10-17"
POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"
# The tag EKS managed node groups put on their Auto Scaling groups, with the
# value "owned" (together with k8s.io/cluster-autoscaler/enabled=true).
CA_CLUSTER_TAG = "k8s.io/cluster-autoscaler/{cluster}"
# The tag the AWS Load Balancer Controller puts on what it creates.
LBC_CLUSTER_TAG = "elbv2.k8s.aws/cluster"


def document(*statements: dict) -> str:
    return json.dumps({"Version": VERSION, "Statement": list(statements)}, sort_keys=True)


def allow(actions: Sequence[str], resources: Sequence[str] | str, **condition: dict) -> dict:
    statement: dict = {"Effect": "Allow", "Action": sorted(actions),
                       "Resource": resources if isinstance(resources, str) else list(resources)}
    if condition:
        statement["Condition"] = condition
    return statement


def assume_role_trust(service: str) -> str:
    """Trust policy letting an AWS service (eks, ec2) assume the role."""
    return document({"Effect": "Allow", "Principal": {"Service": service}, "Action": ["sts:AssumeRole"]})


def pod_identity_trust() -> str:
    """Trust policy of roles used through EKS Pod Identity
    (https://docs.aws.amazon.com/eks/latest/userguide/pod-id-role.html)."""
    return document({
        "Effect": "Allow",
        "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
    })


# --- the kiosk's workloads on its bucket ----------------------------------------

def _objects(bucket_arn: str, *prefixes: str) -> list[str]:
    return [f"{bucket_arn}/{p}*" for p in prefixes]


def s3_workload_policy(workload: str, bucket_arn: str) -> str:
    """What each workload may do in the stack's bucket, and nothing else.

    consumers read uploads/ and write output/ (and uploads/, where zip jobs
    unpack); the frontend writes uploads/, reads uploads/ and output/ (for the
    download links it signs) and lists the bucket (models/ for its catalogue);
    TF-Serving's model copy reads models/ only.
    """
    multipart = ["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    if workload == "consumers":
        return document(
            allow(["s3:ListBucket"], [bucket_arn]),
            allow(["s3:GetObject"], _objects(bucket_arn, UPLOADS, OUTPUT)),
            allow(["s3:PutObject", *multipart], _objects(bucket_arn, UPLOADS, OUTPUT)),
        )
    if workload == "frontend":
        return document(
            allow(["s3:ListBucket"], [bucket_arn]),
            allow(["s3:GetObject"], _objects(bucket_arn, UPLOADS, OUTPUT, MODELS)),
            allow(["s3:PutObject", *multipart], _objects(bucket_arn, UPLOADS)),
        )
    if workload == "tfserving":
        return document(
            allow(["s3:ListBucket"], [bucket_arn], StringLike={"s3:prefix": [f"{MODELS}*"]}),
            allow(["s3:GetObject"], _objects(bucket_arn, MODELS)),
        )
    raise ValueError(f"no S3 policy for workload {workload!r}")


def pull_through_cache_policy(region: str, account: str, prefix: str) -> str:
    """What nodes need to pull through the ECR cache of one upstream: import
    an image the first time (which creates its repository) under `prefix/`."""
    return document(allow(["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"],
                          [f"arn:aws:ecr:{region}:{account}:repository/{prefix}/*"]))


def s3_tls_only_bucket_policy(bucket_arn: str) -> str:
    """Bucket policy refusing every request that is not over TLS."""
    return document({
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    })


# --- cluster add-ons ---------------------------------------------------------------

def cluster_autoscaler_policy(cluster_name: str, node_group_arns: Sequence[str]) -> str:
    """The autoscaler's policy as its AWS README recommends it, scoped further
    (https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/cloudprovider/aws/README.md#iam-policy).

    Describe calls take no resource-level permissions ("*"); the two calls
    that change capacity only work on Auto Scaling groups tagged as this
    cluster's, and DescribeNodegroup (labels and taints of empty managed node
    groups) only on this cluster's node groups.
    """
    tag = CA_CLUSTER_TAG.format(cluster=cluster_name)
    return document(
        allow([
            "autoscaling:DescribeAutoScalingGroups",
            "autoscaling:DescribeAutoScalingInstances",
            "autoscaling:DescribeLaunchConfigurations",
            "autoscaling:DescribeScalingActivities",
            "autoscaling:DescribeTags",
            "ec2:DescribeImages",
            "ec2:DescribeInstanceTypes",
            "ec2:DescribeLaunchTemplateVersions",
            "ec2:GetInstanceTypesFromInstanceRequirements",
        ], "*"),
        allow(
            ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            "*",
            StringEquals={f"aws:ResourceTag/{tag}": "owned"},
        ),
        allow(["eks:DescribeNodegroup"], list(node_group_arns)),
    )


def load_balancer_controller_policy(cluster_name: str) -> str:
    """The AWS Load Balancer Controller's policy (docs/install/iam_policy.json
    of kubernetes-sigs/aws-load-balancer-controller, v2.14), without the WAF,
    Shield and Cognito statements: the chart runs with those features off.

    Upstream binds changes to load balancers, target groups and security
    groups to resources carrying the controller's `elbv2.k8s.aws/cluster` tag
    at all (`Null` conditions), so that one role could serve every cluster of
    the account. The controller sets that tag's value to its `clusterName`,
    so here the conditions require the value to be this cluster's name: the
    controller of another cluster in the account cannot use this role to
    change that cluster's load balancers. Creation is unaffected, since
    CreateLoadBalancer, CreateTargetGroup and CreateSecurityGroup carry the
    tag as a request tag (tag-on-create). The retag statements keep
    upstream's `Null` on the request tag: they let the controller change
    other tags of its own resources but never add or move the cluster tag,
    which `StringEquals` cannot express.
    """
    if not cluster_name:
        raise ValueError("the Load Balancer Controller's policy needs the cluster's name")
    request_tagged = {"StringEquals": {f"aws:RequestTag/{LBC_CLUSTER_TAG}": cluster_name}}
    resource_tagged = {"StringEquals": {f"aws:ResourceTag/{LBC_CLUSTER_TAG}": cluster_name}}
    retag = {
        "Null": {f"aws:RequestTag/{LBC_CLUSTER_TAG}": "true"},
        "StringEquals": {f"aws:ResourceTag/{LBC_CLUSTER_TAG}": cluster_name},
    }
    elb = "arn:aws:elasticloadbalancing:*:*"
    balancers = [f"{elb}:targetgroup/*/*", f"{elb}:loadbalancer/net/*/*", f"{elb}:loadbalancer/app/*/*"]
    security_groups = "arn:aws:ec2:*:*:security-group/*"
    return document(
        allow(["iam:CreateServiceLinkedRole"], "*",
              StringEquals={"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}),
        allow([
            "ec2:DescribeAccountAttributes", "ec2:DescribeAddresses", "ec2:DescribeAvailabilityZones",
            "ec2:DescribeCoipPools", "ec2:DescribeInstances", "ec2:DescribeInternetGateways",
            "ec2:DescribeIpamPools", "ec2:DescribeNetworkInterfaces", "ec2:DescribeRouteTables",
            "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeTags", "ec2:DescribeVpcPeeringConnections",
            "ec2:DescribeVpcs", "ec2:GetCoipPoolUsage", "ec2:GetSecurityGroupsForVpc",
            "elasticloadbalancing:DescribeCapacityReservation", "elasticloadbalancing:DescribeListenerAttributes",
            "elasticloadbalancing:DescribeListenerCertificates", "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeLoadBalancerAttributes", "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeRules", "elasticloadbalancing:DescribeSSLPolicies",
            "elasticloadbalancing:DescribeTags", "elasticloadbalancing:DescribeTargetGroupAttributes",
            "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth",
            "elasticloadbalancing:DescribeTrustStores",
            "acm:DescribeCertificate", "acm:ListCertificates",
            "iam:GetServerCertificate", "iam:ListServerCertificates",
        ], "*"),
        allow(["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"], "*"),
        allow(["ec2:CreateSecurityGroup"], "*"),
        allow(["ec2:CreateTags"], security_groups,
              StringEquals={"ec2:CreateAction": "CreateSecurityGroup", **request_tagged["StringEquals"]}),
        allow(["ec2:CreateTags", "ec2:DeleteTags"], security_groups, **retag),
        allow(["ec2:AuthorizeSecurityGroupIngress", "ec2:DeleteSecurityGroup", "ec2:RevokeSecurityGroupIngress"],
              "*", **resource_tagged),
        allow(["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"], "*",
              **request_tagged),
        allow(["elasticloadbalancing:CreateListener", "elasticloadbalancing:CreateRule",
               "elasticloadbalancing:DeleteListener", "elasticloadbalancing:DeleteRule"], "*"),
        allow(["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"], balancers, **retag),
        allow(["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"], [
            f"{elb}:listener/net/*/*/*", f"{elb}:listener/app/*/*/*",
            f"{elb}:listener-rule/net/*/*/*", f"{elb}:listener-rule/app/*/*/*",
        ]),
        allow([
            "elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:DeleteTargetGroup",
            "elasticloadbalancing:ModifyCapacityReservation", "elasticloadbalancing:ModifyIpPools",
            "elasticloadbalancing:ModifyListenerAttributes", "elasticloadbalancing:ModifyLoadBalancerAttributes",
            "elasticloadbalancing:ModifyTargetGroup", "elasticloadbalancing:ModifyTargetGroupAttributes",
            "elasticloadbalancing:SetIpAddressType", "elasticloadbalancing:SetSecurityGroups",
            "elasticloadbalancing:SetSubnets",
        ], "*", **resource_tagged),
        allow(["elasticloadbalancing:AddTags"], balancers,
              StringEquals={"elasticloadbalancing:CreateAction": ["CreateTargetGroup", "CreateLoadBalancer"],
                            **request_tagged["StringEquals"]}),
        allow(["elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets"],
              f"{elb}:targetgroup/*/*"),
        allow([
            "elasticloadbalancing:AddListenerCertificates", "elasticloadbalancing:ModifyListener",
            "elasticloadbalancing:ModifyRule", "elasticloadbalancing:RemoveListenerCertificates",
            "elasticloadbalancing:SetRulePriorities",
        ], "*"),
    )
