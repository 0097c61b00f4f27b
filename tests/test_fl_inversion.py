"""Gradient inversion of one FedSGD update (`mlsys_core.fl.inversion`), at toy sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlsys_core.data import load_digits
from mlsys_core.fl import inversion
from mlsys_core.fl.fedavg import ModelConfig, init_params

X, Y = load_digits()
PARAMS = init_params(jax.random.key(0), ModelConfig())


def test_one_update_gives_away_the_label_and_the_digit():
    i = 17
    upd = inversion.update_of(PARAMS, jnp.asarray(X[i][None]), jnp.asarray(Y[i][None]))
    assert inversion.infer_label(upd) == Y[i]
    rec, curve = inversion.reconstruct(PARAMS, upd, int(Y[i]), jax.random.key(1), steps=100)
    assert curve[-1] < 1e-3 < curve[0]  # the gradients came to match
    assert inversion.psnr(rec, X[i]) > 30 > inversion.psnr(X.mean(0), X[i])
    assert np.all((np.asarray(rec) >= 0) & (np.asarray(rec) <= 1))


def test_clip_and_noise_bounds_the_norm_and_psnr_is_infinite_only_when_exact():
    upd = inversion.update_of(PARAMS, jnp.asarray(X[:3]), jnp.asarray(Y[:3]))
    clipped = inversion.clip_and_noise(upd, 0.01, 0.0, jax.random.key(0))
    norm = np.sqrt(sum(float(jnp.vdot(a, a)) for a in jax.tree.leaves(clipped)))
    assert norm == pytest.approx(0.01, rel=1e-4)
    assert inversion.psnr(X[0], X[0]) == float("inf") and inversion.psnr(np.zeros(64), np.ones(64)) == 0.0


def test_attack_over_seeds_the_sum_and_the_noise_hide_the_digit():
    study = inversion.attack_over_seeds((0,), group=4, steps=100)
    assert study.psnr.shape == (4, 1) and study.reconstructions.shape == (4, 1, 64)
    clear, dp, summed, both = study.psnr[:, 0]
    assert clear > 30 and study.label_correct[0, 0]
    assert max(dp, summed, both) < clear - 15
    with pytest.raises(ValueError, match="group"):
        inversion.attack_over_seeds((0,), group=1)


def test_clip_and_noise_and_the_study_check_their_scales():
    upd = {"w": jnp.ones(3)}
    with pytest.raises(ValueError, match="clip_norm must be > 0, got -1.0"):
        inversion.clip_and_noise(upd, -1.0, 0.0, jax.random.key(0))
    with pytest.raises(ValueError, match="noise_std must be >= 0, got -0.5"):
        inversion.clip_and_noise(upd, 1.0, -0.5, jax.random.key(0))
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        inversion.attack_over_seeds([0], steps=0)
