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
