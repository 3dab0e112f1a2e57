"""Creating jobs: defaults, the web page's form, validation, and what lands in Redis."""

import httpx
import pytest
import redis

from consumers.queue import GROUP, stream_name
from tests.frontend.helpers import add_model, tiff_bytes, zip_bytes


@pytest.fixture
def job_fields(redis_url):
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection.hgetall
    connection.close()


@pytest.fixture
def image(uploaded):
    """The part after `uploads/` of an uploaded TIFF (what clients send as imageName)."""
    return uploaded("cells.tif", tiff_bytes()).removeprefix("uploads/")


def predict(client, **body):
    return client.post("/api/predict", json={"jobType": "segmentation", **body})


def test_minimal_request_takes_the_defaults(client, image, job_fields, redis_url):
    response = predict(client, imageName=image)
    assert response.status_code == 200
    key = response.json()["hash"]
    fields = job_fields(key)
    assert fields["status"] == "new"
    assert fields["input_file_name"] == f"uploads/{image}"
    assert fields["original_name"] == image
    assert (fields["model_name"], fields["model_version"]) == ("NuclearSegmentation", "2")
    assert fields["scale"] == "" and fields["image_mpp"] == ""  # estimated from the image
    assert fields["channels"] == "" and fields["dimension_order"] == ""
    assert float(fields["created_at"]) > 0
    queued = redis.Redis.from_url(redis_url, decode_responses=True)
    assert [entry[1]["job"] for entry in queued.xrange(stream_name("segmentation"))] == [key]
    assert queued.xinfo_groups(stream_name("segmentation"))[0]["name"] == GROUP


def test_web_form_options(client, image, job_fields):
    key = predict(client, imageName=image, modelName="Mesmer", modelVersion=7, dataLabel=3,
                  imageUrl="http://x/y.tif", preprocessFunction="normalize",
                  jobForm={"dimensionOrder": "bxyc", "selectedChannels": "0,2", "scale": "0.5",
                           "segmentationType": "whole-cell"}).json()["hash"]
    fields = job_fields(key)
    assert (fields["model_name"], fields["model_version"]) == ("Mesmer", "7")
    assert fields["dimension_order"] == "ZXYC"
    assert fields["channels"] == "0,2"
    assert float(fields["scale"]) == 0.5
    assert fields["segmentation_type"] == "whole-cell"
    assert fields["label"] == "3" and fields["url"] == "http://x/y.tif"
    assert fields["preprocess_function"] == "normalize"


def test_data_rescale_is_the_scale(client, image, job_fields):
    assert float(job_fields(predict(client, imageName=image, dataRescale=2.5).json()["hash"])["scale"]) == 2.5
    assert float(job_fields(predict(client, imageName=image, dataRescale="3").json()["hash"])["scale"]) == 3
    channels = predict(client, imageName=image, jobForm={"selectedChannels": [1, 0]}).json()["hash"]
    assert job_fields(channels)["channels"] == "1,0"


def test_zip_names_make_zip_jobs(client, uploaded, job_fields):
    name = uploaded("batch.zip", zip_bytes({"a.tif": tiff_bytes()})).removeprefix("uploads/")
    fields = job_fields(predict(client, imageName=name).json()["hash"])
    assert fields["original_name"].endswith(".zip")


def test_uploaded_name_defaults_and_explicit(client, bucket_dir, job_fields):
    (bucket_dir / "uploads").mkdir()
    (bucket_dir / "uploads" / "bench.tif").write_bytes(tiff_bytes())
    assert job_fields(predict(client, imageName="bench.tif").json()["hash"])["input_file_name"] \
        == "uploads/bench.tif"
    explicit = predict(client, imageName="anything.tif", uploadedName="uploads/bench.tif")
    assert job_fields(explicit.json()["hash"])["input_file_name"] == "uploads/bench.tif"


def test_new_models_are_found(client, image, bucket_dir, job_fields):
    add_model(bucket_dir, "NuclearSegmentation", "3")
    assert job_fields(predict(client, imageName=image).json()["hash"])["model_version"] == "3"


