"""`kiosk ops status`: nodes by pool, the kiosk's pods and workloads, ScaledObjects, queues, Warning events."""

from collections import defaultdict
from datetime import datetime, timedelta

from frontend.ops.cluster import API_ERRORS, PART_OF, POOL_LABEL, Cluster, condition, describe, now

# Container states that do not heal by waiting.
BROKEN_WAITING = {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
                  "CreateContainerError", "InvalidImageName", "RunContainerError"}
# The cluster autoscaler's events on a pod it was asked to make room for.
SCALE_UP, NO_SCALE_UP = "TriggeredScaleUp", "NotTriggerScaleUp"
POOL_ORDER = {"system": 0, "cpu": 1, "gpu": 2}


def event_time(event) -> datetime | None:
    return event.last_timestamp or event.event_time or event.first_timestamp or event.metadata.creation_timestamp


def component_of(labels: dict[str, str] | None) -> str:
    """A kiosk pod's component: its instance label (consumers-<jobType>) or its name label."""
    labels = labels or {}
    return labels.get("app.kubernetes.io/instance") or labels.get("app.kubernetes.io/name") or "?"


def node_view(node, at: datetime) -> dict:
    labels = node.metadata.labels or {}
    ready = condition(node.status.conditions, "Ready")
    return {
        "name": node.metadata.name,
        "pool": labels.get(POOL_LABEL, "other"),
        "ready": ready is not None and ready.status == "True",
        "age_seconds": round((at - node.metadata.creation_timestamp).total_seconds()),
        "instance_type": labels.get("node.kubernetes.io/instance-type"),
        "zone": labels.get("topology.kubernetes.io/zone"),
    }


def pod_view(pod, events: list) -> dict:
    """State of one pod; for a Pending one the scheduler's reason and the autoscaler's answer."""
    statuses = pod.status.container_statuses or []
    waiting = [s.state.waiting.reason for s in statuses if s.state and s.state.waiting and s.state.waiting.reason]
    ready = condition(pod.status.conditions, "Ready")
    view = {
        "name": pod.metadata.name,
        "component": component_of(pod.metadata.labels),
        "phase": pod.status.phase,
        "ready": ready is not None and ready.status == "True",
        "restarts": sum(s.restart_count for s in statuses),
        "node": pod.spec.node_name,
        "waiting": waiting[0] if waiting else None,
    }
    if pod.status.phase == "Pending":
        scheduled = condition(pod.status.conditions, "PodScheduled")
        if scheduled is not None and scheduled.status == "False":
            view["unschedulable"] = scheduled.message or scheduled.reason
        mine = sorted((e for e in events if e.involved_object.kind == "Pod" and e.involved_object.name == pod.metadata.name
                       and e.reason in (SCALE_UP, NO_SCALE_UP)), key=lambda e: event_time(e) or now())
        if mine:
            view["autoscaler"] = {"adding_node": mine[-1].reason == SCALE_UP, "message": mine[-1].message}
    return view


def pod_problem(view: dict) -> str | None:
    if view["phase"] == "Failed":
        return f"pod {view['name']} failed"
    if view["waiting"] in BROKEN_WAITING:
        return f"pod {view['name']}: {view['waiting']}"
    if "unschedulable" in view and not view.get("autoscaler", {}).get("adding_node"):
        why = view.get("autoscaler", {}).get("message") or "no node is being added"
        return f"pod {view['name']} cannot be scheduled ({view['unschedulable']}) and {why}"
    return None


def scaled_object_view(cluster: Cluster, scaled: dict, replicas: dict[str, int]) -> tuple[dict, list[str]]:
    """A ScaledObject's state and the length of each stream it scales on (from KEDA's metrics server)."""
    spec, status, name = scaled["spec"], scaled.get("status", {}), scaled["metadata"]["name"]
    conditions = status.get("conditions", [])
    state = {kind: (condition(conditions, kind) or {}).get("status", "Unknown") for kind in ("Ready", "Active", "Fallback")}
    target = spec["scaleTargetRef"]["name"]
    view = {"name": name, "target": target, "ready": state["Ready"] == "True", "active": state["Active"] == "True",
            "fallback": state["Fallback"] == "True", "replicas": replicas.get(target),
            "min": spec.get("minReplicaCount", 0), "max": spec.get("maxReplicaCount", 100), "queues": {}}
    problems = []
    if not view["ready"]:
        ready = condition(conditions, "Ready") or {}
        problems.append(f"ScaledObject {name} is not ready: {ready.get('message') or ready.get('reason') or 'no status'}")
    if view["fallback"]:
        problems.append(f"ScaledObject {name} is in fallback: KEDA cannot read its triggers")
    for index, metric in enumerate(status.get("externalMetricNames", [])):
        stream = spec["triggers"][index]["metadata"].get("stream", metric) if index < len(spec["triggers"]) else metric
        try:
            view["queues"][stream] = cluster.external_metric(metric, name)
        except API_ERRORS as error:
            view["queues"][stream] = None
            problems.append(f"queue {stream} of {name}: KEDA's metrics server answered {describe(error)}")
    return view, problems


