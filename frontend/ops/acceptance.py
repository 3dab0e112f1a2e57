"""`kiosk ops acceptance`: after `pulumi up`, is the kiosk deployed, working, right, how fast and at what cost?

Waits for the rollouts, times the first result (from an idle cluster: split into its phases from the
TF-Serving pod's and its node's conditions and events), runs N images for images/s, checks each result's
nucleus count against the sample's, and prices the run from the Node objects' lifetimes."""

import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kubernetes import watch

from frontend.client.api import KioskClient
from frontend.client.runner import JobOptions, JobRun, Runner
from frontend.ops.cluster import POOL_LABEL, Cluster, condition, now, seconds_between
from frontend.ops.pricing import NodeLedger, Prices, cost, projection
from frontend.ops.status import event_time

SAMPLES = Path(__file__).with_name("samples")
TF_SERVING = "app.kubernetes.io/name=tf-serving"
# A result passes when it finds the sample's nuclei to within this share (and none where there are none).
NUCLEI_TOLERANCE = 0.25
IDLE = "from an idle cluster; phases in the cluster's whole seconds"


@dataclass(frozen=True)
class Sample:
    path: Path
    nuclei: int
    pixels: int


def load_samples(folder: Path = SAMPLES) -> list[Sample]:
    """The images listed in `folder`/samples.json with their true nucleus counts and sizes."""
    manifest = json.loads((folder / "samples.json").read_text())["samples"]
    return [Sample(folder / entry["file"], entry["nuclei"], entry["pixels"]) for entry in manifest]


def nuclei_problem(sample: Sample, found: int | None) -> str | None:
    """Why a result's nucleus count is wrong for its sample, or None."""
    if found is None:
        return f"{sample.path.name}: the result has no nucleus count"
    if sample.nuclei == 0:
        return None if found == 0 else f"{sample.path.name}: {found} nuclei found in an image without any"
    if abs(found - sample.nuclei) > NUCLEI_TOLERANCE * sample.nuclei:
        return f"{sample.path.name}: {found} nuclei found, the sample has {sample.nuclei}"
    return None


def _rolled_out(deployment) -> bool:
    wanted, status = deployment.spec.replicas or 0, deployment.status
    return ((status.observed_generation or 0) >= (deployment.metadata.generation or 0)
            and (status.updated_replicas or 0) == wanted and (status.available_replicas or 0) == wanted
            and (status.replicas or 0) == wanted)


def wait_for_rollouts(cluster: Cluster, timeout: float) -> dict[str, bool]:
    """Watch the namespace's Deployments until each has rolled out; their state when done or at `timeout`."""
    listed = cluster.apps.list_namespaced_deployment(cluster.namespace)
    state = {d.metadata.name: _rolled_out(d) for d in listed.items}
    deadline = time.monotonic() + timeout
    version = listed.metadata.resource_version
    while not all(state.values()) and (remaining := deadline - time.monotonic()) > 0:
        stream = watch.Watch().stream(cluster.apps.list_namespaced_deployment, cluster.namespace,
                                      resource_version=version, timeout_seconds=max(1, int(remaining)))
        for event in stream:
            deployment = event["object"]
            version = deployment.metadata.resource_version
            if event["type"] == "DELETED":
                state.pop(deployment.metadata.name, None)
            else:
                state[deployment.metadata.name] = _rolled_out(deployment)
            if all(state.values()):
                break
    return state


def is_idle(cluster: Cluster) -> bool:
    """No GPU node and no TF-Serving pod: the first job has to wait for both."""
    gpu_nodes = cluster.core.list_node(label_selector=f"{POOL_LABEL}=gpu").items
    serving = cluster.core.list_namespaced_pod(cluster.namespace, label_selector=TF_SERVING).items
    return not gpu_nodes and not serving


