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


def test_the_accountant_takes_numpy_scalars():
    """dp-accounting refuses a NumPy int as the count of rounds; the checked Python value is what it gets."""
    assert dp.epsilon(np.float64(0.1), np.float32(1.0), np.int64(10), 1e-5) == dp.epsilon(0.1, 1.0, 10, 1e-5)


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


@pytest.mark.parametrize("clip", [-1.0, 0.0, float("nan")])
def test_clipping_refuses_a_norm_that_is_not_positive(clip):
    """A negative C would flip the update's sign; 0 would erase it."""
    with pytest.raises(ValueError, match="clip_norm"):
        dp.clip_update({"w": jnp.ones(3)}, clip)
    with pytest.raises(ValueError, match="clip_norm"):
        dp.clip_updates(_stacked_updates(0), clip)
    with pytest.raises(TypeError, match="clip_norm must be a number"):
        dp.clip_update({"w": jnp.ones(3)}, "1")


@pytest.mark.parametrize("update, error, said", [
    (None, ValueError, r"update must be a pytree of arrays of numbers, got None \(no arrays in it\)"),
    ("text", TypeError, "update must be an array of numbers"),
    ({"w": jnp.array([1.0, jnp.nan])}, ValueError, r"update\['w'\] must hold finite numbers; update\['w'\]\[1\]"),
])
def test_clipping_refuses_an_update_that_is_not_arrays_of_finite_numbers(update, error, said):
    """None, a NaN and a string are refused, each naming the update, not passed through or failing deep inside."""
    with pytest.raises(error, match=said):
        dp.clip_update(update, 1.0)


@pytest.mark.parametrize("rate", [2.0, -0.1, float("nan")])
def test_poisson_sampling_refuses_a_rate_outside_0_1(rate):
    """A rate above 1 is refused, not read as "sample every client"."""
    with pytest.raises(ValueError, match="sampling_rate"):
        dp.poisson_sample(jax.random.key(0), 10, rate)
    with pytest.raises(ValueError, match="sampling_rate"):
        dp.sample_capacity(10, rate)


def test_poisson_sampling_and_noise_check_their_counts_and_scales():
    with pytest.raises(TypeError, match="num_clients must be an int, got 10.5"):
        dp.poisson_sample(jax.random.key(0), 10.5, 0.1)
    with pytest.raises(ValueError, match="num_clients must be >= 0, got -1"):
        dp.sample_capacity(-1, 0.1)
    zeros = {"w": jnp.zeros((4, 3))}
    with pytest.raises(ValueError, match="noise_std must be >= 0, got -1.0"):
        dp.noisy_mean(zeros, jnp.ones(4), jax.random.key(0), -1.0, 4.0)
    with pytest.raises(ValueError, match="expected_clients must be > 0, got 0.0"):
        dp.noisy_mean(zeros, jnp.ones(4), jax.random.key(0), 1.0, 0.0)


def test_a_dp_round_refuses_a_string_where_a_config_belongs():
    data = _clients()
    with pytest.raises(TypeError, match="dp must be a dp.DPConfig, got 'strong'"):
        dp.dp_fedavg_round({}, data, jax.random.key(0), MODEL, "strong")
    with pytest.raises(TypeError, match="model must be a fedavg.ModelConfig, got 'mlp'"):
        dp.dp_fedavg(fedavg.init_params(jax.random.key(0), MODEL), data, jax.random.key(0), "mlp", dp.DPConfig(), 2)
    with pytest.raises(ValueError, match="server_learning_rate must be > 0, got -1.0"):
        dp.dp_fedavg_round({}, data, jax.random.key(0), MODEL, dp.DPConfig(), server_learning_rate=-1.0)
