"""Benchmark figures and the per-job JSON report (the DeepCell kiosk-client's layout)."""

import math
from datetime import datetime

from frontend.client.runner import JobRun


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (`share` in 0-100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share / 100 * len(ordered)) - 1)]


def _number(value: str | None) -> float | list[float] | str | None:
    """'1.5' → 1.5; '1,2' (a zip job's per-child list) → [1.0, 2.0]; anything else unchanged."""
    if value is None:
        return None
    try:
        parts = [float(part) for part in value.split(",")]
    except ValueError:
        return value
    return parts[0] if len(parts) == 1 else parts


def server_latency(run: JobRun) -> float | None:
    """Seconds from creation to the final status, by the kiosk's own clock."""
    try:
        created = datetime.fromisoformat(run.fields["created_at"])  # type: ignore[arg-type]
        finished = datetime.fromisoformat(run.fields["finished_at"])  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):
        return None
    return (finished - created).total_seconds()


def images(run: JobRun) -> int:
    """Images a finished job processed: its children for a zip job, else one."""
    total = run.fields.get("total_jobs")
    return int(total) if total and total.isdigit() else 1


def job_data(run: JobRun, model: str, preprocess: str = "", postprocess: str = "") -> dict:
    """One job as kiosk-client's benchmark mode records it (its `Job.json()` keys, plus
    `latency` and `client_latency`). `preprocess` and `postprocess` are the function names
    the jobs asked for, '' when none (kiosk-client's defaults)."""
    data = {"input_file": str(run.source), "job_id": run.key, "status": run.status,
            "download_url": run.fields.get("output_url"), "created_at": run.fields.get("created_at"),
            "finished_at": run.fields.get("finished_at"), "model": model,
            "preprocess": preprocess, "postprocess": postprocess,
            "reason": run.error or run.fields.get("reason"), "latency": server_latency(run),
            "client_latency": run.latency_seconds}
    for name in ("total_time", "total_jobs", "prediction_time", "postprocess_time", "upload_time",
                 "download_time", "predict_retries", "cleanup_time", "children_upload_time"):
        data[name] = _number(run.fields.get(name))
    return data


def summarize(runs: list[JobRun], elapsed: float, concurrency: int, model: str,
              preprocess: str = "", postprocess: str = "") -> dict:
    """Throughput, latency percentiles, failures and per-job data of a benchmark."""
    done = [run for run in runs if run.succeeded]
    latencies = [lat for run in done if (lat := server_latency(run) or run.latency_seconds) is not None]
    return {
        "num_jobs": len(runs), "concurrency": concurrency, "time_elapsed": elapsed,
        "images_per_second": sum(images(run) for run in done) / elapsed if elapsed > 0 else None,
        "latency_seconds": {f"p{q}": percentile(latencies, q) for q in (50, 95, 99)},
        "failures": len(runs) - len(done),
        "job_data": [job_data(run, model, preprocess, postprocess) for run in runs],
    }
