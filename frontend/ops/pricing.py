"""What a run cost: node-seconds of each pool (from the Node objects' lifetimes) times a price per instance type."""

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from kubernetes import watch
from kubernetes.client.rest import ApiException

from frontend.ops.cluster import API_ERRORS, POOL_LABEL, Cluster, now

DEFAULT_PRICES = Path(__file__).with_name("prices.json")
# The DeepCell Kiosk paper (Bannon et al., Nature Methods 2021): 10^6 one-megapixel images in about 5.5 h for about $250.
PAPER = {"images": 1_000_000, "hours": 5.5, "usd": 250.0}
SPOT_LABELS = {"cloud.google.com/gke-spot": "true", "eks.amazonaws.com/capacityType": "SPOT",
               "karpenter.sh/capacity-type": "spot"}


@dataclass(frozen=True)
class Prices:
    """Hourly prices per instance type (on demand, and Spot where known), with their date and source."""

    date: str
    source: str
    currency: str
    cluster_per_hour: dict[str, float]
    instance_types: dict[str, dict[str, float]]

    @classmethod
    def load(cls, path: Path | None = None) -> "Prices":
        """From `path`, else $KIOSK_PRICES, else the file shipped beside this module."""
        path = path or Path(os.environ.get("KIOSK_PRICES") or DEFAULT_PRICES)
        try:
            data = json.loads(path.read_text())
            prices = cls(**{key: data[key] for key in cls.__dataclass_fields__})
            bad = [name for name, entry in prices.instance_types.items()
                   if not isinstance(entry.get("on_demand"), (int, float))]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"unusable price file {path}: {error!r}; it needs {', '.join(cls.__dataclass_fields__)} "
                             "and an on_demand price for each instance type") from error
        if bad:
            raise ValueError(f"price file {path}: no on_demand price for {', '.join(bad)}")
        return prices

    def hourly(self, instance_type: str | None, spot: bool) -> tuple[float | None, str]:
        """The price of one node-hour and which price it is."""
        entry = self.instance_types.get(instance_type or "")
        if entry is None:
            return None, "unknown instance type"
        if spot and "spot" in entry:
            return entry["spot"], "spot"
        return entry["on_demand"], "on demand (Spot price unknown: an upper bound)" if spot else "on demand"


@dataclass
class NodeLife:
    """One node's stay in the cluster."""

    name: str
    pool: str
    instance_type: str | None
    spot: bool
    cloud: str | None
    created: datetime
    deleted: datetime | None = None

    @classmethod
    def of(cls, node) -> "NodeLife":
        labels = node.metadata.labels or {}
        provider = (node.spec.provider_id or "").split(":", 1)[0]
        return cls(node.metadata.name, labels.get(POOL_LABEL, "other"), labels.get("node.kubernetes.io/instance-type"),
                   any(labels.get(k) == v for k, v in SPOT_LABELS.items()),
                   {"gce": "gke", "aws": "eks"}.get(provider), node.metadata.creation_timestamp)

    def seconds(self, start: datetime, end: datetime) -> float:
        """Seconds of [start, end] this node existed."""
        begin, finish = max(start, self.created), min(end, self.deleted or end)
        return max(0.0, (finish - begin).total_seconds())


@dataclass
class NodeLedger:
    """Every node seen since `start()`, kept current by a watch on Nodes (nodes come and go during a run)."""

    cluster: Cluster
    nodes: dict[str, NodeLife] = field(default_factory=dict)
    _stopped: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> "NodeLedger":
        version = self._list()
        threading.Thread(target=self._watch, args=(version,), daemon=True, name="node-ledger").start()
        return self

    def _list(self) -> str:
        listed = self.cluster.core.list_node()
        seen = {node.metadata.name for node in listed.items}
        with self._lock:
            for node in listed.items:
                self.nodes.setdefault(node.metadata.name, NodeLife.of(node))
            for life in self.nodes.values():  # gone while nobody watched
                if life.name not in seen and life.deleted is None:
                    life.deleted = now()
        return listed.metadata.resource_version

    def _watch(self, version: str) -> None:
        while not self._stopped.is_set():
            try:
                for event in watch.Watch().stream(self.cluster.core.list_node, resource_version=version,
                                                  timeout_seconds=30):
                    node = event["object"]
                    version = node.metadata.resource_version
                    with self._lock:
                        life = self.nodes.setdefault(node.metadata.name, NodeLife.of(node))
                        if event["type"] == "DELETED":
                            life.deleted = node.metadata.deletion_timestamp or now()
                    if self._stopped.is_set():
                        return
            except ApiException as error:
                if error.status != 410:  # 410 Gone: the version expired; list again
                    raise
                version = self._list()
            except API_ERRORS:
                if self._stopped.is_set():
                    return
                version = self._list()

    def stop(self) -> list[NodeLife]:
        """Stop watching; the nodes seen, those gone since the last event marked deleted now."""
        self._stopped.set()
        self._list()
        with self._lock:
            return list(self.nodes.values())


def cost(lives: list[NodeLife], start: datetime, end: datetime, prices: Prices) -> dict:
    """Node-seconds and dollars of each pool during [start, end], plus the control plane."""
    pools: dict[str, dict] = {}
    unpriced: set[str] = set()
    for life in lives:
        seconds = life.seconds(start, end)
        if not seconds:
            continue
        hourly, basis = prices.hourly(life.instance_type, life.spot)
        pool = pools.setdefault(life.pool, {"node_seconds": 0.0, "usd": 0.0, "nodes": []})
        pool["node_seconds"] += seconds
        pool["usd"] += (hourly or 0.0) * seconds / 3600
        pool["nodes"].append({"name": life.name, "instance_type": life.instance_type, "spot": life.spot,
                              "seconds": round(seconds, 1), "usd_per_hour": hourly, "price": basis})
        if hourly is None:
            unpriced.add(life.instance_type or f"{life.name} (no instance-type label)")
    clouds = {life.cloud for life in lives if life.cloud}
    cluster_hourly = sum(prices.cluster_per_hour.get(c, 0.0) for c in clouds)
    seconds = (end - start).total_seconds()
    cluster_usd = cluster_hourly * seconds / 3600
    for pool in pools.values():
        pool["node_seconds"], pool["usd"] = round(pool["node_seconds"], 1), round(pool["usd"], 6)
    return {"seconds": round(seconds, 3), "pools": pools, "control_plane_usd": round(cluster_usd, 6),
            "total_usd": round(cluster_usd + sum(p["usd"] for p in pools.values()), 6),
            "unpriced_instance_types": sorted(unpriced),
            "prices": {"date": prices.date, "source": prices.source, "currency": prices.currency}}


def projection(seconds: float, megapixels: float, usd: float) -> dict:
    """Time and cost of 10^6 one-megapixel images at the rate and spend of a measured run, beside the paper's."""
    if seconds <= 0 or megapixels <= 0:
        return {"images": PAPER["images"], "hours": None, "usd": None, "paper": PAPER}
    hours = PAPER["images"] / megapixels * seconds / 3600
    return {"images": PAPER["images"], "megapixels_per_second": round(megapixels / seconds, 4),
            "hours": round(hours, 2), "usd": round(usd / seconds * hours * 3600, 2), "paper": PAPER}
