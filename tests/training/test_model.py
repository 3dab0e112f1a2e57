"""The committed NuclearSegmentation SavedModel: its serving contract and its accuracy,
run as TF-Serving runs it (session loader) through the consumers' own steps."""

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

from modelserver.repository import load_served_model
from training.evaluate import (DEFAULT_DATA, REAL_IMAGE, REAL_LABELS, held_out_samples, kiosk_segmenter,
                               load_model, score_folder, summarise, tiff_bytes)
from training.metrics import match_nuclei
from training.train_nuclear_segmentation import DATA_ENV

MODEL = Path(__file__).resolve().parents[2] / "models" / "NuclearSegmentation" / "1"
DATA = Path(os.environ.get(DATA_ENV) or DEFAULT_DATA)
# Floors under the figures in the README (training/evaluation.json), with room for noise.
VAL_MEAN_F1_FLOOR = 0.80
VAL_SOURCE_FLOOR = 0.72


@pytest.fixture(scope="module")
def segment():
    return kiosk_segmenter(load_model(MODEL))


def test_model_is_small_enough_to_commit():
    assert sum(f.stat().st_size for f in MODEL.rglob("*") if f.is_file()) <= 6 * 1024 * 1024


def test_serving_signature_names_dtypes_and_shapes():
    signature = load_served_model("NuclearSegmentation", 1, MODEL).signature_defs["serving_default"]
    assert list(signature.inputs) == ["image"]
    assert sorted(signature.outputs) == ["fgbg", "inner_distance"]
    for info in [*signature.inputs.values(), *signature.outputs.values()]:
        assert info.dtype == 1  # DT_FLOAT
        assert [dim.size for dim in info.tensor_shape.dim] == [-1, -1, -1, 1]


def test_a_batch_of_tiles_gives_probability_maps_per_tile():
    batch = np.random.default_rng(0).random((3, 64, 48, 1), np.float32)
    outputs = load_model(MODEL)(batch)
    for name in ("fgbg", "inner_distance"):
        assert outputs[name].shape == (3, 64, 48, 1) and outputs[name].dtype == np.float32
        assert outputs[name].min() >= 0.0 and outputs[name].max() <= 1.0


def test_segments_held_out_synthetic_images(segment):
    scores = [match_nuclei(truth, segment(tiff_bytes(image), "s.tif")) for image, truth in held_out_samples(3)]
    assert np.mean([s.f1 for s in scores]) >= 0.75


def test_sizes_that_are_not_tile_multiples_come_back_whole(segment):
    image, truth = held_out_samples(1, shape=(200, 232))[0]
    labels = segment(tiff_bytes(image), "s.tif")
    assert labels.shape == (200, 232)
    assert match_nuclei(truth, labels).f1 >= 0.7


def test_segments_the_dsb2018_image_with_no_scale_given(segment):
    truth = tifffile.imread(REAL_LABELS)
    assert match_nuclei(truth, segment(REAL_IMAGE.read_bytes(), REAL_IMAGE.name)).f1 >= 0.85


@pytest.mark.skipif(not (DATA / "val").is_dir(),
                    reason=f"SKIPPED: the real validation images are not at {DATA / 'val'} "
                           f"(set {DATA_ENV} to the nuclei data set folder to run this)")
def test_real_validation_images_at_any_magnification_with_no_scale_given(segment):
    summaries = summarise(score_folder(DATA / "val", segment))
    kiosk = {source: methods["kiosk"].mean_f1 for source, methods in summaries.items()}
    assert kiosk["all"] >= VAL_MEAN_F1_FLOOR, kiosk
    assert min(kiosk.values()) >= VAL_SOURCE_FLOOR, kiosk
    assert kiosk["all"] > summaries["all"]["baseline"].mean_f1
