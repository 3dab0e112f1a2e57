"""OME-TIFF and OME-Zarr through the consumer: pixel size and channel names read, OME-Zarr labels written."""

import io
import os
import zipfile

import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader

from consumers.jobs import JobRequest, new_job_key
from consumers.processing.large import zip_files
from consumers.segmentation import run_segmentation
from consumers.services import Services
from consumers.settings import ConsumerSettings
from frontend.client.runner import collect_inputs
from tests.fixtures.model_server import TINY_MODEL
from tests.fixtures.ome import ome_tiff, ome_zarr_folder, zipped
from training.synthetic import make_sample

PIXEL_SIZE = 0.65  # µm
SHAPE = (420, 380)


@pytest.fixture
def services(redis_url, tmp_path, model_server):
    settings = ConsumerSettings(redis_url=redis_url, storage_url=str(tmp_path / "bucket"),
                                model_server=model_server.address, metrics_port=0, max_image_pixels=400_000,
                                large_image_pixels=100_000, block_size=128, block_halo=40)
    services = Services.from_settings(settings)
    services.queue.ensure_group()
    yield services
    services.close()


@pytest.fixture(scope="module")
def channels():
    """(GFP, DAPI): a flat cytoplasm channel and the nuclei, as 16-bit (C, Y, X)."""
    image, _ = make_sample(np.random.default_rng(5), SHAPE)
    dapi = np.clip(image, 0, 65535).astype(np.uint16)
    return np.stack([np.full_like(dapi, 300), dapi])


def _submit(services: Services, name: str, data: bytes) -> str:
    key = new_job_key("segmentation")
    services.storage.write(f"uploads/{name}", data)
    request = JobRequest(job_type="segmentation", input_file_name=f"uploads/{name}", original_name=name,
                         model_name=TINY_MODEL)
    services.queue.submit(key, {**request.to_fields(), "status": "new"})
    return key


def _archive(services: Services, key: str) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(services.storage.read(services.store.get(key)["output_file_name"])))


def _labels(services: Services, key: str, stem: str) -> np.ndarray:
    with _archive(services, key) as archive:
        return tifffile.imread(io.BytesIO(archive.read(f"{stem}_labels.tif")))


def test_ome_inputs_round_trip_their_pixel_size_and_feed_the_nuclear_channel(services, channels, tmp_path):
    v05 = zipped(ome_zarr_folder(tmp_path / "v05.ome.zarr", channels, PIXEL_SIZE, ["GFP", "DAPI"]))
    v04 = zipped(ome_zarr_folder(tmp_path / "v04.ome.zarr", channels, PIXEL_SIZE, ["GFP", "DAPI"], "0.4"),
                 top_folder=False)
    keys = {"tiff": _submit(services, "slide.ome.tif", ome_tiff(channels, PIXEL_SIZE, ["GFP", "DAPI"])),
            "v05": _submit(services, "v05.ome.zarr.zip", v05), "v04": _submit(services, "v04.ozx", v04),
            "small": _submit(services, "small.ome.tif", ome_tiff(channels[:, :200, :200], PIXEL_SIZE,
                                                                 ["GFP", "DAPI"]))}
    run_segmentation(services, list(keys.values()))

    jobs = {name: services.store.get(key) for name, key in keys.items()}
    for name, job in jobs.items():
        assert job["status"] == "done", (name, job.get("reason"))
        assert job["pixel_size_um"] == "0.65" and job["scale_source"] == "pixel size"
        assert int(job["nuclei"]) > 5  # the DAPI channel was chosen by its name, not the flat GFP one
    tiff = _labels(services, keys["tiff"], "slide.ome")
    assert tiff.shape == SHAPE
    for name, stem in (("v05", "v05.ome.zarr"), ("v04", "v04")):
        assert np.array_equal(_labels(services, keys[name], stem), tiff), name  # the same pixels, the same nuclei
    with tifffile.TiffFile(io.BytesIO(_archive(services, keys["tiff"]).read("slide.ome_labels.tif"))) as labels:
        x_resolution = labels.pages.first.tags["XResolution"].value
    assert x_resolution[1] / x_resolution[0] * 1e4 == pytest.approx(PIXEL_SIZE)  # px per cm, back to µm


def test_large_results_hold_a_multiscale_ome_zarr_labels_image(services, channels, tmp_path):
    key = _submit(services, "slide.ome.tif", ome_tiff(channels, PIXEL_SIZE, ["GFP", "DAPI"]))
    run_segmentation(services, [key])
    labels = _labels(services, key, "slide.ome")
    with _archive(services, key) as archive:
        archive.extractall(tmp_path / "result", [n for n in archive.namelist() if ".ome.zarr/" in n])
    (node,) = Reader(parse_url(tmp_path / "result" / "slide.ome_labels.ome.zarr" / "labels" / "nuclei"))()
    assert "Label" in {type(spec).__name__ for spec in node.specs}
    levels = [np.asarray(level) for level in node.data]
    assert [level.shape for level in levels] == [SHAPE]  # 420 px: no level needed above 1024
    assert np.array_equal(levels[0], labels)
    scale = node.metadata["coordinateTransformations"][0][0]["scale"]
    assert scale == [PIXEL_SIZE, PIXEL_SIZE]


