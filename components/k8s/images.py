"""Container images of the kiosk, built in the stack and pushed to its registry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker_build as docker_build

from components.shapes import RegistryLogin

# Image name -> Dockerfile, relative to the build context (the repo root).
IMAGES = {
    "kiosk-consumers": "consumers/Dockerfile",
    "kiosk-frontend": "frontend/Dockerfile",
}


@dataclass(frozen=True)
class ContainerImagesArgs:
    # The registry the stack's family made, with a push login.
    registry: RegistryLogin
    # Build context, relative to the program's working directory.
    context: str
    tag: str = "latest"
    platforms: Sequence[str] = field(default_factory=lambda: ("linux/amd64",))
    build_on_preview: bool = False


class ContainerImages(pulumi.ComponentResource):
    """Builds consumers and frontend with BuildKit and pushes them.

    `.consumers_ref` / `.frontend_ref` are digest-pinned references, so a new
    build rolls the Deployments and an unchanged one leaves them alone.
    """

    def __init__(self, name: str, args: ContainerImagesArgs, opts: pulumi.ResourceOptions | None = None):
        if not args.tag or ":" in args.tag or "/" in args.tag:
            raise ValueError(f"ContainerImages {name}: invalid tag {args.tag!r}")
        valid = {p.value for p in docker_build.Platform}
        for platform in args.platforms:
            if platform not in valid:
                raise ValueError(f"ContainerImages {name}: unknown platform {platform!r}")
        super().__init__("kiosk:k8s:ContainerImages", name, None, opts)
        login = args.registry
        registry = docker_build.RegistryArgs(address=login.address, username=login.username, password=login.password)
        self.images: dict[str, docker_build.Image] = {}
        for image_name, dockerfile in IMAGES.items():
            repo = pulumi.Output.concat(login.repository_url, "/", image_name)
            cache_ref = pulumi.Output.concat(repo, ":buildcache")
            self.images[image_name] = docker_build.Image(
                f"{name}-{image_name}",
                context=docker_build.BuildContextArgs(location=args.context),
                dockerfile=docker_build.DockerfileArgs(location=f"{args.context}/{dockerfile}"),
                platforms=[docker_build.Platform(p) for p in args.platforms],
                tags=[pulumi.Output.concat(repo, ":", args.tag)],
                push=True,
                registries=[registry],
                build_on_preview=args.build_on_preview,
                cache_from=[docker_build.CacheFromArgs(registry=docker_build.CacheFromRegistryArgs(ref=cache_ref))],
                # OCI image-manifest caches work on every registry (ECR rejects
                # BuildKit's default cache manifest list:
                # https://github.com/aws/containers-roadmap/issues/876).
                cache_to=[docker_build.CacheToArgs(registry=docker_build.CacheToRegistryArgs(
                    ref=cache_ref, mode=docker_build.CacheMode.MAX, image_manifest=True, oci_media_types=True,
                ))],
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.consumers_ref = self.images["kiosk-consumers"].ref
        self.frontend_ref = self.images["kiosk-frontend"].ref
        self.register_outputs({"consumers": self.consumers_ref, "frontend": self.frontend_ref})
