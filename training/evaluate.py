"""Score the exported NuclearSegmentation model the way the kiosk runs it, on images it never saw.

    python -m training.evaluate [--model models/NuclearSegmentation/1] [--data DIR] [--json FILE]

Each image goes through the consumers' own steps (`segment_in_process`: decode,
normalise, the scale estimated from the image, tiling, the SavedModel run by the
session loader as TF-Serving runs it, post-processing, a second pass when the
nuclei come out far from the model's size) at default settings: no scale given.

Prints per source of the real data set's `val/` (`--data` or `KIOSK_TRAIN_DATA`)
and over all of it the per-image mean F1 at IoU 0.5 and the pooled F1, beside a
classical Otsu + distance-transform watershed on the same images; then held-out
synthetic images and the DSB 2018 image of `training/data/`.
"""

import argparse
import io
import json
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads
import tifffile  # noqa: E402
from scipy import ndimage  # noqa: E402
from skimage.feature import peak_local_max  # noqa: E402
from skimage.filters import threshold_otsu  # noqa: E402
from skimage.segmentation import watershed  # noqa: E402

from consumers.jobs import JobRequest  # noqa: E402
from consumers.model_client import ModelSpec  # noqa: E402
from consumers.processing.normalize import normalize  # noqa: E402
from consumers.segmentation import Predictor, segment_in_process  # noqa: E402
from consumers.settings import ConsumerSettings  # noqa: E402
from training.metrics import MatchScores, match_nuclei  # noqa: E402
from training.real_data import pair_paths  # noqa: E402
from training.synthetic import make_sample  # noqa: E402
from training.train_nuclear_segmentation import DATA_ENV, DEFAULT_OUTPUT, OUTPUTS  # noqa: E402

HELD_OUT_SEED = 1_000_003  # training seeds are small integers
DATA = Path(__file__).parent / "data"
REAL_IMAGE = DATA / "dsb2018_nuclei.tif"
REAL_LABELS = DATA / "dsb2018_nuclei_labels.tif"
DEFAULT_DATA = Path(__file__).parents[2] / "shared" / "datasets" / "nuclei"

Segmenter = Callable[[bytes, str], np.ndarray]


def load_model(path: Path = DEFAULT_OUTPUT) -> Predictor:
    """The SavedModel at ``path`` as the model server runs it: session loader, signature tensor names."""
    from modelserver.repository import load_served_model

    served = load_served_model(path.parent.name, int(path.name), path)
    return lambda tiles: served.run("serving_default", {"image": tiles}, list(OUTPUTS))


def kiosk_segmenter(predict: Predictor, **request: object) -> Segmenter:
    """(file bytes, file name) → (H, W) labels through the consumers' steps at default settings."""
    settings = ConsumerSettings()
    spec = ModelSpec("NuclearSegmentation", 1, "image", np.dtype(np.float32), None, None, 1, OUTPUTS)

    def segment(data: bytes, name: str) -> np.ndarray:
        job = JobRequest(job_type="segmentation", input_file_name=f"uploads/{name}", original_name=name,
                         model_name=spec.name, **request)
        return segment_in_process(data, job, settings, spec, predict)[1][0]

    return segment


def otsu_watershed(image: np.ndarray, min_distance: int = 5) -> np.ndarray:
    """The textbook baseline: Otsu threshold of the smoothed image, holes filled, a watershed
    of the distance transform from its local maxima (at least `min_distance` px apart)."""
    smooth = ndimage.gaussian_filter(normalize(image[..., None].astype(np.float32))[..., 0], 1.0)
    foreground = ndimage.binary_fill_holes(smooth > threshold_otsu(smooth))
    distance = ndimage.distance_transform_edt(foreground)
    peaks = peak_local_max(distance, min_distance=min_distance, labels=ndimage.label(foreground)[0])
    markers = np.zeros(image.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-distance, markers, mask=foreground)


@dataclass(frozen=True)
class Summary:
    """Scores of one group of images: per-image mean F1 and pooled counts."""

    images: int
    mean_f1: float
    pooled: MatchScores

    @classmethod
    def of(cls, scores: list[MatchScores]) -> "Summary":
        return cls(len(scores), statistics.fmean(s.f1 for s in scores), pooled(scores))

    def as_dict(self) -> dict[str, float]:
        return {"images": self.images, "mean_f1": round(self.mean_f1, 4), "pooled_f1": round(self.pooled.f1, 4),
                "precision": round(self.pooled.precision, 4), "recall": round(self.pooled.recall, 4)}


