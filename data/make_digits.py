"""Remake data/digits.npz from the copy of the UCI handwritten-digits test set that scikit-learn ships.

Provenance: E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine
Learning Repository (1998), doi:10.24432/C50P49, licence CC BY 4.0. 1,797 images of 8x8 pixels,
each pixel a count 0..16 of set bits in a 4x4 block of the 32x32 original; labels 0..9.

Run: .venv/bin/python data/make_digits.py
"""

import pathlib

import numpy as np
from sklearn.datasets import load_digits

OUT = pathlib.Path(__file__).with_name("digits.npz")


def main() -> None:
    digits = load_digits()
    images = digits.images.astype(np.uint8)  # (1797, 8, 8), values 0..16
    labels = digits.target.astype(np.uint8)  # (1797,), values 0..9
    np.savez_compressed(OUT, images=images, labels=labels)
    print(f"wrote {OUT.name}: images {images.shape}, labels {labels.shape}")


if __name__ == "__main__":
    main()
