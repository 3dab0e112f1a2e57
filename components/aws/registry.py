"""ECR repositories for the kiosk's images, with push credentials obtained in the stack."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.shapes import RegistryLogin

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
