"""Access to the kiosk's cluster with the official `kubernetes` client, from a kubeconfig file."""

import os
from dataclasses import dataclass
from datetime import datetime, timezone

from kubernetes import client, config
from kubernetes.utils import parse_quantity
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

POOL_LABEL = "kiosk.dev/pool"  # system, cpu or gpu (components/gcp/gke.py, components/aws/eks.py)
PART_OF = "app.kubernetes.io/part-of=kiosk"
KEDA_GROUP, KEDA_VERSION = "keda.sh", "v1alpha1"
# The errors a call to an unreachable or refusing API server raises.
API_ERRORS = (ApiException, HTTPError, OSError)


class ClusterError(Exception):
    """The cluster cannot be reached or refused a request."""


@dataclass
class Cluster:
    """The API groups `kiosk ops` reads, bound to one namespace."""

    api: client.ApiClient
    namespace: str

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def scaled_objects(self) -> list[dict]:
        """The namespace's KEDA ScaledObjects, as plain dicts."""
        listed = self.custom.list_namespaced_custom_object(KEDA_GROUP, KEDA_VERSION, self.namespace, "scaledobjects")
        return listed["items"]

    def external_metric(self, metric: str, scaled_object: str) -> float:
        """The value KEDA's metrics server reports for one of a ScaledObject's triggers (e.g. a stream's XLEN)."""
        listed = self.custom.list_namespaced_custom_object(
            "external.metrics.k8s.io", "v1beta1", self.namespace, metric,
            label_selector=f"scaledobject.keda.sh/name={scaled_object}")
        return float(sum(parse_quantity(item["value"]) for item in listed["items"]))


def connect(kubeconfig: str | None = None, context: str | None = None, namespace: str = "kiosk") -> Cluster:
    """A client from `kubeconfig` (default: $KUBECONFIG, then ~/.kube/config)."""
    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
    if not os.path.isfile(path):
        raise ClusterError(f"no kubeconfig at {path}: pass --kubeconfig or set KUBECONFIG "
                           "(e.g. `pulumi stack output kubeconfig --show-secrets > kubeconfig`)")
    try:
        api = config.new_client_from_config(config_file=path, context=context, persist_config=False)
    except (config.ConfigException, ValueError, KeyError) as invalid:
        raise ClusterError(f"unusable kubeconfig {path}: {invalid}") from invalid
    return Cluster(api, namespace)


def describe(error: Exception) -> str:
    """One line for an API error: the server's message when it sent one."""
    if isinstance(error, ApiException):
        return f"{error.status} {error.reason}".strip()
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def now() -> datetime:
    return datetime.now(timezone.utc)


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


def condition(conditions, kind: str):
    """The condition of type `kind` in a list of conditions (objects or dicts), or None."""
    for item in conditions or []:
        if (item.get("type") if isinstance(item, dict) else item.type) == kind:
            return item
    return None
