"""The DeepCell Kiosk API contract, call by call, as existing clients make the calls."""

import time

import httpx
import pytest
import redis

from consumers.jobs import READABLE_FIELDS, JobStatus
from consumers.jobstore import JobStore
from tests.fixtures.servers import RedisServer
from tests.frontend.helpers import tiff_bytes


def test_health_check_and_portal(client):
    assert client.get("/api/health-check").json() == {"message": "OK"}
    portal = client.get("/")
    assert portal.status_code == 200
    assert "text/html" in portal.headers["content-type"]


@pytest.mark.parametrize("path", ["/api/health-check/", "/api/jobtypes/", "/api/models/"])
def test_trailing_slashes_are_accepted_without_redirect(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.history == []


def test_unknown_api_paths_answer_json_404(client):
    for method, path in (("GET", "/api/nothing"), ("POST", "/api/redis/other"), ("GET", "/api")):
        response = client.request(method, path)
        assert response.status_code == 404
        assert "message" in response.json()


def test_wrong_method_answers_json_405(client):
    response = client.get("/api/predict")
    assert response.status_code == 405
    assert "message" in response.json()


def test_job_types_and_models(client):
    assert client.get("/api/jobtypes").json() == {"jobTypes": ["segmentation"]}
    assert client.get("/api/models").json() == {
        "models": {"Mesmer": ["7"], "NuclearSegmentation": ["1", "2"]}}


def test_models_list_follows_storage(client, bucket_dir):
    (bucket_dir / "models" / "NuclearSegmentation" / "10").mkdir()
    (bucket_dir / "models" / "NuclearSegmentation" / "10" / "saved_model.pb").write_bytes(b"x")
    (bucket_dir / "models" / "Broken" / "latest").mkdir(parents=True)
    (bucket_dir / "models" / "Broken" / "latest" / "saved_model.pb").write_bytes(b"x")
    assert client.get("/api/models").json()["models"]["NuclearSegmentation"] == ["1", "2", "10"]
    assert "Broken" not in client.get("/api/models").json()["models"]


def test_swagger_json_documents_every_contract_route(client):
    document = client.get("/api/swagger.json").json()
    assert document["openapi"].startswith("3.")
    for path in ("/api/health-check", "/api/upload", "/api/predict", "/api/status", "/api/redis",
                 "/api/redis/expire", "/api/jobtypes", "/api/models", "/api/jobs/{key}"):
        assert path in document["paths"], path
    predict = document["paths"]["/api/predict"]["post"]
    assert "400" in predict["responses"] and "422" not in predict["responses"]
    assert "Create a job" in predict["description"]


def test_kiosk_client_round_trip(client, bucket_dir, redis_url):
    """What kiosk-client does: upload, predict, poll status, read fields one by one, expire."""
    upload = client.post("/api/upload", files={"file": ("/data/run 1/img.tif", tiff_bytes())}).json()
    uploaded = upload["uploadedName"]
    assert uploaded.startswith("uploads/") and uploaded.endswith("/img.tif")
    assert client.get(upload["imageURL"]).content == tiff_bytes()
    relative = uploaded.removeprefix("uploads/")
    job = client.post("/api/predict", json={
        "modelName": "", "modelVersion": "", "preprocessFunction": "", "postprocessFunction": "",
        "imageName": relative, "jobType": "segmentation", "dataRescale": "", "dataLabel": "",
        "uploadedName": f"uploads/{relative}"}).json()["hash"]
    assert client.post("/api/status", json={"hash": job}).json() == {"status": "new"}

    # The consumer's writes (as the pipeline makes them).
    store = JobStore(redis.Redis.from_url(redis_url, decode_responses=True), ttl_seconds=3600)
    output = f"output/{job.split(':')[1]}/img.zip"
    (bucket_dir / output).parent.mkdir(parents=True)
    (bucket_dir / output).write_bytes(b"PK\x05\x06" + bytes(18))
    store.set_status(job, JobStatus.DONE, output_file_name=output, finished_at=f"{time.time():.6f}",
                     output_url="http://old-signature.example/expired", total_time="1.5")

    def read(field):
        response = client.post("/api/redis", json={"hash": job, "key": field})
        assert response.status_code == 200
        return response.json()["value"]

    assert read("status") == "done"
    assert read("total_time") == "1.5"
    assert read("reason") is None
    assert read("predict_retries") is None
    created, finished = read("created_at"), read("finished_at")
    assert created.endswith("Z") and finished.endswith("Z") and created <= finished
    url = read("output_url")
    assert url != "http://old-signature.example/expired"
    assert client.get(url).content == (bucket_dir / output).read_bytes()
    assert client.post("/api/redis/expire", json={"hash": job, "expireIn": 60}).json() == {"value": 1}
    assert 0 < redis.Redis.from_url(redis_url).ttl(job) <= 60


def test_redis_reads_a_list_of_fields(client, uploaded):
    name = uploaded("a.tif", tiff_bytes())
    job = client.post("/api/predict", json={"jobType": "segmentation",
                                            "imageName": name.removeprefix("uploads/")}).json()["hash"]
    answer = client.post("/api/redis/", json={"hash": job, "key": ["status", "model_name", "reason"]})
    assert answer.json() == {"value": ["new", "NuclearSegmentation", None]}


def test_redis_refuses_fields_that_are_not_job_fields(client, uploaded):
    name = uploaded("a.tif", tiff_bytes())
    job = client.post("/api/predict", json={"jobType": "segmentation",
                                            "imageName": name.removeprefix("uploads/")}).json()["hash"]
    for field in ("password", "identity_upload", ["status", "nope"]):
        response = client.post("/api/redis", json={"hash": job, "key": field})
        assert response.status_code == 400
        assert "cannot be read" in response.json()["message"]


def test_redis_never_reads_keys_that_are_not_jobs(client, redis_url):
    other = redis.Redis.from_url(redis_url, decode_responses=True)
    other.set("secret", "s3cr3t")
    other.hset("config", mapping={"status": "leaked"})
    other.xadd("queue:segmentation", {"job": "x"})
    for key in ("secret", "config", "queue:segmentation", "segmentation:1234", "*"):
        for path, body in (("/api/redis", {"hash": key, "key": "status"}),
                           ("/api/status", {"hash": key}),
                           ("/api/redis/expire", {"hash": key, "expireIn": 1})):
            response = client.post(path, json=body)
            assert response.status_code == 400, (path, key)
            assert "not a job key" in response.json()["message"]
    assert other.ttl("config") == -1


def test_unknown_jobs(client):
    """404 (a 4xx, as the issue wants) whose body still carries the contract's key as null,
    so a client that reads `status` or `value` from the body sees null, as before."""
    unknown = "segmentation:" + "0" * 32
    status = client.post("/api/status", json={"hash": unknown})
    assert status.status_code == 404
    assert set(status.json()) == {"status", "message"} and status.json()["status"] is None
    assert unknown in status.json()["message"]
    for field in ("status", ["status", "output_url"]):
        value = client.post("/api/redis", json={"hash": unknown, "key": field})
        assert value.status_code == 404
        assert set(value.json()) == {"value", "message"} and value.json()["value"] is None
        assert unknown in value.json()["message"]
    expire = client.post("/api/redis/expire", json={"hash": unknown})
    assert expire.status_code == 404 and expire.json()["value"] == 0 and expire.json()["message"]
    assert client.get(f"/api/jobs/{unknown}").status_code == 404


def test_unknown_job_bodies_are_documented(client):
    document = client.get("/api/swagger.json").json()
    for path, key in (("/api/status", "status"), ("/api/redis", "value")):
        schema = document["paths"][path]["post"]["responses"]["404"]["content"]["application/json"]["schema"]
        component = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        assert {key, "message"} <= set(component["properties"]), component


@pytest.mark.parametrize("body", [
    {"hash": "segmentation:" + "0" * 32, "expireIn": -1},
    {"hash": "segmentation:" + "0" * 32, "expireIn": "soon"},
    {"hash": "segmentation:" + "0" * 32, "expireIn": 1.5},
    {"hash": "segmentation:" + "0" * 32, "expireIn": 10**12},
    {"expireIn": 5},
])
def test_expire_checks_its_input(client, body):
    response = client.post("/api/redis/expire", json=body)
    assert response.status_code == 400
    assert response.json()["message"]


@pytest.mark.parametrize("expiry", [{}, {"expireIn": None}, {"expireIn": ""}, {"expireIn": " "},
                                    {"expireIn": 0}, {"expireIn": 0.0}, {"expireIn": False}])
def test_expire_default_is_an_hour(client, uploaded, redis_url, expiry):
    """Missing, null, "" and 0 all take 3600, as kiosk-frontend's `expireIn || 3600` did."""
    name = uploaded("a.png", b"\x89PNG\r\n\x1a\n" + bytes(50))
    job = client.post("/api/predict", json={"jobType": "segmentation",
                                            "imageName": name.removeprefix("uploads/")}).json()["hash"]
    connection = redis.Redis.from_url(redis_url)
    connection.expire(job, 10)
    response = client.post("/api/redis/expire", json={"hash": job, **expiry})
    assert response.status_code == 200, response.text
    assert response.json() == {"value": 1}
    assert 3500 < connection.ttl(job) <= 3600


@pytest.mark.parametrize("given, ttl", [(60, 60), ("120", 120), (1, 1)])
def test_expire_takes_given_seconds(client, uploaded, redis_url, given, ttl):
    name = uploaded("a.png", b"\x89PNG\r\n\x1a\n" + bytes(50))
    job = client.post("/api/predict", json={"jobType": "segmentation",
                                            "imageName": name.removeprefix("uploads/")}).json()["hash"]
    assert client.post("/api/redis/expire", json={"hash": job, "expireIn": given}).json() == {"value": 1}
    assert ttl - 2 < redis.Redis.from_url(redis_url).ttl(job) <= ttl


def test_every_readable_field_can_be_read(client, uploaded):
    name = uploaded("a.tif", tiff_bytes())
    job = client.post("/api/predict", json={"jobType": "segmentation",
                                            "imageName": name.removeprefix("uploads/")}).json()["hash"]
    fields = sorted(READABLE_FIELDS)
    values = client.post("/api/redis", json={"hash": job, "key": fields}).json()["value"]
    assert dict(zip(fields, values))["input_file_name"] == name


def test_a_redis_outage_is_503_not_500(api_for, configure):
    own_redis = RedisServer()
    api = api_for(configure(redis_url=own_redis.url))
    own_redis.stop()
    for path, body in (("/api/status", {"hash": "segmentation:" + "0" * 32}),
                       ("/api/redis", {"hash": "segmentation:" + "0" * 32, "key": "status"})):
        response = httpx.post(f"{api.url}{path}", json=body, timeout=30)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert "unavailable" in response.json()["message"]
    assert httpx.get(f"{api.url}/api/health-check").status_code == 200
