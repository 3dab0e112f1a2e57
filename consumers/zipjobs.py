"""Zip jobs: fan out into one child job per image, then aggregate one archive.

Both halves are idempotent, so a zip job delivered twice is harmless: child
keys derive from the parent's, creating an existing child does nothing, and
the aggregated archive is written to the same key with the same content.
"""

import io
import json
import time
import zipfile
from dataclasses import replace
from itertools import chain, count
from pathlib import PurePosixPath

from consumers.errors import JobInputError
from consumers.filetypes import IMAGE_KINDS, SNIFF_BYTES, file_kind
from consumers.jobs import JobRequest, JobStatus, child_job_key, parse_job_key
from consumers.processing.archive import ZipImages, zip_bytes
from consumers.segmentation import result_stem
from consumers.services import Services

# Per-child timing fields a zip job reports as comma-separated lists, as the
# DeepCell Kiosk did for its benchmark clients.
CHILD_TIMINGS = ("prediction_time", "predict_retries", "postprocess_time", "download_time")


def run_zip_job(services: Services, key: str) -> None:
    """Fan a zip job out, or aggregate it once every child has finished."""
    job = services.store.get(key)
    total = int(job.get("total_jobs") or 0)
    if total and len(services.store.finished_children(key)) >= total:
        _aggregate(services, key, job)
    else:
        _fan_out(services, key, JobRequest.from_fields(job))


def _fan_out(services: Services, key: str, request: JobRequest) -> None:
    """Unpack the zip's images into storage one at a time (memory holds one piece of one
    image), then create a child job per image; a bad image fails the zip before any child exists."""
    settings, store = services.settings, services.store
    started = time.monotonic()
    folder = f"uploads/{parse_job_key(key)[1]}"
    with services.retry.call(lambda: services.storage.open(request.input_file_name),
                             "downloading the zip file") as source, \
            ZipImages(source, max_members=settings.max_zip_members, max_total_bytes=settings.max_zip_bytes,
                      max_ratio=settings.max_zip_ratio) as images:
        for _, info in images.members:  # every kind is checked before anything is written
            if file_kind(images.head(info, SNIFF_BYTES)) not in IMAGE_KINDS:
                raise JobInputError(f"the image '{info.filename}' in the ZIP archive is not a TIFF, PNG or "
                                    "JPEG image (its first bytes say otherwise)")
        download_time = time.monotonic() - started
        started = time.monotonic()
        written: list[str] = []
        try:
            for name, info in images.members:
                upload = f"{folder}/{name}"
                services.retry.call(lambda: services.storage.write_chunks(upload, images.chunks(info)),
                                    "unpacking the zip file")
                written.append(upload)
        except BaseException:
            for upload in written:
                services.storage.delete(upload)
            raise
    children = [child_job_key(key, index) for index in range(len(written))]
    # Children are counted against total_jobs, so it is written before any child exists.
    store.set_status(key, JobStatus.WAITING, progress=0, total_jobs=len(children),
                     children=",".join(children), download_time=f"{download_time:.6f}")
    for child, (name, _), upload in zip(children, images.members, written):
        child_request = replace(request, input_file_name=upload, original_name=name, parent=key,
                                created_at=time.time())
        services.queue.submit(child, {**child_request.to_fields(), "status": JobStatus.NEW.value})
    store.update(key, children_upload_time=f"{time.monotonic() - started:.6f}")


def _aggregate(services: Services, key: str, job: dict[str, str]) -> None:
    store = services.store
    started = time.monotonic()
    files: dict[str, bytes] = {}
    results, failures = [], []
    children = [store.get(child) | {"key": child} for child in job["children"].split(",")]
    for child in children:
        name = child.get("original_name", child["key"])
        produced = []
        if child.get("status") == JobStatus.DONE:
            archive = services.retry.call(lambda: services.storage.read(child["output_file_name"]),
                                          "collecting the results")
            with zipfile.ZipFile(io.BytesIO(archive)) as results_zip:
                for member in results_zip.namelist():
                    produced.append(_unique_name(files, member, name))
                    files[produced[-1]] = results_zip.read(member)
        else:
            failures.append(name)
        results.append({"name": name, "status": child.get("status", "expired"),
                        "reason": child.get("reason", ""), "nuclei": child.get("nuclei"),
                        "files": produced})
    files["manifest.json"] = json.dumps({"job": key, "images": results}, indent=2).encode()
    archive_key = f"output/{parse_job_key(key)[1]}/{result_stem(job['original_name'])}.zip"
    services.retry.call(lambda: services.storage.write(archive_key, zip_bytes(files)),
                        "saving the results")
    finished = time.time()
    timings = {field: ",".join(child.get(field, "") for child in children) for field in CHILD_TIMINGS}
    fields = dict(timings, progress=100, failures=json.dumps(failures) if failures else "",
                  finished_at=f"{finished:.6f}",
                  output_file_name=archive_key,
                  output_url=services.storage.download_url(archive_key,
                                                           services.settings.signed_url_seconds),
                  upload_time=f"{time.monotonic() - started:.6f}")
    fields["total_time"] = f"{finished - float(job['created_at']):.6f}"
    fields["cleanup_time"] = f"{_remove_inputs(services, children):.6f}"
    previews = [child["preview_file_name"] for child in children if child.get("preview_file_name")]
    if previews:
        fields["preview_file_name"] = previews[0]
    if len(failures) == len(children):
        fields["reason"] = "every image in the zip file failed:\n" + "\n".join(
            f"{result['name']}: {result['reason']}" for result in results)
        store.set_status(key, JobStatus.FAILED, **fields)
    else:
        store.set_status(key, JobStatus.DONE, **fields)
    store.expire(key, services.settings.job_ttl_seconds)


def _unique_name(taken: dict[str, bytes], member: str, image_name: str) -> str:
    """`member` of an image's results, renamed if another image of the zip (`a.tif`
    beside `a.png`) already produced that name."""
    if member not in taken:
        return member
    suffix = PurePosixPath(image_name).suffix.lstrip(".") or "image"
    stem, dot, extension = member.rpartition(".")
    candidates = chain([f"{stem}_{suffix}{dot}{extension}"], (f"{stem}_{n}{dot}{extension}" for n in count(2)))
    return next(candidate for candidate in candidates if candidate not in taken)


def _remove_inputs(services: Services, children: list[dict[str, str]]) -> float:
    """Delete the images unpacked for the children (their results are kept); seconds taken."""
    started = time.monotonic()
    for child in children:
        if child.get("input_file_name"):
            services.retry.call(lambda: services.storage.delete(child["input_file_name"]),
                                "removing unpacked images")
    return time.monotonic() - started
