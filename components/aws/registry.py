"""ECR repositories for the kiosk's images, with push credentials obtained in the stack."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.policies import pull_through_cache_policy
from components.shapes import ImageMirror, RegistryLogin

NAMESPACE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")


def lifecycle_policy(untagged_expire_days: int) -> str:
    """Untagged images (earlier builds a tag moved away from) go after some days.

    Tagged ones (the current build and the BuildKit cache) stay.
    """
    return json.dumps({"rules": [{
        "rulePriority": 1,
        "description": f"expire untagged images after {untagged_expire_days} days",
        "selection": {
            "tagStatus": "untagged",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": untagged_expire_days,
        },
        "action": {"type": "expire"},
    }]})


@dataclass(frozen=True)
class EcrRegistryArgs:
    # Repositories are <namespace>/<image name>, e.g. kiosk-dev-aws/kiosk-consumers.
    namespace: str
    image_names: Sequence[str]
    untagged_expire_days: int = 7
    # Let `pulumi destroy` delete repositories that still hold images.
    force_delete: bool = False
    # Pulumi's `protect` on the repositories (prod stacks).
    protect: bool = False


class EcrRegistry(pulumi.ComponentResource):
    """One repository per image; exposes the address, repository URL and a push login.

    The login is an ECR authorization token of whoever runs `pulumi` (CI's
    OIDC role or a developer's credentials), fetched at run time and marked
    secret, so no key exists anywhere.
    """

    def __init__(self, name: str, args: EcrRegistryArgs, opts: pulumi.ResourceOptions | None = None):
        if not NAMESPACE.match(args.namespace):
            raise ValueError(f"EcrRegistry {name}: invalid repository namespace {args.namespace!r}")
        if not args.image_names:
            raise ValueError(f"EcrRegistry {name}: no images")
        if args.untagged_expire_days < 1:
            raise ValueError(f"EcrRegistry {name}: untagged_expire_days must be at least 1")
        super().__init__("kiosk:aws:EcrRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repositories: dict[str, aws.ecr.Repository] = {}
        for image in args.image_names:
            repository = aws.ecr.Repository(
                f"{name}-{image}",
                name=f"{args.namespace}/{image}",
                # `latest` and `buildcache` are pushed again by every build;
                # Deployments pin the digest, never the tag.
                image_tag_mutability="MUTABLE",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
                encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")],
                force_delete=args.force_delete,
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
            aws.ecr.LifecyclePolicy(
                f"{name}-{image}",
                repository=repository.name,
                policy=lifecycle_policy(args.untagged_expire_days),
                opts=child,
            )
            self.repositories[image] = repository
        first = next(iter(self.repositories.values()))
        # <account>.dkr.ecr.<region>.amazonaws.com/<namespace>, once every repository exists.
        self.repository_url: pulumi.Output[str] = pulumi.Output.all(
            *(r.repository_url for r in self.repositories.values())
        ).apply(lambda urls: urls[0].rsplit("/", 1)[0])
        token = aws.ecr.get_authorization_token_output(registry_id=first.registry_id)
        self.address: pulumi.Output[str] = token.proxy_endpoint.apply(lambda e: e.removeprefix("https://"))
        self.username: pulumi.Output[str] = token.user_name
        self.password: pulumi.Output[str] = pulumi.Output.secret(token.password)
        self.login = RegistryLogin(self.address, self.repository_url, self.username, self.password)
        self.register_outputs({"address": self.address, "repositoryUrl": self.repository_url})


DOCKER_HUB = "registry-1.docker.io"
# ECR takes an upstream's credentials only from Secrets Manager secrets named so.
CREDENTIAL_SECRET = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:ecr-pullthroughcache/.+$")


@dataclass(frozen=True)
class DockerHubCacheArgs:
    region: str
    # Repositories of cached images are <prefix>/<Docker Hub path>.
    prefix: str
    # Secrets Manager secret with a Docker Hub user name and access token:
    # ECR pulls through to Docker Hub only authenticated.
    credential_arn: str
    # IAM roles that pull through it (the node role).
    puller_role_names: Sequence[pulumi.Input[str]]


class DockerHubCache(pulumi.ComponentResource):
    """An ECR pull-through cache rule for Docker Hub; `.mirror` rewrites
    Docker Hub references to it (tensorflow/serving, redis, amazon/aws-cli)."""

    def __init__(self, name: str, args: DockerHubCacheArgs, opts: pulumi.ResourceOptions | None = None):
        if not NAMESPACE.match(args.prefix):
            raise ValueError(f"DockerHubCache {name}: invalid repository prefix {args.prefix!r}")
        if not CREDENTIAL_SECRET.match(args.credential_arn):
            raise ValueError(f"DockerHubCache {name}: {args.credential_arn!r} is not a Secrets Manager secret "
                             "named ecr-pullthroughcache/...")
        super().__init__("kiosk:aws:DockerHubCache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        rule = aws.ecr.PullThroughCacheRule(
            name,
            ecr_repository_prefix=args.prefix,
            upstream_registry_url=DOCKER_HUB,
            credential_arn=args.credential_arn,
            opts=child,
        )
        policy = rule.registry_id.apply(lambda account: pull_through_cache_policy(args.region, account, args.prefix))
        for i, role in enumerate(args.puller_role_names):
            aws.iam.RolePolicy(f"{name}-pull-{i}", role=role, policy=policy, opts=child)
        self.mirror = ImageMirror(base=pulumi.Output.concat(
            rule.registry_id, ".dkr.ecr.", args.region, ".amazonaws.com/", rule.ecr_repository_prefix))
        self.register_outputs({"prefix": rule.ecr_repository_prefix})
