"""Train NuclearSegmentation on real and synthetic nuclei and export it as a SavedModel.

    python -m training.train_nuclear_segmentation [--data DIR] [--output models/NuclearSegmentation/1]
                                                  [--seed 0] [--epochs 50]

`--data` (or `KIOSK_TRAIN_DATA`) names a folder laid out as `../shared/datasets/nuclei/`
(`train/NAME_img.tif` + `NAME_mask.tif`, see `training.real_data`); its training pairs
are mixed with the synthetic images, each source drawn with a fixed weight. Without
it the model is trained on synthetic images alone.

The model is a compact U-Net (four 2x poolings, so H and W must be multiples
of 16) mapping one normalised channel to two maps: `fgbg`, the foreground
probability, and `inner_distance` (see `training.targets`), at a scale where the median nucleus
is `MODEL_DIAMETER` px across. The export (`keras.export.ExportArchive`, so that
TF-Serving's session loader runs it) serves
`serving_default(image float32 [N, H, W, 1]) -> {fgbg, inner_distance}`, each
float32 [N, H, W, 1].
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np

# quiet TensorFlow's C++ start-up logs; must be set before it loads
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from training.dataset import make_training_set  # noqa: E402
from training.real_data import make_real_training_set  # noqa: E402

DEFAULT_OUTPUT = Path("models/NuclearSegmentation/1")
DATA_ENV = "KIOSK_TRAIN_DATA"
WIDTHS = (16, 24, 48, 96, 192)  # filters per U-Net level, full resolution first
SIZE_MULTIPLE = 2 ** (len(WIDTHS) - 1)
TRAIN_IMAGES = 400
CROP = 128
BATCH = 8
OUTPUTS = ("fgbg", "inner_distance")
# how often each source is drawn: the few large-nuclei S-BSST265 images weigh as much
# as the many DSB 2018 tiles, synthetic images cover what neither shows
SOURCE_WEIGHTS = {"synthetic": 0.2, "dsb2018": 0.45, "bsst265": 0.35}


def _conv_block(x: keras.KerasTensor, width: int) -> keras.KerasTensor:
    for _ in range(2):
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    return x


def build_model(widths: tuple[int, ...] = WIDTHS) -> keras.Model:
    """A fully convolutional U-Net: (N, H, W, 1) -> {'fgbg', 'inner_distance'} each (N, H, W, 1) in [0, 1]."""
    image = keras.Input((None, None, 1), name="image")
    x, skips = image, []
    for width in widths[:-1]:
        x = _conv_block(x, width)
        skips.append(x)
        x = keras.layers.MaxPooling2D()(x)
    x = _conv_block(x, widths[-1])
    for width, skip in zip(reversed(widths[:-1]), reversed(skips)):
        x = keras.layers.UpSampling2D()(x)
        x = _conv_block(keras.layers.Concatenate()([x, skip]), width)
    heads = {name: keras.layers.Conv2D(1, 1, activation="sigmoid", name=name)(x) for name in OUTPUTS}
    return keras.Model(image, heads, name="nuclear_segmentation")


def _augment(seed: tf.Tensor, image: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Random crop, flips, quarter turns and contrast change, all from one stateless seed."""
    seeds = tf.random.experimental.stateless_split(seed, 5)
    stacked = tf.image.stateless_random_crop(tf.concat([image, target], -1), (CROP, CROP, 3), seeds[0])
    stacked = tf.image.stateless_random_flip_left_right(stacked, seeds[1])
    turns = tf.random.stateless_uniform((), seeds[2], 0, 4, tf.int32)
    stacked = tf.image.rot90(stacked, turns)
    image, target = stacked[..., :1], stacked[..., 1:]
    # gamma shifts dim against bright nuclei; the scale mimics percentiles that
    # land a little off (e.g. a tile holding one very bright nucleus)
    gamma = tf.exp(tf.random.stateless_uniform((), seeds[3], -0.4, 0.4))
    scale = tf.random.stateless_uniform((), seeds[4], 0.75, 1.25)
    image = scale * tf.pow(image, gamma)
    return image, {"fgbg": target[..., :1], "inner_distance": target[..., 1:]}


