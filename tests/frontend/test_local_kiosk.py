"""`python -m local_kiosk` (what `make run` starts) with the real NuclearSegmentation model:
the CLI and the portal's page against the whole kiosk on this machine."""

import io
import subprocess
import zipfile

import httpx
import numpy as np
import tifffile

from tests.frontend.helpers import KIOSK
from training.metrics import f1_at_iou
from training.synthetic import make_sample


def test_cli_segments_a_synthetic_image_like_its_ground_truth(local_kiosk, tmp_path):
    image, truth = make_sample(np.random.default_rng(11), (256, 256))
    tifffile.imwrite(tmp_path / "sample.tif", np.clip(image, 0, 65535).astype(np.uint16))
    result = subprocess.run([KIOSK, "--url", local_kiosk.url.removeprefix("http://"), "submit", "sample.tif",
                             "--poll", "0.5"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(tmp_path / "results" / "sample.zip") as archive:
        labels = tifffile.imread(io.BytesIO(archive.read("sample_labels.tif")))
    assert f1_at_iou(truth, labels) >= 0.8


def test_portal_and_models(local_kiosk):
    assert "Drop images" in httpx.get(local_kiosk.url).text
    models = httpx.get(f"{local_kiosk.url}/api/models").json()["models"]
    assert "NuclearSegmentation" in models