def test_the_labels_pyramid_halves_down_to_a_viewers_size(tmp_path):
    from consumers.processing.ngff import write_label_pyramid
    labels = zarr.create_array(tmp_path / "l.zarr", shape=(2500, 4100), chunks=(512, 512), dtype=np.uint32)
    labels[1000:1010, 2000:2010] = 7
    write_label_pyramid(labels, tmp_path / "out.ome.zarr", 0.5)
    (node,) = Reader(parse_url(tmp_path / "out.ome.zarr" / "labels" / "nuclei"))()
    assert [level.shape for level in node.data] == [(2500, 4100), (1250, 2050), (625, 1025), (312, 512)]
    assert np.asarray(node.data[1])[500, 1000] == 7 and np.asarray(node.data[1]).max() == 7


def test_bad_ome_zarr_uploads_fail_with_their_reason_and_harm_no_other_job(services, channels, tmp_path):
    planes = zipped(ome_zarr_folder(tmp_path / "z.ome.zarr", channels[:, None], PIXEL_SIZE, ["GFP", "DAPI"],
                                    axes="czyx"))
    not_zarr = io.BytesIO()
    with zipfile.ZipFile(not_zarr, "w") as archive:
        archive.writestr("notes.txt", "no image here")
    stack = np.stack([channels[1]] * 2)[None]  # two z planes
    deep = zipped(ome_zarr_folder(tmp_path / "deep.ome.zarr", stack, PIXEL_SIZE, ["DAPI"], axes="czyx"))
    keys = {"empty": _submit(services, "notes.zarr.zip", not_zarr.getvalue()),
            "truncated": _submit(services, "cut.zarr.zip", planes[:len(planes) // 2]),
            "planes": _submit(services, "deep.zarr.zip", deep),
            "single z": _submit(services, "z.zarr.zip", planes)}
    run_segmentation(services, list(keys.values()))
    reasons = {name: services.store.get(key).get("reason") for name, key in keys.items()}
    assert reasons["empty"] == "the file 'notes.zarr.zip' is not a readable zipped OME-Zarr image: it holds no Zarr group"
    assert reasons["truncated"] == ("the file 'cut.zarr.zip' is not a readable zipped OME-Zarr image "
                                    "(it may be truncated or corrupt)")
    assert reasons["planes"] == ("the OME-Zarr image 'deep.zarr.zip' has planes (2 along z); only 2-D images "
                                 "(with channels) are supported: export one plane")
    assert services.store.get(keys["single z"])["status"] == "done"  # a z axis of one plane is a 2-D image


def test_the_cli_takes_a_zarr_folder_as_one_image(tmp_path, channels):
    folder = ome_zarr_folder(tmp_path / "inputs" / "slide.ome.zarr", channels, PIXEL_SIZE, ["GFP", "DAPI"])
    (tmp_path / "inputs" / "other.tif").write_bytes(ome_tiff(channels, PIXEL_SIZE, ["GFP", "DAPI"]))
    assert collect_inputs([tmp_path / "inputs"]) == [tmp_path / "inputs" / "other.tif", folder]
    assert collect_inputs([folder]) == [folder]


def test_a_large_result_zip_is_the_same_bytes_every_time(tmp_path):
    (tmp_path / "a.csv").write_text("label\n1\n")
    (tmp_path / "x.ome.zarr" / "labels").mkdir(parents=True)
    (tmp_path / "x.ome.zarr" / "labels" / "zarr.json").write_text("{}")
    files = {"a.csv": tmp_path / "a.csv", "x.ome.zarr": tmp_path / "x.ome.zarr"}
    zip_files(files, tmp_path / "first.zip")
    os.utime(tmp_path / "a.csv", (1e9, 1e9))  # another modification time (2001)
    zip_files(files, tmp_path / "second.zip")
    assert (tmp_path / "first.zip").read_bytes() == (tmp_path / "second.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "first.zip") as archive:
        assert archive.namelist() == ["a.csv", "x.ome.zarr/labels/zarr.json"]


def test_a_zipped_ome_zarr_is_one_image_and_a_zip_of_images_is_a_zip_job():
    request = lambda name: JobRequest(job_type="segmentation", input_file_name=f"uploads/{name}",  # noqa: E731
                                      original_name=name, model_name=TINY_MODEL)
    assert request("batch.zip").is_zip
    assert not request("slide.ome.zarr.zip").is_zip and not request("slide.OZX").is_zip