def _endless(images: np.ndarray, targets: np.ndarray, seed: int) -> tf.data.Dataset:
    """(image, target) pairs in float32, reshuffled every pass; only indices are shuffled, so
    the pairs are held once, in their own dtype (the real patches are float16)."""
    images, targets = tf.constant(images), tf.constant(targets)
    order = tf.data.Dataset.range(len(images)).shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return order.repeat().map(lambda i: (tf.cast(images[i], tf.float32), tf.cast(targets[i], tf.float32)))


def training_dataset(images: np.ndarray, targets: np.ndarray, seed: int,
                     sources: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> tf.data.Dataset:
    """Endless, shuffled, augmented batches of crops; deterministic given ``seed``.

    ``images``/``targets`` are the synthetic set; ``sources`` adds real patches per
    source, drawn with `SOURCE_WEIGHTS`.
    """
    data = _endless(images, targets, seed)
    if sources:
        names = ["synthetic", *sources]
        parts = [data, *(_endless(*sources[name], seed + i) for i, name in enumerate(sources, start=1))]
        weights = [SOURCE_WEIGHTS.get(name, SOURCE_WEIGHTS["dsb2018"]) for name in names]
        data = tf.data.Dataset.sample_from_datasets(parts, weights=weights, seed=seed)
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    data = tf.data.Dataset.zip(seeds, data).map(
        lambda s, pair: _augment(s, *pair), num_parallel_calls=1, deterministic=True
    )
    return data.batch(BATCH, drop_remainder=True).prefetch(2)


def export(model: keras.Model, output: Path) -> None:
    """Write ``model`` as a SavedModel whose ``serving_default`` takes `image` and returns `fgbg`, `inner_distance`.

    ExportArchive saves the variables the endpoint reads (not the optimizer's) so that a
    session loader (TF-Serving, `saved_model_cli run`) restores them; a Keras model in a
    `tf.Module` saved with `tf.saved_model.save` is not (keras-team/keras#20095).
    The model is not `track`ed as well: that would save every variable twice.
    """
    archive = keras.export.ExportArchive()
    archive.add_endpoint(
        name="serving_default",
        fn=lambda image: dict(model(image, training=False)),
        input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32, name="image")],
    )
    archive.write_out(str(output), verbose=False)


def train(output: Path, seed: int, epochs: int, steps_per_epoch: int, data: Path | None = None,
          checkpoint: Path | None = None) -> keras.Model:
    """Generate the data, train from scratch with a cosine learning-rate decay, export to ``output``.

    ``data``: a real data set folder whose `train/` pairs join the synthetic images.
    ``checkpoint``: weights file written after every epoch.
    """
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    started = time.perf_counter()
    images, targets = make_training_set(seed, TRAIN_IMAGES)
    print(f"generated {len(images)} training images in {time.perf_counter() - started:.0f} s", flush=True)
    sources = make_real_training_set(data / "train") if data else None
    for name, (patches, _) in (sources or {}).items():
        print(f"{name}: {len(patches)} patches of {data / 'train'}", flush=True)

    model = build_model()
    schedule = keras.optimizers.schedules.CosineDecay(3e-3, epochs * steps_per_epoch, alpha=0.02)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss={"fgbg": "binary_crossentropy", "inner_distance": "mse"},
        # the distance error is numerically ~10x smaller than the cross-entropy
        loss_weights={"fgbg": 1.0, "inner_distance": 10.0},
    )
    callbacks = [keras.callbacks.ModelCheckpoint(str(checkpoint), save_weights_only=True)] if checkpoint else []
    batches = training_dataset(images, targets, seed, sources)
    del images, targets, sources  # the data set holds its own copy
    model.fit(batches, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=2, callbacks=callbacks)
    export(model, output)
    print(f"exported to {output} after {time.perf_counter() - started:.0f} s", flush=True)
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=os.environ.get(DATA_ENV) or None,
                        help=f"real data set folder with train/ pairs (default: ${DATA_ENV}; none: synthetic only)")
    parser.add_argument("--checkpoint", type=Path, help="weights file (.weights.h5) written after every epoch")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="SavedModel directory (version folder)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, the weights and the augmentation")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--steps-per-epoch", type=int, default=48, help="batches of 8 crops (128 x 128) per epoch")
    args = parser.parse_args(argv)
    # the build machine has two cores; fixed pools also keep runs reproducible
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    train(args.output, args.seed, args.epochs, args.steps_per_epoch, args.data, args.checkpoint)


if __name__ == "__main__":
    main()