@pytest.mark.parametrize("body, expected", [
    ({"jobType": "tracking"}, "jobType"),
    ({"jobType": None}, "jobType"),
    ({"imageName": ""}, "imageName"),
    ({"imageName": None}, "imageName"),
    ({"modelVersion": "v2"}, "modelVersion"),
    ({"modelVersion": -1}, "modelVersion"),
    ({"modelName": "../../etc"}, "modelName"),
    ({"dataRescale": 0}, "dataRescale"),
    ({"dataRescale": -2}, "dataRescale"),
    ({"dataRescale": 1e9}, "dataRescale"),
    ({"dataRescale": 20}, "dataRescale"),  # above what the consumers accept
    ({"dataRescale": 0.05}, "dataRescale"),
    ({"dataRescale": "big"}, "dataRescale"),
    ({"jobForm": {"scale": 0}}, "scale"),
    ({"jobForm": {"selectedChannels": [-1]}}, "selectedChannels"),
    ({"jobForm": {"selectedChannels": "0,x"}}, "selectedChannels"),
    ({"jobForm": {"dimensionOrder": "QXY"}}, "dimension order"),
    ({"jobForm": {"dimensionOrder": "XXY"}}, "dimension order"),
    ({"jobForm": "cxy"}, "jobForm"),
    ({"preprocessFunction": "os.system('x')"}, "preprocessFunction"),
])
def test_invalid_options_are_400_with_a_message(client, image, body, expected):
    response = client.post("/api/predict", json={"jobType": "segmentation", "imageName": image, **body})
    assert response.status_code == 400
    assert expected in response.json()["message"]


def test_unknown_model_lists_the_models(client, image):
    response = predict(client, imageName=image, modelName="Nope")
    assert response.status_code == 400
    message = response.json()["message"]
    assert "unknown model 'Nope'" in message
    assert "NuclearSegmentation (versions 1, 2)" in message and "Mesmer (versions 7)" in message
    missing_version = predict(client, imageName=image, modelVersion="5")
    assert missing_version.status_code == 400
    assert "no version 5" in missing_version.json()["message"]


@pytest.mark.parametrize("names", [
    {"imageName": "never-uploaded.tif"},
    {"imageName": "x.tif", "uploadedName": "uploads/never-uploaded.tif"},
])
def test_missing_uploads_are_400(client, names):
    response = predict(client, **names)
    assert response.status_code == 400
    assert "upload it" in response.json()["message"]


def test_folders_are_not_inputs(client, uploaded, redis_url):
    """`uploads/<id>` (the folder an upload lands in) exists in storage but is no file: 400."""
    folder = uploaded("cells.tif", tiff_bytes()).rsplit("/", 1)[0]
    for names, expected in (({"imageName": "cells.tif", "uploadedName": folder}, "is a folder"),
                            ({"imageName": folder.removeprefix("uploads/")}, "is a folder"),
                            ({"imageName": "cells.tif", "uploadedName": f"{folder}/"}, "not a storage key")):
        response = predict(client, **names)
        assert response.status_code == 400, (names, response.text)
        assert expected in response.json()["message"]
    assert redis.Redis.from_url(redis_url).xlen(stream_name("segmentation")) == 0


@pytest.mark.parametrize("names", [
    {"imageName": "../../etc/passwd"},
    {"imageName": "/etc/passwd"},
    {"imageName": "a/../../b.tif"},
    {"imageName": "a\nb.tif"},
    {"imageName": "x.tif", "uploadedName": "uploads/../models/NuclearSegmentation/1/saved_model.pb"},
    {"imageName": "x.tif", "uploadedName": "models/NuclearSegmentation/1/saved_model.pb"},
    {"imageName": "x.tif", "uploadedName": "/etc/passwd"},
    {"imageName": "x.tif", "uploadedName": "uploads//x.tif"},
])
def test_names_cannot_escape_uploads(client, names, redis_url):
    response = predict(client, **names)
    assert response.status_code == 400
    assert "not a" in response.json()["message"]
    assert redis.Redis.from_url(redis_url).xlen(stream_name("segmentation")) == 0


@pytest.mark.parametrize("body", [b"{not json", b"[]", b"null", b'"text"', b""])
def test_malformed_bodies_are_400(client, body):
    response = client.post("/api/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["message"]


def test_no_models_in_storage(api_for, configure, tmp_path):
    bare = tmp_path / "bare"
    (bare / "uploads").mkdir(parents=True)
    (bare / "uploads" / "x.tif").write_bytes(tiff_bytes())
    api = api_for(configure(storage_url=str(bare)))
    response = httpx.post(f"{api.url}/api/predict", json={"jobType": "segmentation", "imageName": "x.tif"})
    assert response.status_code == 400
    assert response.json()["message"] == ("unknown model 'NuclearSegmentation'; "
                                          "models in storage: none")
