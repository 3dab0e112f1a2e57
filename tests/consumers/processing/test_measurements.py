"""The per-nucleus measurements table and the pixel size read from TIFFs and written back."""

import csv
import io

import numpy as np
import pytest
import tifffile

from consumers.processing.archive import label_tiff
from consumers.processing.imageio import read_image
from consumers.processing.measurements import measurements_csv


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def test_each_nucleus_gets_its_centroid_area_intensities_and_box():
    labels = np.zeros((1, 20, 30), np.int32)
    labels[0, 2:6, 3:7] = 1  # 4 x 4
    labels[0, 10:20, 20:25] = 2  # 10 x 5
    intensity = np.zeros((1, 20, 30, 1), np.uint16)
    intensity[0, 2:6, 3:7] = 100
    intensity[0, 10:20, 20:25] = 7

    rows = _rows(measurements_csv(labels, intensity, 0.5))

    assert [row["label"] for row in rows] == ["1", "2"]
    first, second = rows
    assert (float(first["centroid_y"]), float(first["centroid_x"])) == (3.5, 4.5)
    assert first["area_px"] == "16" and float(first["area_um2"]) == 4.0
    assert float(first["mean_intensity"]) == 100 and float(first["integrated_intensity"]) == 1600
    assert [second[k] for k in ("bbox_min_y", "bbox_min_x", "bbox_max_y", "bbox_max_x")] == ["10", "20", "20", "25"]
    assert float(second["integrated_intensity"]) == 7 * 50


def test_without_a_pixel_size_there_is_no_area_in_square_micrometres():
    labels = np.ones((1, 4, 4), np.int32)
    rows = _rows(measurements_csv(labels, np.ones((1, 4, 4, 1)), None))
    assert "area_um2" not in rows[0]


def test_channels_and_frames_get_columns_and_rows_of_their_own():
    labels = np.ones((2, 3, 3), np.int32)
    intensity = np.stack([np.full((2, 3, 3), 1.0), np.full((2, 3, 3), 5.0)], axis=-1)
    rows = _rows(measurements_csv(labels, intensity, None))
    assert [row["frame"] for row in rows] == ["0", "1"]
    assert float(rows[0]["mean_intensity_c1"]) == 5 and float(rows[1]["integrated_intensity_c0"]) == 9


def test_no_nuclei_gives_a_header_only():
    data = measurements_csv(np.zeros((1, 4, 4), np.int32), np.zeros((1, 4, 4, 1)), 1.0)
    assert data.decode().splitlines()[0].startswith("frame,label,centroid_y")
    assert _rows(data) == []


def _tiff(**options) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((16, 16), np.uint16), **options)
    return buffer.getvalue()


@pytest.mark.parametrize("options, expected", [
    ({}, None),
    ({"imagej": True, "resolution": (1 / 0.325, 1 / 0.325), "metadata": {"unit": "um"}}, 0.325),
    ({"ome": True, "metadata": {"PhysicalSizeX": 0.65, "PhysicalSizeXUnit": "µm"}}, 0.65),
    ({"ome": True, "metadata": {"PhysicalSizeX": 650, "PhysicalSizeXUnit": "nm"}}, 0.65),
    ({"resolution": (2e4, 2e4), "resolutionunit": "CENTIMETER"}, 0.5),
    ({"resolution": (72, 72), "resolutionunit": "INCH"}, None),  # a screen's, not a microscope's
])
def test_the_pixel_size_a_tiff_declares_is_read(options, expected):
    image = read_image(_tiff(**options), "x.tif", max_pixels=10**6, max_channels=16)
    assert image.pixel_size_um == (pytest.approx(expected) if expected else None)


def test_label_tiffs_keep_the_pixel_size():
    data = label_tiff(np.ones((4, 4), np.int32), 0.325)
    assert read_image(data, "labels.tif", max_pixels=10**6, max_channels=16).pixel_size_um == pytest.approx(0.325)
    assert read_image(label_tiff(np.ones((4, 4), np.int32)), "l.tif", max_pixels=99, max_channels=1).pixel_size_um is None
