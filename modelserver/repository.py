"""The model repository: SavedModels at `<root>/<ModelName>/<version>/`, loaded on discovery."""

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from modelserver.errors import ServingError

log = logging.getLogger(__name__)

SERVE_TAG = "serve"
SAVED_MODEL_FILE = "saved_model.pb"


@dataclass(frozen=True)
class ServedModel:
    """One loaded version of a model: its signature definitions and the session that runs them.

    Loaded as TF-Serving loads a SavedModel: the `serve` meta graph is imported into
    a graph of its own and its variables restored by the saver into a session, then a
    signature is run by the tensor names it lists. A SavedModel whose variables only
    the object graph knows (a Keras model in a `tf.Module` saved by
    `tf.saved_model.save`) loads, and fails on every run, as it does in TF-Serving.
    """

    name: str
    version: int
    path: Path
    signature_defs: Mapping[str, meta_graph_pb2.SignatureDef]
    session: tf.compat.v1.Session

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray],
            output_names: list[str]) -> dict[str, np.ndarray]:
        """Feed `inputs` (by signature alias) and fetch `output_names` of a signature of this model."""
        signature = self.signature_defs[signature_name]
        feeds = {signature.inputs[alias].name: value for alias, value in inputs.items()}
        fetches = {alias: signature.outputs[alias].name for alias in output_names}
        return self.session.run(fetches, feeds)


def load_served_model(name: str, version: int, path: Path) -> ServedModel:
    """Load the SavedModel at `path` with the session loader and its `serve` signature definitions."""
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    try:
        with graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(session, [SERVE_TAG], str(path))
    except Exception:
        session.close()
        raise
    graph.finalize()  # nothing may add ops once it serves
    return ServedModel(name, version, path, dict(meta_graph.signature_def), session)


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
