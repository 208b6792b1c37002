"""Training batches without TensorFlow: for Keras 3 on the JAX (or PyTorch) backend, as on a GPU machine.

``ferlite train`` feeds TensorFlow from ``tf.data`` (trainer/data.py). With ``KERAS_BACKEND=jax`` there is no
TensorFlow, so :class:`NumpyBatches` gives the same pipeline as a ``keras.utils.PyDataset``: a seeded shuffle
each epoch, the same Keras augmentation layers (``data.augmenter``, run by the backend, on the GPU when there
is one; on JAX compiled into one function, since run op by op their dispatches would cost more than a
training step), then random erasing and mixup drawn with numpy. The recipe is the same; the random draws are not the
``tf.data`` ones, so runs are reproducible per backend, not across backends.

Imported only when the backend is not TensorFlow; Keras is imported at module level.
"""

from __future__ import annotations

import math

import keras
import numpy as np


def erase_random_boxes(images: np.ndarray, rng: np.random.Generator, p: float = 0.5,
                       max_frac: float = 0.3) -> np.ndarray:
    """Erase one random rectangle per image with probability ``p`` (Zhong et al. 2017), filled with noise:
    ``data.random_erasing``'s draws (sides 10%..``max_frac`` of the image), from a numpy generator, in place."""
    n, h, w = images.shape[:3]
    rh = (rng.uniform(0.1, max_frac, n) * h).astype(int)
    rw = (rng.uniform(0.1, max_frac, n) * w).astype(int)
    y0 = (rng.uniform(size=n) * (h - rh)).astype(int)
    x0 = (rng.uniform(size=n) * (w - rw)).astype(int)
    for i in np.flatnonzero(rng.uniform(size=n) < p):
        patch = images[i, y0[i]:y0[i] + rh[i], x0[i]:x0[i] + rw[i]]
        patch[...] = rng.uniform(0, 255, patch.shape).astype(images.dtype)
    return images


def mix(images: np.ndarray, targets: np.ndarray, rng: np.random.Generator, alpha: float):
    """Mixup as ``data.mix_batch``: each image and target blended with the mirrored position's,
    ``lam ~ Beta(alpha, alpha)`` per image, from a numpy generator."""
    lam = rng.beta(alpha, alpha, len(images)).astype(np.float32)
    return (lam[:, None, None, None] * images + (1 - lam)[:, None, None, None] * images[::-1],
            lam[:, None] * targets + (1 - lam)[:, None] * targets[::-1])


def compiled(augment, shape: tuple):
    """``augment(images, training=True)`` for batches of images of ``shape``; on JAX one jitted call per batch
    (the layers' ``stateless_call``, their seed states carried from batch to batch), else the layers as they are."""
    augment.build((None, *shape))
    if keras.backend.backend() != "jax":
        return lambda images: augment(images, training=True)
    import jax

    state = [v.value for v in augment.non_trainable_variables]  # the seed generators' states
    step = jax.jit(lambda state, images: augment.stateless_call([], state, images, training=True))

    def call(images):
        nonlocal state
        out, state = step(state, images)
        return out

    return call


class NumpyBatches(keras.utils.PyDataset):
    """(images, targets) batches of one split: float32 pixels 0..255, shuffled and augmented when training."""

    def __init__(self, x: np.ndarray, targets: np.ndarray, batch: int, train: bool, seed: int,
                 erase: float = 0.5, augment=None, mixup: float = 0.0):
        """``augment``: the Keras augmentation layers (``data.augmenter``), applied when training; ``mixup``:
        Beta's alpha (0 = off)."""
        super().__init__()
        self.x, self.targets, self.batch, self.train, self.erase = x, targets, batch, train, erase
        self.mixup = mixup
        self.rng = np.random.default_rng(seed)
        self.augment = compiled(augment, x.shape[1:]) if train and augment is not None else None
        self.order = self.rng.permutation(len(x)) if train else np.arange(len(x))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch:(index + 1) * self.batch]
        images = self.x[rows].astype(np.float32)
        if self.augment is not None:
            images = np.clip(keras.ops.convert_to_numpy(self.augment(images)), 0, 255)
        if self.train and self.erase > 0:
            images = erase_random_boxes(images, self.rng, p=self.erase)  # a fresh array: erased in place
        if self.train and self.mixup > 0:
            return mix(images, self.targets[rows], self.rng, self.mixup)
        return images, self.targets[rows]

    def on_epoch_end(self) -> None:
        if self.train:
            self.order = self.rng.permutation(len(self.x))
