"""Why a job waits: the API's read-only view of the model server's pods and their events in its namespace.

While no TF-Serving pod is ready, a job that has not finished shows why (a person would otherwise think it
hung): its pod is not there yet (KEDA scales it from zero), is waiting for a GPU node the cluster autoscaler
is starting, cannot be scheduled (the scheduler's reason), is pulling its image or loading the model. The
API needs `list` on pods and events of its namespace only (the Role in components/k8s/frontend.py)."""

import asyncio
import logging
import time
from pathlib import Path

import anyio.to_thread
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from frontend.core.config import FrontendSettings

logger = logging.getLogger(__name__)

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MODEL_SERVER = "app.kubernetes.io/name=tf-serving"
GPU_NODE = "waiting for a GPU node to start"
NO_POD = "waiting for the model server to start (scaling up from zero)"
PULLING = "waiting for the model server's image to download"
LOADING = "waiting for the model server to load the model"
SCALE_UP, NO_SCALE_UP = "TriggeredScaleUp", "NotTriggerScaleUp"
# A job in these states may be waiting for the model server (a consumer retries Predict until one answers).
WAITING_STATUSES = frozenset({"new", "started", "preprocessing", "predicting"})


def _ready(pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _latest(events, pod_name: str, reasons: set[str]):
    mine = [e for e in events if e.involved_object.name == pod_name and e.reason in reasons]
    return max(mine, key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp, default=None)


def waiting_reason(pods: list, events: list) -> str | None:
    """Why work waits for the model server (None when a model server pod is ready), from its pods and events."""
    if any(_ready(p) for p in pods):
        return None
    live = [p for p in pods if p.metadata.deletion_timestamp is None and p.status.phase in ("Pending", "Running")]
    if not live:
        return NO_POD
    pod = min(live, key=lambda p: p.metadata.creation_timestamp)
    scheduled = next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)
    if scheduled is None or scheduled.status != "True":
        autoscaler = _latest(events, pod.metadata.name, {SCALE_UP, NO_SCALE_UP})
        if autoscaler is not None and autoscaler.reason == SCALE_UP:
            return GPU_NODE
        why = scheduled.message if scheduled is not None and scheduled.message else "the model server is not scheduled yet"
        more = f"; {autoscaler.message}" if autoscaler is not None else ""
        return f"waiting: {why}{more}"
    pulled = _latest(events, pod.metadata.name, {"Pulling", "Pulled"})
    if pulled is not None and pulled.reason == "Pulling":
        return PULLING
    return LOADING


class ModelServerView:
    """The reason of `waiting_reason`, read at most every `cache_seconds` however many jobs are viewed."""

    def __init__(self, api: client.ApiClient, namespace: str, cache_seconds: float = 5.0) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.cache_seconds = cache_seconds
        self._reason: str | None = None
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: FrontendSettings) -> "ModelServerView | None":
        """`in-cluster`: the pod's service account and namespace; a path: that kubeconfig; empty: None."""
        where = settings.kube_view
        if not where:
            return None
        if where == "in-cluster":
            config.load_incluster_config()
            return cls(client.ApiClient(), (SERVICE_ACCOUNT / "namespace").read_text().strip())
        _, context = config.list_kube_config_contexts(config_file=where)
        api = config.new_client_from_config(config_file=where, persist_config=False)
        return cls(api, context["context"].get("namespace", "default"))

    async def reason(self) -> str | None:
        """Why a job would wait now; None when a model server is ready or the cluster cannot be read."""
        async with self._lock:
            if time.monotonic() - self._read_at >= self.cache_seconds:
                try:
                    self._reason = await anyio.to_thread.run_sync(self._read)
                except (ApiException, HTTPError, OSError) as error:  # never fail a job view over it
                    logger.warning("cannot read the model server's pods: %s", error)
                    self._reason = None
                self._read_at = time.monotonic()
            return self._reason

    def _read(self) -> str | None:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=MODEL_SERVER).items
        if any(_ready(p) for p in pods):
            return None
        events = self.core.list_namespaced_event(self.namespace, field_selector="involvedObject.kind=Pod").items
        return waiting_reason(pods, events)
