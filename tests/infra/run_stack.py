"""Run the real Pulumi program for one stack file under mocks; print JSON.

Usage: python tests/infra/run_stack.py stacks/Pulumi.<stack>.yaml [extra.yaml]

Mimics what the CLI does before a program runs: merges the Pulumi.yaml config
schema's defaults under the stack's config, then runs infra/__main__.py from
infra/ (the working directory Pulumi uses for `main: infra/`). Every resource
registration is recorded with its URN, type, provider and inputs (secrets kept
wrapped as {"__secret__": value}); stack outputs are recorded with their
secretness. Runs in its own process because Pulumi's runtime state is global.
"""

from __future__ import annotations

import hashlib
import json
import os
import runpy
import sys
import traceback
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SIG_KEY = "4dabf18193072939515e22adb298388d"
PROJECT = "kiosk"
AWS_ACCOUNT = "123456789012"
AWS_REGION = "us-east-1"
ECR_HOST = f"{AWS_ACCOUNT}.dkr.ecr.{AWS_REGION}.amazonaws.com"


def stack_name(stack_file: Path) -> str:
    name = stack_file.name
    if not (name.startswith("Pulumi.") and name.endswith(".yaml")):
        raise ValueError(f"{stack_file} is not a Pulumi.<stack>.yaml file")
    return name[len("Pulumi."):-len(".yaml")]


def _as_config_string(value) -> str:
    """The CLI hands every config value to the program as a string (JSON for non-strings)."""
    return value if isinstance(value, str) else json.dumps(value)


def merged_config(stack_file: Path, overrides: dict | None = None) -> dict[str, str]:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    stack = yaml.safe_load(stack_file.read_text()) or {}
    config: dict[str, str] = {}
    for key, schema in (project.get("config") or {}).items():
        if "default" in schema:
            config[f"{PROJECT}:{key}"] = _as_config_string(schema["default"])
    for key, value in {**(stack.get("config") or {}), **(overrides or {})}.items():
        config[key] = _as_config_string(value)
    return config


