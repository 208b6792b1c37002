"""Load a ferlite data set into arrays and build tf.data pipelines with augmentation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ferlite.errors import DatasetError
from ferlite.trainer.labels import LABELS


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # (N, size, size, 1) uint8
    y: np.ndarray  # (N,) int class index
    soft: np.ndarray | None  # (N, classes) vote distribution, when the data set has votes


def default_split_names(splits: set[str]) -> tuple[str, str]:
    """FER2013's Training/PublicTest when present, else train/val."""
    if "Training" in splits:
        return "Training", "PublicTest"
    return "train", "val"


def class_names(df) -> list[str]:
    present = set(df["label"].dropna())
    unknown = present - set(LABELS)
    if unknown:
        raise DatasetError(f"labels outside the vocabulary: {', '.join(sorted(unknown))}")
    return [c for c in LABELS if c in present]


def load_split(df, split: str, classes: list[str], size: int, progress: bool = True) -> Split:
    import cv2
    from tqdm import tqdm

    part = df[df["split"] == split]
    if part.empty:
        raise DatasetError(f"the data set has no rows in split {split!r} (splits: {sorted(set(df['split']))})")
    if "status" in part.columns:
        part = part[part["status"] == "kept"]
    part = part[part["label"].isin(classes)]
    x = np.empty((len(part), size, size, 1), np.uint8)
    for i, f in enumerate(tqdm(part["file"], desc=f"load {split}", disable=not progress, leave=False)):
        img = cv2.imread(f, cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise DatasetError(f"{f}: cannot read image")
        if img.shape != (size, size):
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        x[i, :, :, 0] = img
    y = np.array([classes.index(c) for c in part["label"]], np.int64)
    vote_cols = [f"votes_{c}" for c in classes]
    soft = None
    if all(c in part.columns for c in vote_cols):
        v = part[vote_cols].to_numpy(np.float32)
        total = v.sum(1, keepdims=True)
        soft = np.where(total > 0, v / np.maximum(total, 1e-9), np.eye(len(classes), dtype=np.float32)[y])
    return Split(x, y, soft)


def augmenter(seed: int, strength: float = 1.0):
    """Keras preprocessing layers applied per batch in tf.data (never inside the exported model)."""
    from ferlite.trainer.model import import_keras

    keras = import_keras()
    from keras import layers

    s = strength
    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomTranslation(0.1 * s, 0.1 * s, fill_mode="nearest", seed=seed + 1),
        layers.RandomRotation(0.04 * s, fill_mode="nearest", seed=seed + 2),
        layers.RandomZoom(0.1 * s, fill_mode="nearest", seed=seed + 3),
        layers.RandomContrast(0.3 * s, seed=seed + 4),
        layers.RandomBrightness(0.2 * s, value_range=(0, 255), seed=seed + 5),
    ], name="augment")


def random_erasing(images, rng_seed, p: float = 0.5, max_frac: float = 0.3):
    """Erase one random rectangle per image with probability ``p`` (Zhong et al. 2017), filled with noise.

    The draws depend on ``rng_seed`` alone (stateless random ops): an int, or a pair of ints such as
    (seed, batch draw) in a pipeline. The same seed erases the same rectangles with the same noise."""
    import tensorflow as tf

    seed = tf.reshape(tf.cast(rng_seed, tf.int64), [-1])
    seed = tf.concat([seed, tf.zeros([2], tf.int64)], 0)[:2]
    s_rh, s_rw, s_y0, s_x0, s_apply, s_fill = tf.unstack(tf.random.experimental.stateless_split(seed, 6))
    n = tf.shape(images)[0]
    h, w = images.shape[1], images.shape[2]
    rh = tf.cast(tf.random.stateless_uniform([n], s_rh, 0.1, max_frac) * h, tf.int32)
    rw = tf.cast(tf.random.stateless_uniform([n], s_rw, 0.1, max_frac) * w, tf.int32)
    y0 = tf.cast(tf.random.stateless_uniform([n], s_y0) * tf.cast(h - rh, tf.float32), tf.int32)
    x0 = tf.cast(tf.random.stateless_uniform([n], s_x0) * tf.cast(w - rw, tf.float32), tf.int32)
    yy = tf.range(h)[None, :, None]
    xx = tf.range(w)[None, None, :]
    box = ((yy >= y0[:, None, None]) & (yy < (y0 + rh)[:, None, None])
           & (xx >= x0[:, None, None]) & (xx < (x0 + rw)[:, None, None]))
    apply = tf.random.stateless_uniform([n], s_apply) < p
    mask = box & apply[:, None, None]
    fill = tf.cast(tf.random.stateless_uniform(tf.shape(images), s_fill, 0, 255), images.dtype)
    return tf.where(mask[..., None], fill, images)


