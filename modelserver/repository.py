"""The model repository: SavedModels at `<root>/<ModelName>/<version>/`, loaded on discovery."""

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from modelserver.errors import ServingError

log = logging.getLogger(__name__)

SERVE_TAG = "serve"
SAVED_MODEL_FILE = "saved_model.pb"


@dataclass(frozen=True)
class ServedModel:
    """One loaded version of a model: its signature definitions and callable signatures."""

    name: str
    version: int
    path: Path
    signature_defs: Mapping[str, meta_graph_pb2.SignatureDef]
    # The object tf.saved_model.load returned; it owns the variables the signatures read.
    module: Any

    def function(self, signature_name: str) -> Callable[..., Mapping[str, tf.Tensor]] | None:
        """The concrete function of a serving signature, or None if the model has no such one."""
        return self.module.signatures.get(signature_name)


def load_served_model(name: str, version: int, path: Path) -> ServedModel:
    """Load the SavedModel at `path` with its `serve` signature definitions."""
    saved_model = saved_model_pb2.SavedModel.FromString((path / SAVED_MODEL_FILE).read_bytes())
    meta_graph = next((graph for graph in saved_model.meta_graphs
                       if SERVE_TAG in graph.meta_info_def.tags), None)
    if meta_graph is None:
        raise ValueError(f"{path} has no meta graph tagged {SERVE_TAG!r}")
    module = tf.saved_model.load(str(path), tags=[SERVE_TAG])
    return ServedModel(name, version, path, dict(meta_graph.signature_def), module)


def servable_request(name: str, version: int | None) -> str:
    """How TF-Serving names a request in its errors: `Latest(name)` or `Specific(name, 3)`."""
    return f"Latest({name})" if version is None else f"Specific({name}, {version})"


def _fingerprint(path: Path) -> tuple[int, int]:
    """Changes whenever a file under `path` is added or rewritten."""
    stats = [child.stat() for child in path.rglob("*")]
    return len(stats), max((stat.st_mtime_ns for stat in stats), default=0)


class ModelRepository:
    """Every version of every SavedModel under `root`; `scan()` loads the ones not loaded yet.

    Lookups of unknown models or versions rescan the directory first, so a model
    copied in later is served without a restart. Copy a version in atomically
    (write elsewhere, then rename) as with TF-Serving: a half-written SavedModel
    fails to load and is retried only once its files change.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        # Replaced as a whole under _scan_lock, so readers need no lock.
        self._models: dict[str, dict[int, ServedModel]] = {}
        self._scan_lock = threading.Lock()
        self._failed: dict[Path, tuple[int, int]] = {}

    def scan(self) -> list[ServedModel]:
        """Load the versions that appeared on disk since the last scan; return them."""
        with self._scan_lock:
            models = {name: dict(versions) for name, versions in self._models.items()}
            loaded = []
            for name, version, path in self._version_dirs():
                if version in models.get(name, {}) or self._failed.get(path) == _fingerprint(path):
                    continue
                started = time.monotonic()
                try:
                    model = load_served_model(name, version, path)
                except Exception:
                    self._failed[path] = _fingerprint(path)
                    log.exception("could not load model %s version %d from %s", name, version, path)
                    continue
                self._failed.pop(path, None)
                models.setdefault(name, {})[version] = model
                loaded.append(model)
                log.info("loaded model %s version %d from %s in %.1f s (signatures: %s)",
                         name, version, path, time.monotonic() - started,
                         ", ".join(sorted(model.signature_defs)))
            self._models = models
            return loaded

    def versions(self, name: str) -> Mapping[int, ServedModel]:
        """The loaded versions of model `name` (empty if it has none even after a rescan)."""
        if name not in self._models:
            self.scan()
        return self._models.get(name, {})

    def get(self, name: str, version: int | None) -> ServedModel:
        """A version of a model, the highest one if `version` is None; NOT_FOUND if not served."""
        model = self._find(name, version)
        if model is None:
            self.scan()
            model = self._find(name, version)
        if model is None:
            raise ServingError(grpc.StatusCode.NOT_FOUND,
                               f"Servable not found for request: {servable_request(name, version)}")
        return model

    def all_models(self) -> list[ServedModel]:
        """Every loaded model version."""
        return [model for versions in self._models.values() for model in versions.values()]

    def _find(self, name: str, version: int | None) -> ServedModel | None:
        versions = self._models.get(name, {})
        if version is None:
            return versions[max(versions)] if versions else None
        return versions.get(version)

    def _version_dirs(self) -> list[tuple[str, int, Path]]:
        return sorted((model_dir.name, int(version_dir.name), version_dir)
                      for model_dir in self.root.iterdir()
                      if model_dir.is_dir() and not model_dir.name.startswith(".")
                      for version_dir in model_dir.iterdir()
                      if version_dir.name.isdigit() and (version_dir / SAVED_MODEL_FILE).is_file())
