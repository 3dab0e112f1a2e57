"""Artifact Registry repository for the kiosk's images, with push credentials."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from components.shapes import ImageMirror, RegistryLogin

REPOSITORY_ID = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")


def grant_readers(name: str, repository: gcp.artifactregistry.Repository,
                  members: Sequence[pulumi.Input[str]], opts: pulumi.ResourceOptions) -> None:
    """roles/artifactregistry.reader on `repository` for each member (image pulls)."""
    for i, member in enumerate(members):
        gcp.artifactregistry.RepositoryIamMember(
            f"{name}-reader-{i}",
            project=repository.project,
            location=repository.location,
            repository=repository.name,
            role="roles/artifactregistry.reader",
            member=member,
            opts=opts,
        )


@dataclass(frozen=True)
class ArtifactRegistryArgs:
    project: str
    location: str
    repository_id: str = "kiosk"
    # Members that pull images (the GKE node service account).
    reader_members: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    keep_recent_versions: int = 10
    # Pulumi's `protect` on the repository (prod stacks).
    protect: bool = False


class ArtifactRegistry(pulumi.ComponentResource):
    """A Docker repository; exposes the address, repository URL and a push login.

    The login is an OAuth access token of whoever runs `pulumi` (CI's OIDC
    identity or a developer's gcloud login), fetched at run time and marked
    secret, so no key file exists anywhere.
    """

    def __init__(self, name: str, args: ArtifactRegistryArgs, opts: pulumi.ResourceOptions | None = None):
        if not REPOSITORY_ID.match(args.repository_id):
            raise ValueError(f"ArtifactRegistry {name}: invalid repository_id {args.repository_id!r}")
        if args.keep_recent_versions < 1:
            raise ValueError(f"ArtifactRegistry {name}: keep_recent_versions must be at least 1")
        super().__init__("kiosk:gcp:ArtifactRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.repository = gcp.artifactregistry.Repository(
            name,
            project=args.project,
            location=args.location,
            repository_id=args.repository_id,
            format="DOCKER",
            description="Kiosk consumers and frontend images",
            cleanup_policies=[
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="keep-recent",
                    action="KEEP",
                    most_recent_versions=gcp.artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                        keep_count=args.keep_recent_versions,
                    ),
                ),
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="delete-old-untagged",
                    action="DELETE",
                    condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                        tag_state="UNTAGGED", older_than="604800s",
                    ),
                ),
            ],
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        grant_readers(name, self.repository, args.reader_members, child)
        self.address = f"{args.location}-docker.pkg.dev"
        self.repository_url = self.repository.repository_id.apply(
            lambda rid: f"{args.location}-docker.pkg.dev/{args.project}/{rid}"
        )
        self.username = "oauth2accesstoken"
        self.password = pulumi.Output.secret(gcp.organizations.get_client_config_output().access_token)
        self.login = RegistryLogin(self.address, self.repository_url, self.username, self.password)
        self.register_outputs({"address": self.address, "repositoryUrl": self.repository_url})


@dataclass(frozen=True)
class DockerHubRemoteArgs:
    project: str
    location: str
    repository_id: str
    # Members that pull through it (the GKE node service account).
    reader_members: Sequence[pulumi.Input[str]] = field(default_factory=tuple)


class DockerHubRemote(pulumi.ComponentResource):
    """An Artifact Registry remote repository caching Docker Hub; `.mirror`
    rewrites Docker Hub references to it (tensorflow/serving, redis)."""

    def __init__(self, name: str, args: DockerHubRemoteArgs, opts: pulumi.ResourceOptions | None = None):
        if not REPOSITORY_ID.match(args.repository_id):
            raise ValueError(f"DockerHubRemote {name}: invalid repository_id {args.repository_id!r}")
        super().__init__("kiosk:gcp:DockerHubRemote", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repository = gcp.artifactregistry.Repository(
            name,
            project=args.project,
            location=args.location,
            repository_id=args.repository_id,
            format="DOCKER",
            mode="REMOTE_REPOSITORY",
            description="Pull-through cache of Docker Hub for the kiosk's public images",
            remote_repository_config=gcp.artifactregistry.RepositoryRemoteRepositoryConfigArgs(
                description="Docker Hub",
                docker_repository=gcp.artifactregistry.RepositoryRemoteRepositoryConfigDockerRepositoryArgs(
                    public_repository="DOCKER_HUB",
                ),
            ),
            opts=child,
        )
        grant_readers(name, self.repository, args.reader_members, child)
        self.mirror = ImageMirror(base=self.repository.repository_id.apply(
            lambda rid: f"{args.location}-docker.pkg.dev/{args.project}/{rid}"))
        self.register_outputs({"repository": self.repository.repository_id})