def cold_start(cluster: Cluster, submitted: datetime, first_result: datetime) -> dict:
    """The first result's wait split into phases, read from the first TF-Serving pod created after `submitted`,
    its node and their events. The cluster's timestamps have whole seconds, so `submitted` is taken down to one."""
    submitted = submitted.replace(microsecond=0)
    pods = [p for p in cluster.core.list_namespaced_pod(cluster.namespace, label_selector=TF_SERVING).items
            if p.metadata.creation_timestamp >= submitted]
    if not pods:
        return {"problem": "no TF-Serving pod was created for the first job"}
    pod = min(pods, key=lambda p: p.metadata.creation_timestamp)
    node = cluster.core.read_node(pod.spec.node_name) if pod.spec.node_name else None
    events = cluster.core.list_namespaced_event(
        cluster.namespace, field_selector=f"involvedObject.kind=Pod,involvedObject.name={pod.metadata.name}").items
    pulled = [event_time(e) for e in events if e.reason == "Pulled" and "tf-serving" in (e.involved_object.field_path or "")]
    node_ready = condition(node.status.conditions, "Ready") if node else None
    pod_ready = condition(pod.status.conditions, "Ready")
    times = {
        "submitted": submitted,
        "pod_created": pod.metadata.creation_timestamp,
        "node_created": node.metadata.creation_timestamp if node else None,
        "node_ready": node_ready.last_transition_time if node_ready and node_ready.status == "True" else None,
        "image_pulled": min(pulled) if pulled else None,
        "model_loaded": pod_ready.last_transition_time if pod_ready and pod_ready.status == "True" else None,
        "first_result": first_result,
    }
    new_node = times["node_created"] is not None and times["node_created"] >= submitted
    # Each phase ends at its event and starts where the one before ended (a node already there costs 0 s).
    ready_from = times["node_ready"] if new_node else times["pod_created"]
    phases = {
        "scale_up_requested": seconds_between(submitted, times["pod_created"]),
        "gpu_node_provisioned": seconds_between(times["pod_created"], ready_from),
        "image_pulled": seconds_between(ready_from, times["image_pulled"]),
        "model_loaded": seconds_between(times["image_pulled"], times["model_loaded"]),
        "first_predict": seconds_between(times["model_loaded"], first_result),
    }
    report = {"pod": pod.metadata.name, "node": pod.spec.node_name, "new_node": new_node,
              "times": {k: v.isoformat() if v else None for k, v in times.items()},
              "phases_seconds": {k: None if v is None else round(v, 1) for k, v in phases.items()}}
    missing = [k for k, v in phases.items() if v is None or v < 0]
    if missing:
        report["problem"] = f"cold start phases unknown or out of order: {', '.join(missing)}"
    return report


async def _nuclei(client: KioskClient, run: JobRun) -> int | None:
    value = (await client.fields(run.key, ["nuclei"]))["nuclei"] if run.key else None
    return int(value) if value not in (None, "") else None


