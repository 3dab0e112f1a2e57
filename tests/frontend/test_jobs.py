"""Readable job answers (with zip children) and result downloads from local storage."""

import pytest
import redis

from consumers.jobs import JobStatus, child_job_key
from consumers.jobstore import JobStore
from tests.frontend.helpers import tiff_bytes, zip_bytes


@pytest.fixture
def store(redis_url):
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield JobStore(connection, ttl_seconds=3600)
    connection.close()


def create(client, uploaded, name="cells.tif", content=None):
    image = uploaded(name, content or tiff_bytes()).removeprefix("uploads/")
    return client.post("/api/predict", json={"jobType": "segmentation", "imageName": image}).json()["hash"]


def write_result(bucket_dir, key, stem="cells"):
    folder = f"output/{key.split(':')[1]}"
    (bucket_dir / folder).mkdir(parents=True)
    (bucket_dir / folder / f"{stem}.zip").write_bytes(zip_bytes({f"{stem}_labels.tif": tiff_bytes()}))
    (bucket_dir / folder / f"{stem}_overlay.png").write_bytes(b"\x89PNG\r\n\x1a\npreview")
    return f"{folder}/{stem}.zip", f"{folder}/{stem}_overlay.png"


def test_single_job_through_its_stages(client, uploaded, store, bucket_dir):
    key = create(client, uploaded)
    view = client.get(f"/api/jobs/{key}").json()
    assert view["status"] == "new" and view["progress"] == 0
    assert view["model"] == "NuclearSegmentation:2"
    assert view["name"].endswith("/cells.tif")
    assert view["outputUrl"] is None and view["children"] == []
    store.set_status(key, JobStatus.PREDICTING)
    assert client.get(f"/api/jobs/{key}").json()["progress"] == 40
    output, preview = write_result(bucket_dir, key)
    store.set_status(key, JobStatus.DONE, output_file_name=output, preview_file_name=preview,
                     finished_at="1700000000.25")
    view = client.get(f"/api/jobs/{key}/").json()
    assert (view["status"], view["progress"]) == ("done", 100)
    assert view["finishedAt"] == "2023-11-14T22:13:20.250Z"
    archive = client.get(view["outputUrl"])
    assert archive.status_code == 200
    assert archive.content == (bucket_dir / output).read_bytes()
    assert "attachment" in archive.headers["content-disposition"]
    image = client.get(view["previewUrl"])
    assert image.headers["content-type"] == "image/png" and image.content.endswith(b"preview")


def test_failed_job_shows_its_reason(client, uploaded, store):
    key = create(client, uploaded)
    store.fail(key, "Traceback (most recent call last):\nthe image is 0×0 pixels")
    view = client.get(f"/api/jobs/{key}").json()
    assert view["status"] == "failed" and view["progress"] is None
    assert view["reason"].splitlines()[-1] == "the image is 0×0 pixels"


def test_zip_job_lists_its_children(client, uploaded, store, bucket_dir):
    key = create(client, uploaded, "batch.zip", zip_bytes({"a.tif": tiff_bytes(), "b.tif": tiff_bytes()}))
    children = [child_job_key(key, i) for i in range(2)]
    for index, child in enumerate(children):
        store.redis.hset(child, mapping={"status": "new", "parent": key, "original_name": f"{'ab'[index]}.tif",
                                         "model_name": "NuclearSegmentation", "model_version": "2"})
    store.update(key, status="waiting", children=",".join(children), total_jobs="2", progress="50")
    output, preview = write_result(bucket_dir, children[0], "a")
    store.set_status(children[0], JobStatus.DONE, output_file_name=output, preview_file_name=preview)
    store.fail(children[1], "b.tif is empty")
    view = client.get(f"/api/jobs/{key}").json()
    assert (view["status"], view["progress"], view["totalJobs"]) == ("waiting", 50, 2)
    assert [c["key"] for c in view["children"]] == children
    first, second = view["children"]
    assert first["status"] == "done" and first["parent"] == key
    assert client.get(first["previewUrl"]).status_code == 200
    assert second["reason"] == "b.tif is empty"


def test_job_endpoint_checks_keys(client):
    assert client.get("/api/jobs/not-a-job").status_code == 400
    assert client.get("/api/jobs/segmentation:" + "f" * 32).status_code == 404


@pytest.mark.parametrize("path", [
    "/api/download/models/NuclearSegmentation/1/saved_model.pb",
    "/api/download/output/../models/NuclearSegmentation/1/saved_model.pb",
    "/api/download/output/%2e%2e/models/NuclearSegmentation/1/saved_model.pb",
    "/api/download/uploads/..%2f..%2f..%2fetc%2fpasswd",
    "/api/download//etc/passwd",
    "/api/download/output//x",
    "/api/download/output/missing.zip",
    "/api/download/",
])
def test_downloads_stay_in_output_and_uploads(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["message"]


def test_folders_are_not_downloads(client, uploaded, store, bucket_dir):
    """`uploads/<id>` and `output/<job>` exist as folders: 404 with a message, never a 500."""
    upload_folder = uploaded("cells.tif", tiff_bytes()).rsplit("/", 1)[0]
    key = create(client, uploaded)
    output_folder = write_result(bucket_dir, key)[0].rsplit("/", 1)[0]
    for folder in (upload_folder, output_folder, "output", "uploads"):
        for path in (f"/api/download/{folder}", f"/api/download/{folder}/"):
            response = client.get(path)
            assert response.status_code == 404, (path, response.text)
            assert response.json() == {"message": "no such file"}
    assert client.get(f"/api/download/{output_folder}/cells.zip").status_code == 200
