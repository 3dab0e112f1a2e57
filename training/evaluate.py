"""Score the exported NuclearSegmentation model on images it never saw.

    python -m training.evaluate [--model models/NuclearSegmentation/1] [--count 8] [--overlay build/real_overlay.png]

Runs the SavedModel on whole images (padded to multiples of 16, no tiling)
followed by `labels_from_predictions`, on held-out synthetic images (a seed
range training never uses) and on the real image in `training/data/`, and
prints F1 at IoU 0.5 for both.
"""

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads
import tensorflow as tf  # noqa: E402
import tifffile  # noqa: E402
from PIL import Image  # noqa: E402
from skimage.segmentation import find_boundaries  # noqa: E402

from consumers.processing.normalize import normalize  # noqa: E402
from consumers.processing.postprocess import labels_from_predictions  # noqa: E402
from training.metrics import MatchScores, match_nuclei  # noqa: E402
from training.synthetic import make_sample  # noqa: E402
from training.train_nuclear_segmentation import DEFAULT_OUTPUT, SIZE_MULTIPLE  # noqa: E402

HELD_OUT_SEED = 1_000_003  # training seeds are small integers
DATA = Path(__file__).parent / "data"
REAL_IMAGE = DATA / "dsb2018_nuclei.tif"
REAL_LABELS = DATA / "dsb2018_nuclei_labels.tif"

Predictor = Callable[..., dict[str, tf.Tensor]]


def load_model(path: Path = DEFAULT_OUTPUT) -> Predictor:
    """The `serving_default` signature of the SavedModel at ``path``."""
    return tf.saved_model.load(str(path)).signatures["serving_default"]


def segment(predict: Predictor, image: np.ndarray, **postprocess: float) -> np.ndarray:
    """Instance labels (H, W) of one raw 2-D image: normalise, pad, predict, crop, post-process."""
    height, width = image.shape
    pad = [(0, -height % SIZE_MULTIPLE), (0, -width % SIZE_MULTIPLE), (0, 0)]
    batch = np.pad(normalize(image[..., None]), pad, mode="reflect")[None]
    maps = predict(image=tf.constant(batch))
    return labels_from_predictions(
        maps["fgbg"].numpy()[0, :height, :width, 0],
        maps["inner_distance"].numpy()[0, :height, :width, 0],
        **postprocess,
    )


def held_out_samples(count: int, shape: tuple[int, int] = (256, 256)) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` synthetic (image, labels) pairs from a seed training never uses."""
    rng = np.random.default_rng(HELD_OUT_SEED)
    return [make_sample(rng, shape) for _ in range(count)]


def pooled(scores: list[MatchScores]) -> MatchScores:
    """One score over many images: matches, misses and extras summed."""
    return MatchScores(
        sum(s.true_positives for s in scores),
        sum(s.false_positives for s in scores),
        sum(s.false_negatives for s in scores),
    )


def save_overlay(image: np.ndarray, labels: np.ndarray, path: Path) -> None:
    """PNG of the normalised image with predicted outlines in red, for a person to judge."""
    grey = (normalize(image[..., None])[..., 0] * 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    rgb[find_boundaries(labels, mode="inner")] = (255, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


def _describe(name: str, scores: MatchScores) -> str:
    return (
        f"{name}: F1@0.5 {scores.f1:.3f} (precision {scores.precision:.3f}, recall {scores.recall:.3f}; "
        f"{scores.true_positives} matched, {scores.false_positives} extra, {scores.false_negatives} missed)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_OUTPUT, help="SavedModel directory")
    parser.add_argument("--count", type=int, default=8, help="held-out synthetic images per size")
    parser.add_argument("--overlay", type=Path, default=Path("build/real_overlay.png"), help="where to save the real-image overlay")
    args = parser.parse_args(argv)
    predict = load_model(args.model)

    for shape in ((256, 256), (512, 512)):
        scores = [match_nuclei(labels, segment(predict, image)) for image, labels in held_out_samples(args.count, shape)]
        print(_describe(f"held-out synthetic {shape[0]}x{shape[1]} x{args.count}", pooled(scores)))
        print(f"  per-image F1: {' '.join(f'{s.f1:.3f}' for s in scores)}")

    image, truth = tifffile.imread(REAL_IMAGE), tifffile.imread(REAL_LABELS)
    labels = segment(predict, image)
    areas = np.bincount(labels.ravel())[1:]
    print(_describe(f"real image {REAL_IMAGE.name}", match_nuclei(truth, labels)))
    print(f"  {labels.max()} nuclei found ({len(np.unique(truth)) - 1} annotated), mean area {areas.mean():.0f} px")
    save_overlay(image, labels, args.overlay)
    print(f"  overlay: {args.overlay}")


if __name__ == "__main__":
    main()