async def run(cluster: Cluster, url: str, token: str | None, *, images: int, concurrency: int, prices: Prices,
              samples: list[Sample], rollout_timeout: float, poll_seconds: float = 1.0) -> dict:
    """The acceptance report; `problems` lists every way the kiosk misbehaved."""
    problems: list[str] = []
    started = now()
    rollouts = wait_for_rollouts(cluster, rollout_timeout)
    problems += [f"Deployment {name} has not rolled out after {rollout_timeout:g} s"
                 for name, done in rollouts.items() if not done]
    idle = is_idle(cluster)
    ledger = NodeLedger(cluster).start()
    options = JobOptions(poll_seconds=poll_seconds)
    checked: list[tuple[Sample, JobRun, int | None]] = []
    async with KioskClient(url, token, connections=max(4, 2 * concurrency)) as client:
        await client.connect()
        submitted = now()
        first = (await Runner(client, options, 1).run([samples[0].path]))[0]
        first_result = now()
        checked.append((samples[0], first, await _nuclei(client, first) if first.succeeded else None))
        chosen = [samples[i % len(samples)] for i in range(images)]
        run_start, clock = now(), time.monotonic()
        runs = await Runner(client, options, concurrency).run([s.path for s in chosen])
        elapsed = time.monotonic() - clock
        run_end = now()
        for sample, job in zip(chosen, runs):
            checked.append((sample, job, await _nuclei(client, job) if job.succeeded else None))
    lives = ledger.stop()
    results = []
    for sample, job, found in checked:
        problem = (None if job.succeeded else f"{sample.path.name}: job {job.key} {job.status}: {job.problem}") \
            or nuclei_problem(sample, found)
        results.append({"sample": sample.path.name, "job": job.key, "status": job.status, "nuclei": found,
                        "expected_nuclei": sample.nuclei, "problem": problem})
        if problem:
            problems.append(problem)
    first_report = {"seconds": round((first_result - submitted).total_seconds(), 2), "idle_at_start": idle,
                    "cold_start": cold_start(cluster, submitted, first_result) if idle else None}
    if idle and "problem" in first_report["cold_start"]:
        problems.append(first_report["cold_start"]["problem"])
    done = sum(job.succeeded for job in runs)
    megapixels = sum(s.pixels for s, job in zip(chosen, runs) if job.succeeded) / 1e6
    steady = cost(lives, run_start, run_end, prices)
    return {
        "started": started.isoformat(), "finished": now().isoformat(), "url": url, "namespace": cluster.namespace,
        "passed": not problems, "problems": problems, "rollouts": rollouts, "first_result": first_report,
        "throughput": {"images": images, "done": done, "concurrency": concurrency, "seconds": round(elapsed, 3),
                       "images_per_second": round(done / elapsed, 3) if elapsed else None,
                       "megapixels": megapixels},
        "results": results,
        "cost": {"whole_run": cost(lives, submitted, run_end, prices), "throughput_run": steady},
        "projection": projection(elapsed, megapixels, steady["total_usd"]),
    }


def summary(report: dict) -> str:
    """The report in a few lines for a person."""
    first, speed, whole = report["first_result"], report["throughput"], report["cost"]["whole_run"]
    lines = [f"acceptance of {report['url']} (namespace {report['namespace']}): "
             f"{'PASSED' if report['passed'] else 'FAILED'}",
             f"rollouts: {sum(report['rollouts'].values())}/{len(report['rollouts'])} Deployments rolled out",
             f"first result: {first['seconds']:.1f} s ({IDLE if first['idle_at_start'] else 'warm'})"]
    if first["cold_start"] and "phases_seconds" in first["cold_start"]:
        lines += [f"  {phase.replace('_', ' '):<22}{'?' if s is None else f'{s:.0f} s'}"
                  for phase, s in first["cold_start"]["phases_seconds"].items()]
    lines.append(f"throughput: {speed['done']}/{speed['images']} images in {speed['seconds']:.1f} s at concurrency "
                 f"{speed['concurrency']}: {speed['images_per_second'] or 0:.2f} images/s")
    right = sum(r["problem"] is None for r in report["results"])
    lines.append(f"results: {right}/{len(report['results'])} right (nucleus counts within "
                 f"{NUCLEI_TOLERANCE:.0%} of the samples')")
    pools = ", ".join(f"{pool} {p['node_seconds']:.0f} node-s ${p['usd']:.4f}" for pool, p in whole["pools"].items())
    lines.append(f"cost of the run: ${whole['total_usd']:.4f} ({pools}; control plane ${whole['control_plane_usd']:.4f}; "
                 f"prices of {whole['prices']['date']})")
    projected = report["projection"]
    if projected["hours"] is not None:
        paper = projected["paper"]
        lines.append(f"10^6 one-megapixel images at this rate and size: {projected['hours']:.1f} h, "
                     f"${projected['usd']:.0f} (DeepCell Kiosk paper: ~{paper['hours']} h, ~${paper['usd']:.0f})")
    lines += [f"problem: {p}" for p in report["problems"]]
    return "\n".join(lines)
