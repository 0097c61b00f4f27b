"""DP-FedAvg: clipping, noise scale, the plain-FedAvg limit, config checks, and the accountant."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlsys_core.fl import dp, fedavg

MODEL = fedavg.ModelConfig(num_features=6, hidden=5, num_classes=3, batch_size=4, epochs=1, learning_rate=0.5)


def _clients(n=12, examples=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n * examples, MODEL.num_features)).astype(np.float32)
    y = rng.integers(0, MODEL.num_classes, n * examples)
    parts = [np.arange(k * examples, (k + 1) * examples) for k in range(n)]
    return fedavg.pad_clients(x, y, parts, MODEL.batch_size)


def _stacked_updates(seed, clients=50, scale=1.0):
    rng = np.random.default_rng(seed)
    return {"w": jnp.asarray(rng.normal(size=(clients, 7, 3)) * scale * rng.lognormal(size=(clients, 1, 1))),
            "b": jnp.asarray(rng.normal(size=(clients, 3)) * scale)}


@pytest.mark.parametrize("clip_norm", [0.05, 1.0, 30.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_clipped_update_has_norm_at_most_c_and_small_ones_are_untouched(clip_norm, seed):
    updates = _stacked_updates(seed)
    norms = np.asarray(jax.vmap(optax.tree.norm)(updates))
    clipped = dp.clip_updates(updates, clip_norm)
    clipped_norms = np.asarray(jax.vmap(optax.tree.norm)(clipped))
    assert np.all(clipped_norms <= clip_norm * (1 + 1e-5))
    small = norms <= clip_norm
    np.testing.assert_allclose(clipped_norms[small], norms[small], rtol=1e-6)
    np.testing.assert_allclose(clipped_norms[~small], clip_norm, rtol=1e-5)
    # clipping scales the whole pytree by one factor: the direction is kept
    ratio = np.asarray(clipped["w"]) / np.asarray(updates["w"])
    np.testing.assert_allclose(ratio, ratio[:, :1, :1] * np.ones_like(ratio), rtol=1e-5)


def test_no_noise_and_no_clipping_with_everyone_sampled_is_plain_fedavg():
    data = _clients()
    params = fedavg.init_params(jax.random.key(0), MODEL)
    plain = fedavg.vmap_round(params, data, np.ones(len(data.num_examples), np.float32), MODEL)
    private, count = dp.dp_fedavg_round(params, data, jax.random.key(3), MODEL, dp.DPConfig(1e9, 0.0, 1.0))
    assert count == len(data.num_examples)
    for k in plain:
        np.testing.assert_allclose(private[k], plain[k], atol=1e-6)


def test_the_rounds_noise_has_std_z_c_over_the_expected_clients():
    data = _clients(n=40)
    params = fedavg.init_params(jax.random.key(0), MODEL)
    cfg = dp.DPConfig(clip_norm=0.3, noise_multiplier=2.0, sampling_rate=0.25)
    key = jax.random.key(7)
    noisy, n1 = dp.dp_fedavg_round(params, data, key, MODEL, cfg)
    quiet, n2 = dp.dp_fedavg_round(params, data, key, MODEL, dp.DPConfig(0.3, 0.0, 0.25))
    assert n1 == n2  # same key: same sample, so the difference is the noise alone
    noise = np.concatenate([np.ravel(noisy[k] - quiet[k]) for k in noisy])
    expected = cfg.noise_std / (cfg.sampling_rate * 40)
    assert abs(noise.mean()) < 4 * expected / math.sqrt(noise.size)
    assert abs(noise.std() / expected - 1) < 0.2  # 113 coordinates: the sample std is within ~7% (1 sd)


def test_noisy_mean_noise_std_over_many_coordinates():
    zeros = {"w": jnp.zeros((10, 200, 100))}
    out = dp.noisy_mean(zeros, jnp.ones(10), jax.random.key(1), noise_std=1.5, expected_clients=30.0)
    assert abs(float(jnp.std(out["w"])) / (1.5 / 30) - 1) < 0.02  # 20,000 draws: sd of the ratio ~0.5%
    ones = {"w": jnp.ones((10, 4))}
    included = jnp.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 1], jnp.float32)
    np.testing.assert_allclose(dp.noisy_mean(ones, included, jax.random.key(0), 0.0, 8.0)["w"], 0.5)


def test_poisson_sampling_takes_each_client_with_probability_q():
    counts = [float(dp.poisson_sample(k, 1000, 0.1).sum()) for k in jax.random.split(jax.random.key(0), 50)]
    assert abs(np.mean(counts) - 100) < 4 * math.sqrt(1000 * 0.1 * 0.9 / 50)
    assert dp.sample_capacity(1000, 0.1) >= 100 + 6 * math.sqrt(90) and dp.sample_capacity(10, 1.0) == 10


@pytest.mark.parametrize(
    "kw, match",
    [({"clip_norm": 0.0}, "clip_norm"), ({"clip_norm": -1.0}, "clip_norm"), ({"clip_norm": math.inf}, "clip_norm"),
     ({"noise_multiplier": -0.1}, "noise_multiplier"), ({"sampling_rate": 0.0}, "sampling_rate"),
     ({"sampling_rate": 1.5}, "sampling_rate"), ({"sampling_rate": math.nan}, "sampling_rate")],
)
def test_bad_dp_parameters_raise_a_value_error_naming_them(kw, match):
    with pytest.raises(ValueError, match=match):
        dp.DPConfig(**kw)


def test_wrong_kinds_and_bad_accounting_arguments_raise():
    with pytest.raises(TypeError, match="noise_multiplier"):
        dp.DPConfig(noise_multiplier="1")
    with pytest.raises(ValueError, match="delta"):
        dp.epsilon(0.1, 1.0, 10, 0.0)
    with pytest.raises(ValueError, match="rounds"):
        dp.epsilon(0.1, 1.0, 0, 1e-5)
    with pytest.raises(ValueError, match="accountant"):
        dp.epsilon(0.1, 1.0, 10, 1e-5, accountant="moments")


def test_config_stores_python_floats():
    cfg = dp.DPConfig(np.float64(0.5), np.float32(2.0), np.float64(0.1))
    assert type(cfg.noise_std) is float and cfg.noise_std == pytest.approx(1.0)


def test_abadi_2016_epsilon_is_reproduced_by_the_moments_accountant_bound():
    # Abadi et al., CCS 2016, Section 3.1: q = 0.01, sigma = 4, delta = 1e-5, T = 10,000 gives epsilon ~ 1.26
    # with the moments accountant. dp-accounting's RDP values with the same tail bound give it within 1%.
    assert dp.moments_accountant_epsilon(0.01, 4.0, 10_000, 1e-5) == pytest.approx(1.26, rel=0.01)
    # dp-accounting's own conversion (Canonne et al. 2020) and the PLD accountant are tighter, in that order
    rdp_eps = dp.epsilon(0.01, 4.0, 10_000, 1e-5)
    pld_eps = dp.epsilon(0.01, 4.0, 10_000, 1e-5, accountant="pld")
    assert 0.95 < rdp_eps < 1.1 and 0.85 < pld_eps < rdp_eps


def test_epsilon_falls_with_noise_grows_with_rounds_and_is_infinite_without_noise():
    assert dp.epsilon(0.2, 0.0, 30, 1e-4) == math.inf
    by_z = [dp.epsilon(0.2, z, 30, 1e-4) for z in (0.8, 1.0, 2.0, 4.0)]
    assert all(a > b for a, b in zip(by_z, by_z[1:]))
    assert dp.epsilon(0.2, 1.0, 60, 1e-4) > by_z[1] > dp.epsilon(0.2, 1.0, 10, 1e-4)