def mix_batch(images, targets, rng_seed, alpha: float):
    """Mixup (Zhang et al. 2018): each image and its target blended with the batch's image in the mirrored
    position, the weight ``lam ~ Beta(alpha, alpha)`` drawn per image from ``rng_seed`` (stateless ops)."""
    import tensorflow as tf

    seed = tf.reshape(tf.cast(rng_seed, tf.int64), [-1])
    seed = tf.concat([seed, tf.zeros([2], tf.int64)], 0)[:2]
    s_a, s_b = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    n = tf.shape(images)[:1]
    a = tf.random.stateless_gamma(n, s_a, alpha)
    lam = a / (a + tf.random.stateless_gamma(n, s_b, alpha))
    targets = tf.cast(targets, tf.float32)
    mixed_x = lam[:, None, None, None] * images + (1 - lam)[:, None, None, None] * tf.reverse(images, [0])
    return mixed_x, lam[:, None] * targets + (1 - lam)[:, None] * tf.reverse(targets, [0])


def make_dataset(split: Split, targets: np.ndarray, batch: int, train: bool, seed: int,
                 erase: float = 0.5, aug_strength: float = 1.0, mixup: float = 0.0):
    """The batches of one split: a ``tf.data`` pipeline on TensorFlow; on another Keras backend (JAX on a GPU
    machine) the same recipe as a ``keras.utils.PyDataset`` (trainer/batches.py). Training batches are
    shuffled, augmented, erased and, with ``mixup`` (Beta's alpha; 0 = off), mixed, in that order."""
    from ferlite.trainer.model import import_keras

    if import_keras().backend.backend() != "tensorflow":
        from ferlite.trainer.batches import NumpyBatches

        augment = augmenter(seed, aug_strength) if train and aug_strength > 0 else None
        return NumpyBatches(split.x, targets, batch, train, seed, erase if aug_strength > 0 else 0.0, augment,
                            mixup if train else 0.0)
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((split.x, targets))
    if train:
        ds = ds.shuffle(len(split.x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch)
    ds = ds.map(lambda x, t: (tf.cast(x, tf.float32), t), num_parallel_calls=tf.data.AUTOTUNE)
    if train and aug_strength > 0:
        aug = augmenter(seed, aug_strength)
        ds = ds.map(lambda x, t: (tf.clip_by_value(aug(x, training=True), 0, 255), t),
                    num_parallel_calls=tf.data.AUTOTUNE)
        if erase > 0:
            # One seed per batch from a seeded stream that differs each epoch: reproducible, never repeated.
            draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            ds = tf.data.Dataset.zip(ds, draws).map(
                lambda xt, r: (random_erasing(xt[0], tf.stack([tf.constant(seed, tf.int64), r]), p=erase), xt[1]),
                num_parallel_calls=tf.data.AUTOTUNE)
    if train and mixup > 0:
        draws = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, draws).map(
            lambda xt, r: mix_batch(xt[0], xt[1], tf.stack([tf.constant(seed, tf.int64), r]), mixup),
            num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
