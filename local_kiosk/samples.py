"""Sample images for a first run, and submitting one to see a result."""

import io
import time
from pathlib import Path

import numpy as np
import tifffile

from consumers.jobs import JobRequest, JobStatus, new_job_key
from consumers.jobstore import JobStore
from consumers.queue import JobQueue
from consumers.storage import Storage
from training.synthetic import make_sample

SAMPLE_SHAPE = (512, 512)


def ensure_samples(folder: Path, count: int = 3) -> list[Path]:
    """Synthetic fluorescence-nuclei TIFFs in `folder`, made on first use."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"nuclei-{index + 1}.tif" for index in range(count)]
    for index, path in enumerate(paths):
        if not path.exists():
            image, _ = make_sample(np.random.default_rng(1000 + index), SAMPLE_SHAPE)
            buffer = io.BytesIO()
            tifffile.imwrite(buffer, np.clip(image, 0, 65535).astype(np.uint16))
            path.write_bytes(buffer.getvalue())
    return paths


def submit_file(queue: JobQueue, storage: Storage, path: Path, model: str) -> str:
    """Upload `path` and queue a segmentation job for it; returns the job key."""
    key = new_job_key(queue.job_type)
    upload = f"uploads/{key.split(':')[1]}/{path.name}"
    storage.write(upload, path.read_bytes())
    request = JobRequest(job_type=queue.job_type, input_file_name=upload,
                         original_name=path.name, model_name=model)
    queue.submit(key, {**request.to_fields(), "status": JobStatus.NEW.value})
    return key


def wait_for(store: JobStore, key: str, timeout: float) -> dict[str, str]:
    """The job's fields once it is final, or its last fields after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    job = store.get(key)
    while time.monotonic() < deadline and not JobStatus(job.get("status", "new")).final:
        time.sleep(0.2)
        job = store.get(key)
    return job
