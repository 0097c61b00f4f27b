"""Small real datasets the suite ships (see data/README.md for provenance)."""

from __future__ import annotations

import pathlib

import numpy as np

from mlsys_core import validate

DATA_DIR = pathlib.Path(__file__).resolve().parent.parent / "data"


def load_digits(flatten: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The UCI handwritten digits: images scaled to [0, 1] and int32 labels 0..9.

    Returns `(x, y)` with `x` of shape (1797, 64) float32 if `flatten`, else (1797, 8, 8).
    """
    validate.boolean("flatten", flatten)
    path = DATA_DIR / "digits.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; remake it with `python data/make_digits.py`")
    with np.load(path) as f:
        images, labels = f["images"], f["labels"]
    x = images.astype(np.float32) / 16.0
    return (x.reshape(len(x), -1) if flatten else x), labels.astype(np.int32)


def digits_split(seed: int = 0, test_size: int = 360):
    """(x_train, y_train, x_test, y_test) from the UCI digits, split by a seeded permutation."""
    validate.seed("seed", seed)
    x, y = load_digits()
    validate.integer("test_size", test_size, 1, len(x) - 1)
    order = np.random.default_rng(seed).permutation(len(x))
    train, test = order[:-test_size], order[-test_size:]
    return x[train], y[train], x[test], y[test]


def epoch_batches(x, y, batch: int, steps: int, seed: int = 0):
    """`steps` batches of `batch` examples, reshuffling each pass over (x, y) with `seed`.

    Args:
        x, y: the examples and their labels (same length).
        batch: examples per batch (>= 1).
        steps: how many batches (>= 1).
        seed: seeds the shuffles.
    """
    validate.seed("seed", seed)
    validate.integer("batch", batch, 1)
    validate.integer("steps", steps, 1)
    rng = np.random.default_rng(seed)
    out, order = [], np.array([], dtype=np.int64)
    while len(out) < steps:
        while len(order) < batch:
            order = np.concatenate([order, rng.permutation(len(x))])
        idx, order = order[:batch], order[batch:]
        out.append((x[idx], y[idx]))
    return out