def workload_views(cluster: Cluster, scaled_targets: set[str]) -> tuple[list[dict], list[str]]:
    """Deployments and StatefulSets; one that KEDA does not scale must have a ready pod."""
    views, problems = [], []
    found = [("Deployment", d) for d in cluster.apps.list_namespaced_deployment(cluster.namespace).items]
    found += [("StatefulSet", s) for s in cluster.apps.list_namespaced_stateful_set(cluster.namespace).items]
    for kind, workload in found:
        wanted, ready = workload.spec.replicas or 0, workload.status.ready_replicas or 0
        name = workload.metadata.name
        views.append({"kind": kind, "name": name, "replicas": wanted, "ready": ready,
                      "autoscaled": name in scaled_targets})
        if name not in scaled_targets and wanted > 0 and ready == 0:
            problems.append(f"{kind} {name} has no ready pod (0/{wanted})")
    return views, problems


def collect(cluster: Cluster, events_since: timedelta = timedelta(hours=1)) -> dict:
    """The status report; `problems` lists what makes the kiosk unhealthy."""
    at = now()
    problems: list[str] = []
    nodes = [node_view(n, at) for n in cluster.core.list_node().items]
    pools: dict[str, list[dict]] = defaultdict(list)
    for node in sorted(nodes, key=lambda n: (POOL_ORDER.get(n["pool"], len(POOL_ORDER)), n["name"])):
        pools[node["pool"]].append(node)
        if not node["ready"]:
            problems.append(f"node {node['name']} ({node['pool']} pool) is not ready")
    if not any(n["ready"] for n in pools.get("system", [])):
        problems.append("no ready node in the system pool")
    events = cluster.core.list_namespaced_event(cluster.namespace).items
    pods = [pod_view(p, events) for p in cluster.core.list_namespaced_pod(cluster.namespace, label_selector=PART_OF).items]
    problems += [problem for problem in map(pod_problem, pods) if problem]
    scaled_objects = cluster.scaled_objects()
    targets = {s["spec"]["scaleTargetRef"]["name"] for s in scaled_objects}
    workloads, trouble = workload_views(cluster, targets)
    problems += trouble
    replicas = {w["name"]: w["replicas"] for w in workloads}
    scaled_views = []
    for scaled in scaled_objects:
        view, trouble = scaled_object_view(cluster, scaled, replicas)
        scaled_views.append(view)
        problems += trouble
    warnings = [{"time": event_time(e).isoformat(), "object": f"{e.involved_object.kind}/{e.involved_object.name}",
                 "reason": e.reason, "message": e.message, "count": e.count or 1}
                for e in sorted(events, key=lambda e: event_time(e) or at)
                if e.type == "Warning" and (event_time(e) or at) >= at - events_since]
    return {"time": at.isoformat(), "namespace": cluster.namespace, "healthy": not problems, "problems": problems,
            "nodes": dict(pools), "workloads": workloads, "pods": sorted(pods, key=lambda p: p["name"]),
            "scaled_objects": scaled_views, "warnings": warnings}


def _age(seconds: int) -> str:
    return f"{seconds // 86400}d" if seconds >= 86400 else f"{seconds // 3600}h" if seconds >= 3600 else f"{seconds // 60}m"


def summary(report: dict) -> str:
    """The report as a few aligned lines for a person."""
    lines = [f"namespace {report['namespace']}: {'healthy' if report['healthy'] else 'UNHEALTHY'}", "", "nodes:"]
    for pool, nodes in report["nodes"].items():
        for n in nodes:
            lines.append(f"  {pool:<7}{n['name']:<34}{'Ready' if n['ready'] else 'NotReady':<10}"
                         f"{_age(n['age_seconds']):<6}{n['instance_type'] or '-':<16}{n['zone'] or '-'}")
    lines.append("pods:")
    for p in report["pods"]:
        state = p["waiting"] or p["phase"] + ("" if p["ready"] or p["phase"] != "Running" else " (not ready)")
        lines.append(f"  {p['component']:<24}{p['name']:<40}{state:<22}restarts {p['restarts']}")
        if "unschedulable" in p:
            lines.append(f"    unschedulable: {p['unschedulable']}")
        if "autoscaler" in p:
            verb = "adding a node" if p["autoscaler"]["adding_node"] else "not adding a node"
            lines.append(f"    cluster autoscaler {verb}: {p['autoscaler']['message']}")
    lines.append("scaled objects:")
    for s in report["scaled_objects"]:
        queues = ", ".join(f"{q} {'?' if n is None else f'{n:g}'}" for q, n in s["queues"].items()) or "-"
        lines.append(f"  {s['name']:<24}{'active' if s['active'] else 'idle':<8}replicas {s['replicas']} "
                     f"(min {s['min']}, max {s['max']})  queue {queues}")
    lines.append(f"warning events ({len(report['warnings'])}):")
    lines += [f"  {w['time']}  {w['object']}  {w['reason']}: {w['message']}" for w in report["warnings"][-10:]]
    if report["problems"]:
        lines += ["problems:"] + [f"  - {p}" for p in report["problems"]]
    return "\n".join(lines)