def _plain(value):
    """Wrapped secrets -> {"__secret__": value}; file assets -> {"__file_asset__": path}; unknowns -> None."""
    from pulumi import FileAsset

    if isinstance(value, FileAsset):
        return {"__file_asset__": value.path}
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return {"__secret__": _plain(value.get("value"))}
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def _fake_outputs(typ: str, name: str, inputs: dict) -> dict:
    """Outputs a provider would compute that the program reads."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    out = dict(inputs)
    out.setdefault("name", f"{name}-{digest[:7]}")
    if typ == "gcp:container/cluster:Cluster":
        out["endpoint"] = "203.0.113.1"
        out["masterAuth"] = {"clusterCaCertificate": "Y2VydA=="}
        endpoints = inputs.get("controlPlaneEndpointsConfig") or {}
        if endpoints:
            out["controlPlaneEndpointsConfig"] = {
                "dnsEndpointConfig": {**endpoints.get("dnsEndpointConfig", {}),
                                      "endpoint": f"gke-{digest[:16]}.us-central1.gke.goog"},
            }
    elif typ == "gcp:serviceaccount/account:Account":
        project = inputs.get("project", "project")
        out["email"] = f"{inputs['accountId']}@{project}.iam.gserviceaccount.com"
        out["name"] = f"projects/{project}/serviceAccounts/{out['email']}"
    elif typ == "gcp:compute/globalAddress:GlobalAddress":
        out["address"] = "203.0.113.10"
    elif typ == "gcp:artifactregistry/repository:Repository":
        out["name"] = inputs["repositoryId"]
    elif typ == "gcp:redis/instance:Instance":
        out["host"] = "10.1.0.3"
        if inputs.get("authEnabled"):
            out["authString"] = f"auth-{digest[:24]}"
    elif typ == "docker-build:index:Image":
        sha = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
        out["digest"] = f"sha256:{sha}"
        out["ref"] = f"{inputs['tags'][0]}@sha256:{sha}"
    elif typ.startswith("aws:"):
        out.update(_fake_aws_outputs(typ, name, inputs, digest))
    elif typ == "kubernetes:networking.k8s.io/v1:Ingress":
        annotations = (inputs.get("metadata") or {}).get("annotations") or {}
        if inputs.get("spec", {}).get("ingressClassName") == "alb":
            entry = {"hostname": f"k8s-kiosk-frontend-{digest[:10]}.{AWS_REGION}.elb.amazonaws.com"}
        else:
            entry = {"ip": "203.0.113.10" if annotations else "203.0.113.20"}
        out["status"] = {"loadBalancer": {"ingress": [entry]}}
    elif typ == "kubernetes:helm.sh/v3:Release":
        out["status"] = {"namespace": inputs.get("namespace"), "appVersion": inputs.get("version"),
                         "status": "deployed"}
    elif typ == "random:index/randomPassword:RandomPassword":
        out["result"] = digest[: int(inputs.get("length", 16))]
    return out


def _fake_aws_outputs(typ: str, name: str, inputs: dict, digest: str) -> dict:
    """What AWS computes for the resources whose outputs the program reads."""
    arn = f"arn:aws:{typ.split(':')[1].split('/')[0]}:{AWS_REGION}:{AWS_ACCOUNT}:{name}"
    out: dict = {"arn": arn}
    if typ == "aws:s3/bucket:Bucket":
        bucket = inputs.get("bucket") or f"{name}-{digest[:8]}"
        out.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}")
    elif typ == "aws:iam/role:Role":
        role = inputs.get("name") or f"{name}-{digest[:7]}"
        out.update(name=role, arn=f"arn:aws:iam::{AWS_ACCOUNT}:role/{role}")
    elif typ == "aws:eks/cluster:Cluster":
        out.update(
            arn=f"arn:aws:eks:{AWS_REGION}:{AWS_ACCOUNT}:cluster/{inputs['name']}",
            endpoint=f"https://{digest[:32].upper()}.gr7.{AWS_REGION}.eks.amazonaws.com",
            certificateAuthority={"data": "Y2VydA=="},
            vpcConfig={**(inputs.get("vpcConfig") or {}), "clusterSecurityGroupId": f"sg-{name}"},
        )
    elif typ == "aws:eks/nodeGroup:NodeGroup":
        group = inputs.get("nodeGroupName") or f"{name}-{digest[:7]}"
        out.update(
            nodeGroupName=group,
            arn=f"arn:aws:eks:{AWS_REGION}:{AWS_ACCOUNT}:nodegroup/{inputs['clusterName']}/{group}/{digest[:8]}",
            resources=[{"autoscalingGroups": [{"name": asg_name(name)}], "remoteAccessSecurityGroupId": ""}],
        )
    elif typ == "aws:ecr/repository:Repository":
        out.update(repositoryUrl=f"{ECR_HOST}/{inputs['name']}", registryId=AWS_ACCOUNT)
    elif typ == "aws:ecr/pullThroughCacheRule:PullThroughCacheRule":
        out["registryId"] = AWS_ACCOUNT
    elif typ == "aws:acm/certificate:Certificate":
        out["domainValidationOptions"] = [{
            "domainName": inputs["domainName"],
            "resourceRecordName": f"_{digest[:12]}.{inputs['domainName']}.",
            "resourceRecordType": "CNAME",
            "resourceRecordValue": f"_{digest[12:24]}.acm-validations.aws.",
        }]
    elif typ == "aws:acm/certificateValidation:CertificateValidation":
        out["certificateArn"] = inputs["certificateArn"]
    elif typ == "aws:route53/record:Record":
        out["fqdn"] = inputs["name"]
    return out


def asg_name(node_group_resource_name: str) -> str:
    """The Auto Scaling group the mocks give the node group of that resource name."""
    return f"eks-{node_group_resource_name}-{hashlib.sha256(node_group_resource_name.encode()).hexdigest()[:12]}"


def fake_invoke(token: str, args: dict) -> dict:
    if token == "gcp:organizations/getClientConfig:getClientConfig":
        return {"accessToken": "ya29.mock-token", "project": "mock", "region": "us-central1", "id": "mock", "zone": ""}
    if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
        return {"authorizationToken": "QVdTOm1vY2s=", "expiresAt": "2030-01-01T00:00:00Z", "id": AWS_REGION,
                "password": "mock-ecr-password", "proxyEndpoint": f"https://{ECR_HOST}", "region": AWS_REGION,
                "registryId": args.get("registryId", AWS_ACCOUNT), "userName": "AWS"}
    if token == "gcp:organizations/getProject:getProject":  # a budget's project filter needs its number
        return {"projectId": args.get("projectId", "mock"), "number": "123456789012", "id": "projects/mock"}
    if token == "aws:lb/getHostedZoneId:getHostedZoneId":
        return {"id": "Z35SXDOTRQ7X7K", "region": AWS_REGION}
    raise NotImplementedError(f"no mock for invoke {token}")


def resource_options(request) -> dict:
    """The resource options a registration carries, as the engine receives them
    (`pulumi.ResourceOptions` and the engine see the same fields)."""
    timeouts = request.customTimeouts
    return {
        "options": {
            "protect": bool(request.protect),
            "ignoreChanges": sorted(request.ignoreChanges),
            "deleteBeforeReplace": bool(request.deleteBeforeReplace),
            "retainOnDelete": bool(request.retainOnDelete),
            "replaceOnChanges": sorted(request.replaceOnChanges),
            "customTimeouts": {k: getattr(timeouts, k) for k in ("create", "update", "delete")
                               if getattr(timeouts, k)},
            "deletedWith": request.deletedWith,
        },
        # URNs each input property was computed from.
        "propertyDependencies": {k: sorted(v.urns) for k, v in request.propertyDependencies.items()},
    }


def recording_monitor(mock, recorded: list[dict]):
    """A mock resource monitor that appends every registration to `recorded`."""
    from pulumi.runtime import mocks, rpc

    class Monitor(mocks.MockMonitor):
        def RegisterResource(self, request):
            response = super().RegisterResource(request)
            recorded.append({
                "urn": response.urn,
                "type": request.type,
                "name": request.name,
                "custom": bool(request.custom),
                "provider": request.provider,
                # URNs it waits for: depends_on, and resources whose outputs are inputs.
                "dependencies": sorted(set(request.dependencies)
                                       | {u for deps in request.propertyDependencies.values() for u in deps.urns}),
                "inputs": _plain(rpc.deserialize_properties(request.object)),
                **resource_options(request),
            })
            return response

    return Monitor(mock)


def run(stack_file: Path, overrides: dict | None = None) -> dict:
    import pulumi
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    stack = stack_name(stack_file)
    pulumi.runtime.set_all_config(merged_config(stack_file, overrides))
    recorded: list[dict] = []

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs):
            return f"{args.name}-id", _fake_outputs(args.typ, args.name, args.inputs)

        def call(self, args: pulumi.runtime.MockCallArgs):
            return fake_invoke(args.token, dict(args.args))

    mock = Mocks()
    pulumi.runtime.set_mocks(mock, project=PROJECT, stack=stack, preview=False,
                             monitor=recording_monitor(mock, recorded))
    program = ROOT / "infra" / "__main__.py"
    cwd = os.getcwd()
    os.chdir(program.parent)
    try:
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(program), run_name="__main__")))
    finally:
        os.chdir(cwd)

    async def outputs() -> dict:
        from pulumi.runtime.settings import get_root_resource

        result = {}
        for key, value in get_root_resource().outputs.items():
            out = pulumi.Output.from_input(value)
            result[key] = {"value": _plain(await out.future()), "secret": bool(await out.is_secret())}
        return result

    return {"stack": stack, "resources": recorded, "outputs": _sync_await(outputs())}


def main(argv: list[str]) -> int:
    stack_file = Path(argv[1]).resolve()
    overrides = yaml.safe_load(Path(argv[2]).read_text()) if len(argv) > 2 else None
    try:
        result = run(stack_file, overrides)
    except Exception:  # report the program's own failure to the test verbatim
        traceback.print_exc()
        return 1
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
