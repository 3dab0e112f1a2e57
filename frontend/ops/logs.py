"""`kiosk ops logs COMPONENT`: the logs of all pods of a component, interleaved by time (like `stern`)."""

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from frontend.ops.cluster import PART_OF, Cluster
from frontend.ops.status import component_of


@dataclass(frozen=True, order=True)
class LogLine:
    time: datetime
    pod: str
    container: str
    text: str


def parse_since(text: str) -> int:
    """'90s', '10m', '2h' → seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f"durations look like 90s, 10m, 2h or 1d, not {text!r}")
    return int(text[:-1]) * units[text[-1]]


def _parse(pod: str, container: str, raw: str) -> Iterator[LogLine]:
    """Lines of `timestamps=true` logs: RFC 3339 with nanoseconds, a space, the text."""
    for line in raw.splitlines():
        stamp, _, text = line.partition(" ")
        seconds, _, fraction = stamp.rstrip("Z").partition(".")
        try:
            time = datetime.fromisoformat(f"{seconds}.{(fraction + '000000')[:6]}+00:00")
        except ValueError:
            continue
        yield LogLine(time, pod, container, text)


def components(cluster: Cluster) -> set[str]:
    pods = cluster.core.list_namespaced_pod(cluster.namespace, label_selector=PART_OF).items
    return {component_of(p.metadata.labels) for p in pods} | {p.metadata.labels.get("app.kubernetes.io/name")
                                                               for p in pods if p.metadata.labels}


def interleaved(cluster: Cluster, component: str, since_seconds: int) -> list[LogLine]:
    """Every container's lines of the component's pods in the last `since_seconds`, oldest first.

    `component` is a name label (frontend, consumers, tf-serving, redis) or an instance (consumers-segmentation).
    Raises LookupError when no pod has it."""
    pods = [p for p in cluster.core.list_namespaced_pod(cluster.namespace, label_selector=PART_OF).items
            if component in {component_of(p.metadata.labels), (p.metadata.labels or {}).get("app.kubernetes.io/name")}]
    if not pods:
        known = ", ".join(sorted(components(cluster))) or "none"
        raise LookupError(f"no pod of {component!r} in namespace {cluster.namespace} (components running: {known})")
    streams = []
    for pod in pods:
        if pod.status.phase == "Pending":  # no container has started: nothing to read yet
            continue
        for container in pod.spec.containers:
            # Unparsed: the client would turn the bytes into "b'...'" (or parse a JSON line as an object).
            response = cluster.core.read_namespaced_pod_log(
                pod.metadata.name, cluster.namespace, container=container.name, since_seconds=since_seconds,
                timestamps=True, _preload_content=False)
            streams.append(_parse(pod.metadata.name, container.name, response.data.decode(errors="replace")))
    return list(heapq.merge(*streams))


def render(line: LogLine, width: int) -> str:
    return f"{line.pod:<{width}} {line.time.isoformat(timespec='milliseconds')} {line.text}"
