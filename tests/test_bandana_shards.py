"""Fixed-size SHARDS (s_max) beside SHARDS-adj: exact without sampling, accurate with few keys."""

import numpy as np
import pytest

from mlsys_core.bandana import mrc as M


@pytest.fixture(scope="module")
def zipf_keys():
    rng = np.random.default_rng(0)
    universe = 50_000
    return rng.permutation(universe)[rng.zipf(1.2, 300_000) % universe]


def test_fixed_size_shards_with_room_for_every_key_is_the_exact_curve(zipf_keys):
    sizes = np.linspace(0.01, 1.0, 30) * np.unique(zipf_keys).size
    exact = M.hit_rate_curve(zipf_keys, sizes)
    assert np.allclose(M.shards_fixed_hit_rate_curve(zipf_keys, sizes, s_max=10**7, adjust=False), exact)


def test_fixed_size_shards_estimates_the_curve_from_a_few_thousand_keys(zipf_keys):
    sizes = np.linspace(0.01, 1.0, 30) * np.unique(zipf_keys).size
    exact = M.hit_rate_curve(zipf_keys, sizes)
    adj = [np.abs(M.shards_fixed_hit_rate_curve(zipf_keys, sizes, 2000, seed=s) - exact).mean() for s in range(4)]
    raw = [np.abs(M.shards_fixed_hit_rate_curve(zipf_keys, sizes, 2000, seed=s, adjust=False) - exact).mean()
           for s in range(4)]
    assert np.mean(adj) < 0.01
    assert np.mean(adj) < np.mean(raw)  # the adj correction matters for a skewed trace
    tiny = M.shards_fixed_hit_rate_curve(zipf_keys, sizes, 50, seed=0)
    assert tiny.shape == sizes.shape and np.all((tiny >= 0) & (tiny <= 1))


def test_fixed_size_shards_tracks_at_most_s_max_keys(zipf_keys):
    ids, k = M.dense_ids(zipf_keys)
    dist, thr, t_final = M._shards_fixed(ids, M.shards_hashes(zipf_keys, 0), k, 500, M.SHARDS_MODULUS)
    kept = np.unique(ids[M.shards_hashes(zipf_keys, 0) < t_final])
    assert kept.size <= 500 and np.all(np.diff(thr) <= 0)  # the threshold only falls
    assert np.count_nonzero(dist < 0) >= kept.size
    with pytest.raises(ValueError, match="s_max must be >= 1"):
        M.shards_fixed_hit_rate_curve(zipf_keys, [10], 0)
