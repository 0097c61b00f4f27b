"""SHP with spare slots and Giraph's max_move_ratio: spare slots never hurt, imbalance acts only with room."""

import numpy as np
import pytest

from mlsys_core.bandana import hypergraph as H
from mlsys_core.bandana import placement as P
from mlsys_core.bandana import shp as S
from mlsys_core.bandana import tables
from mlsys_core.bandana import workload as W


def _instance(communities: int, seed: int, n: int = 1024, capacity: int = 16):
    table = tables.EmbeddingTable("t", n, 64, lookups_per_request=12.0, num_communities=communities)
    trace = W.generate_trace(W.WorkloadConfig(tables=(table,), num_requests=2000, seed=seed))
    return H.Hypergraph.from_trace(trace), P.random_placement(table, seed), capacity


@pytest.mark.parametrize("communities, seed", [(64, 0), (51, 1), (20, 2)])
def test_spare_slots_never_make_shp_worse(communities, seed):
    graph, start, cap = _instance(communities, seed)
    k = -(-int(np.ceil(1.03 * graph.num_vertices)) // cap)
    full = S.shp_placement(graph, cap, S.SHPConfig(seed=seed), start)
    spare = S.shp_placement(graph, cap, S.SHPConfig(seed=seed), start, num_blocks=k)
    assert H.blocks_read(graph, spare) <= H.blocks_read(graph, full) < H.blocks_read(graph, start)
    assert spare.block_of.max() < k and np.bincount(spare.block_of).max() <= cap


def test_imbalance_takes_effect_only_with_spare_slots():
    graph, start, cap = _instance(64, 0)
    n = graph.num_vertices
    k = -(-int(np.ceil(1.03 * n)) // cap)

    def bisect(num_blocks, imbalance):
        return S._bisection(graph, start, num_blocks, cap, S.SHPConfig(imbalance=imbalance, seed=0))

    tight, loose = bisect(n // cap, 0.0), bisect(n // cap, 0.045)
    assert np.array_equal(tight, loose)  # every block full: no half may grow
    tight, loose = bisect(k, 0.0), bisect(k, 0.045)
    assert not np.array_equal(tight, loose)
    fill_tight, fill_loose = np.bincount(tight), np.bincount(loose)
    assert np.sum(fill_loose == cap) > np.sum(fill_tight == cap)  # halves took some of the slack
    assert fill_loose.std() > fill_tight.std()
    assert np.bincount(loose).max() <= cap


def test_max_move_ratio_caps_the_moves_of_a_round():
    graph, start, cap = _instance(64, 0)
    slow = S.shp_placement(graph, cap, S.SHPConfig(iterations=2, max_move_ratio=0.01), start)
    fast = S.shp_placement(graph, cap, S.SHPConfig(iterations=2, max_move_ratio=1.0), start)
    assert H.blocks_read(graph, fast) < H.blocks_read(graph, slow)
    assert S.SHPConfig().max_move_ratio == 0.1  # Giraph's default
    with pytest.raises(ValueError, match="max_move_ratio must be in"):
        S.SHPConfig(max_move_ratio=0.0)
    with pytest.raises(ValueError, match=rf"num_blocks must be >= 64, the fewest blocks of capacity {cap} that"):
        S.shp_placement(graph, cap, num_blocks=10)
