"""Train NuclearSegmentation on synthetic nuclei and export it as a SavedModel.

    python -m training.train_nuclear_segmentation [--output models/NuclearSegmentation/1] [--seed 0] [--epochs 30]

The model is a compact U-Net (four 2x poolings, so H and W must be multiples
of 16) mapping one normalised channel to two maps: `fgbg`, the foreground
probability, and `inner_distance` (see `training.targets`). The export serves
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

DEFAULT_OUTPUT = Path("models/NuclearSegmentation/1")
WIDTHS = (8, 16, 32, 64, 128)  # filters per U-Net level, full resolution first
SIZE_MULTIPLE = 2 ** (len(WIDTHS) - 1)
TRAIN_IMAGES = 400
CROP = 128
BATCH = 8
OUTPUTS = ("fgbg", "inner_distance")


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


def training_dataset(images: np.ndarray, targets: np.ndarray, seed: int) -> tf.data.Dataset:
    """Endless, shuffled, augmented batches of crops; deterministic given ``seed``."""
    data = tf.data.Dataset.from_tensor_slices((images, targets))
    data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat()
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    data = tf.data.Dataset.zip(seeds, data).map(
        lambda s, pair: _augment(s, *pair), num_parallel_calls=1, deterministic=True
    )
    return data.batch(BATCH, drop_remainder=True).prefetch(2)


class _Serving(tf.Module):
    """The exported graph: a named input and named outputs, independent of Keras."""

    def __init__(self, model: keras.Model):
        super().__init__()
        self.model = model

    # autograph=False: nothing to convert, and autograph re-reads this file's
    # source at export time, which breaks if the file was edited meanwhile
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32, name="image")], autograph=False)
    def serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = self.model(image, training=False)
        return {name: tf.identity(outputs[name], name=name) for name in OUTPUTS}


def export(model: keras.Model, output: Path) -> None:
    """Write ``model`` as a SavedModel whose ``serving_default`` takes `image` and returns `fgbg`, `inner_distance`."""
    # a fresh copy of the weights alone: exporting the trained model would carry
    # the optimizer's slot variables along and triple the size
    bare = build_model()
    bare.set_weights(model.get_weights())
    serving = _Serving(bare)
    tf.saved_model.save(serving, str(output), signatures={"serving_default": serving.serve})


def train(output: Path, seed: int, epochs: int, steps_per_epoch: int) -> keras.Model:
    """Generate the data, train from scratch with a cosine learning-rate decay, export to ``output``."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    started = time.perf_counter()
    images, targets = make_training_set(seed, TRAIN_IMAGES)
    print(f"generated {len(images)} training images in {time.perf_counter() - started:.0f} s", flush=True)

    model = build_model()
    schedule = keras.optimizers.schedules.CosineDecay(3e-3, epochs * steps_per_epoch, alpha=0.02)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss={"fgbg": "binary_crossentropy", "inner_distance": "mse"},
        # the distance error is numerically ~10x smaller than the cross-entropy
        loss_weights={"fgbg": 1.0, "inner_distance": 10.0},
    )
    model.fit(training_dataset(images, targets, seed), epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=2)
    export(model, output)
    print(f"exported to {output} after {time.perf_counter() - started:.0f} s", flush=True)
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="SavedModel directory (version folder)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, the weights and the augmentation")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--steps-per-epoch", type=int, default=32, help="batches of 8 crops (128 x 128) per epoch")
    args = parser.parse_args(argv)
    # the build machine has two cores; fixed pools also keep runs reproducible
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    train(args.output, args.seed, args.epochs, args.steps_per_epoch)


if __name__ == "__main__":
    main()
