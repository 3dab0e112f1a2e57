"""Helpers over one recorded run of the program (see run_stack.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.infra.run_stack import merged_config, stack_name

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().parent / "run_stack.py"
STACK_FILES = sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))
# Helm releases and custom resources (KEDA's, GKE Managed Prometheus', GKE's FrontendConfig): not in
# the Kubernetes OpenAPI schema; their own tests check their structure.
K8S_NON_OBJECTS = ("kubernetes:helm.sh/", "kubernetes:keda.sh/", "kubernetes:monitoring.googleapis.com/",
                   "kubernetes:networking.gke.io/")


def start(stack_file: Path, overrides: dict | None = None, tmp_dir: Path | None = None) -> subprocess.Popen:
    """Start the driver for one stack file in its own process."""
    cmd = [sys.executable, str(DRIVER), str(stack_file)]
    if overrides:
        if tmp_dir is None:
            raise ValueError("overrides need a tmp_dir")
        extra = tmp_dir / f"{stack_file.stem}-overrides.yaml"
        extra.write_text(yaml.safe_dump(overrides))
        cmd.append(str(extra))
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def unsecret(value):
    """Drop the {"__secret__": v} wrappers."""
    if isinstance(value, dict):
        if set(value) == {"__secret__"}:
            return unsecret(value["__secret__"])
        return {k: unsecret(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unsecret(v) for v in value]
    return value


def is_secret(value) -> bool:
    return isinstance(value, dict) and set(value) == {"__secret__"}


def whole_floats_to_ints(value):
    """Mocks deliver numbers as floats; Kubernetes' schema wants integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_floats_to_ints(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [whole_floats_to_ints(v) for v in value]
    return value


@dataclass
class Resource:
    urn: str
    type: str
    name: str
    custom: bool
    provider: str
    raw_inputs: dict
    dependencies: tuple[str, ...] = ()
    # Resource options (protect, ignoreChanges, deleteBeforeReplace, customTimeouts, ...).
    options: dict = field(default_factory=dict)
    property_dependencies: dict = field(default_factory=dict)

    @property
    def inputs(self) -> dict:
        return whole_floats_to_ints(unsecret(self.raw_inputs))

    @property
    def is_k8s_object(self) -> bool:
        return self.type.startswith("kubernetes:") and not self.type.startswith(K8S_NON_OBJECTS)

    @property
    def kind(self) -> str:
        return self.type.rsplit(":", 1)[-1]


class StackRun:
    def __init__(self, stack_file: Path, data: dict, overrides: dict | None = None):
        self.stack_file = stack_file
        self.stack = data["stack"]
        self.resources = [
            Resource(urn=r["urn"], type=r["type"], name=r["name"], custom=r["custom"],
                     provider=r["provider"], raw_inputs=r["inputs"],
                     dependencies=tuple(r.get("dependencies", ())),
                     options=r["options"], property_dependencies=r["propertyDependencies"])
            for r in data["resources"]
        ]
        self.outputs = data["outputs"]
        self.config = merged_config(stack_file, overrides)
        schema = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
        self.types = {key: spec.get("type", "string") for key, spec in schema.items()}

    def cfg(self, key: str):
        """A kiosk: config value as the program sees it (JSON-decoded)."""
        raw = self.config[f"kiosk:{key}"]
        return raw if self.types[key] == "string" else json.loads(raw)

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, k8s_name: str | None = None) -> Resource:
        found = [r for r in self.of_type(typ)
                 if k8s_name is None or r.inputs.get("metadata", {}).get("name") == k8s_name]
        assert len(found) == 1, f"{self.stack}: expected one {typ} {k8s_name or ''}, found {[r.urn for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Resource:
        (found,) = [r for r in self.resources if r.urn == urn]
        return found

    def waits_for(self, resource: Resource, urn: str) -> bool:
        """Whether `resource` is created after (and deleted before) `urn`:
        through its dependencies, their dependencies, and its provider."""
        seen: set[str] = set()
        todo = [resource.urn]
        while todo:
            current = self.by_urn(todo.pop())
            nexts = list(current.dependencies)
            if current.provider:
                nexts.append(current.provider.rsplit("::", 1)[0])  # "<urn>::<id>"
            for u in nexts:
                if u == urn:
                    return True
                if u not in seen and any(r.urn == u for r in self.resources):
                    seen.add(u)
                    todo.append(u)
        return False

    def k8s_objects(self) -> list[Resource]:
        return [r for r in self.resources if r.is_k8s_object]


def run_stacks(files, overrides: dict | None = None, tmp_dir: Path | None = None) -> dict[str, tuple[int, str, str]]:
    """Run the driver for several stack files in parallel."""
    procs = {f: start(f, overrides, tmp_dir) for f in files}
    results = {}
    for f, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        results[stack_name(f)] = (proc.returncode, out, err)
    return results
