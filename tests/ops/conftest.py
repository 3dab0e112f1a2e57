"""Fixtures of the `kiosk ops` tests: the Kubernetes API stand-in holding a kiosk cluster."""

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from frontend import cli
from tests.fixtures import kube_api as k
from tests.fixtures.kube_api import KubeApi


def main(argv: list[str]) -> int:
    """`kiosk ARGV` in this process, in a thread of its own: its asyncio.run must not leave the main thread
    without an event loop (Pulumi's mocks in later tests need one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(cli.main, argv).result()


def healthy_kiosk(api: KubeApi, at: datetime) -> None:
    """A dev-gcp kiosk at rest with one consumer working: no GPU node, TF-Serving scaled to zero."""
    day = at - timedelta(days=2)
    api.put(k.node("gke-kiosk-system-0", "system", "e2-standard-4", day, ready_at=day + timedelta(seconds=50)))
    api.put(k.node("gke-kiosk-cpu-0", "cpu", "e2-standard-4", at - timedelta(minutes=30),
                   ready_at=at - timedelta(minutes=29), spot=True))
    api.put(k.stateful_set("redis", 1, 1))
    api.put(k.deployment("frontend", 1))
    api.put(k.deployment("consumers-segmentation", 1))
    api.put(k.deployment("tf-serving", 0))
    api.put(k.pod("redis-0", "redis", day, node_name="gke-kiosk-system-0", scheduled_at=day, ready_at=day))
    api.put(k.pod("frontend-7d9f-x2x7q", "frontend", day, node_name="gke-kiosk-system-0", scheduled_at=day,
                  ready_at=day))
    api.put(k.pod("consumers-segmentation-5c-8k2lp", "consumers-segmentation", at - timedelta(minutes=28),
                  node_name="gke-kiosk-cpu-0", containers=["consumer"], scheduled_at=at - timedelta(minutes=28),
                  ready_at=at - timedelta(minutes=27)))
    api.put(k.scaled_object("consumers-segmentation", "consumers-segmentation", ["queue:segmentation"], 4,
                            active=True))
    api.put(k.scaled_object("tf-serving", "tf-serving", ["queue:segmentation"], 1, active=False))
    api.metrics[("kiosk", "s0-redis-streams-queue-segmentation", "consumers-segmentation")] = "3"
    api.metrics[("kiosk", "s0-redis-streams-queue-segmentation", "tf-serving")] = "3"
    frontend = api.objects["pods"][("kiosk", "frontend-7d9f-x2x7q")]
    api.put(k.event("frontend.1", frontend, "Unhealthy", "Readiness probe failed: connection refused",
                    at - timedelta(minutes=5), type_="Warning"))


@pytest.fixture
def kube():
    api = KubeApi()
    yield api
    api.stop()


@pytest.fixture
def at() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def kubeconfig(kube, tmp_path):
    return kube.kubeconfig(tmp_path / "kubeconfig")