def pooled(scores: list[MatchScores]) -> MatchScores:
    """One score over many images: matches, misses and extras summed."""
    return MatchScores(
        sum(s.true_positives for s in scores),
        sum(s.false_positives for s in scores),
        sum(s.false_negatives for s in scores),
    )


def score_folder(folder: Path, segment: Segmenter) -> dict[str, dict[str, list[MatchScores]]]:
    """Per source, the kiosk's and the baseline's scores of every pair in `folder`."""
    scores: dict[str, dict[str, list[MatchScores]]] = {}
    for name, image_path, mask_path in pair_paths(folder):
        truth = tifffile.imread(mask_path)
        kiosk = match_nuclei(truth, segment(image_path.read_bytes(), image_path.name))
        baseline = match_nuclei(truth, otsu_watershed(tifffile.imread(image_path)))
        source = scores.setdefault(name.split("_", 1)[0], {"kiosk": [], "baseline": []})
        source["kiosk"].append(kiosk)
        source["baseline"].append(baseline)
    return scores


def summarise(scores: dict[str, dict[str, list[MatchScores]]]) -> dict[str, dict[str, Summary]]:
    """Per source and over all ('all'), a Summary of the kiosk's and the baseline's scores."""
    summaries = {source: {method: Summary.of(values) for method, values in methods.items()}
                 for source, methods in scores.items()}
    summaries["all"] = {method: Summary.of([s for methods in scores.values() for s in methods[method]])
                        for method in ("kiosk", "baseline")}
    return summaries


def held_out_samples(count: int, shape: tuple[int, int] = (256, 256)) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` synthetic (image, labels) pairs from a seed training never uses."""
    rng = np.random.default_rng(HELD_OUT_SEED)
    return [make_sample(rng, shape) for _ in range(count)]


def tiff_bytes(image: np.ndarray) -> bytes:
    """An image as the bytes of a TIFF upload (uint16, clipped)."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.clip(image, 0, 65535).astype(np.uint16))
    return buffer.getvalue()


def _line(name: str, summary: Summary) -> str:
    return (f"{name:<28} {summary.images:>4} images  per-image mean F1@0.5 {summary.mean_f1:.3f}  "
            f"pooled F1 {summary.pooled.f1:.3f} (precision {summary.pooled.precision:.3f}, "
            f"recall {summary.pooled.recall:.3f})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_OUTPUT, help="SavedModel directory")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(DATA_ENV) or DEFAULT_DATA),
                        help=f"real data set folder with val/ pairs (default ${DATA_ENV} or {DEFAULT_DATA})")
    parser.add_argument("--count", type=int, default=8, help="held-out synthetic images per size")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    segment = kiosk_segmenter(load_model(args.model))
    figures: dict[str, object] = {"model": str(args.model)}

    if (args.data / "val").is_dir():
        summaries = summarise(score_folder(args.data / "val", segment))
        print(f"real validation images ({args.data / 'val'}), no scale given:")
        for source, methods in summaries.items():
            print(_line(f"  {source}: kiosk", methods["kiosk"]))
            print(_line(f"  {source}: Otsu + watershed", methods["baseline"]))
        figures["val"] = {source: {method: summary.as_dict() for method, summary in methods.items()}
                          for source, methods in summaries.items()}
    else:
        print(f"no real validation images: {args.data / 'val'} is not a folder (skipped)")

    for shape in ((256, 256), (512, 512)):
        samples = held_out_samples(args.count, shape)
        summary = Summary.of([match_nuclei(labels, segment(tiff_bytes(image), "synthetic.tif"))
                              for image, labels in samples])
        print(_line(f"held-out synthetic {shape[0]}x{shape[1]}", summary))
        figures[f"synthetic_{shape[0]}"] = summary.as_dict()

    truth = tifffile.imread(REAL_LABELS)
    summary = Summary.of([match_nuclei(truth, segment(REAL_IMAGE.read_bytes(), REAL_IMAGE.name))])
    print(_line(f"DSB2018 {REAL_IMAGE.name}", summary))
    figures["dsb2018_image"] = summary.as_dict()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
