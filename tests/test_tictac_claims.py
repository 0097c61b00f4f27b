"""Paper 4's declared claims: each rule can say "not reproduced" for a plausible measurement, and a value
beyond the paper's figure in the claimed direction is "exceeds paper", not a silent "reproduced"."""

import numpy as np
import pytest

from mlsys_core import claims
from mlsys_core.claims import tictac

IDS = [c.id for c in tictac.CLAIMS]


def verdict(claim_id, value=None, sweep=None):
    return claims.evaluate(claims.get(claim_id), value, sweep).verdict


def seeds(value, spread=0.002):
    return value + spread * np.array([-2.0, -1.0, 0.0, 1.0, 2.0])


def test_paper_4_declares_at_least_eight_claims_each_under_its_own_prefix():
    assert len(IDS) >= 8 and len(set(IDS)) == len(IDS)
    assert all(i.startswith("tictac.") and claims.get(i).paper == tictac.P4 for i in IDS)
    assert sum(claims.get(i).seeds >= 5 for i in IDS) >= 5


@pytest.mark.parametrize("claim_id", ["tictac.inference_gain", "tictac.training_gain"])
def test_throughput_gains_over_the_bandwidth_sweep(claim_id):
    claim = claims.get(claim_id)
    n = len(claim.sweep.values)
    assert verdict(claim_id, sweep=[seeds(0.97)] * n) == "not reproduced"  # a slowdown is no longer "partly"
    assert verdict(claim_id, sweep=[seeds(1.07)] * n) == "partly reproduced"
    assert verdict(claim_id, sweep=[seeds(1.479)] * n) == "exceeds paper"
    middle = "reproduced" if "training" in claim_id else "partly reproduced"
    assert verdict(claim_id, sweep=[seeds(1.15)] * n) == middle
    with pytest.raises(ValueError, match="per-seed"):
        verdict(claim_id, sweep=[1.2] * n)


def test_straggler_relative_spread_is_finite_and_beats_the_paper_only_below_its_ratio():
    n = len(claims.get("tictac.straggler_spread").sweep.values)
    assert verdict("tictac.straggler_spread", sweep=[seeds(0.0, 0.0) + [0, 0, 0, 0, 1e-3]] * n) == "exceeds paper"
    assert verdict("tictac.straggler_spread", sweep=[seeds(0.6)] * n) == "reproduced"
    assert verdict("tictac.straggler_spread", sweep=[seeds(0.8)] * n) == "partly reproduced"
    assert verdict("tictac.straggler_spread", sweep=[seeds(1.0)] * n) == "not reproduced"


def test_shape_and_equivalence_claims_can_fail():
    assert verdict("tictac.gain_rises_then_falls", seeds(0.0, 0.0)) == "not reproduced"  # monotone curve
    assert verdict("tictac.gain_rises_then_falls", seeds(0.38)) == "reproduced"
    assert verdict("tictac.tic_close_to_tac", 0.025) == "reproduced"
    assert verdict("tictac.tic_close_to_tac", 0.30) == "not reproduced"
    assert verdict("tictac.layer_order_matches_tac", 0.0) == "reproduced"
    assert verdict("tictac.layer_order_matches_tac", 0.10) == "not reproduced"
    assert verdict("tictac.efficiency_gain", seeds(-0.05)) == "not reproduced"
    assert verdict("tictac.efficiency_gain", seeds(0.1)) == "partly reproduced"


def test_timing_claims_take_repeats_and_their_spread_decides():
    noisy = np.array([0.95, 1.1, 1.3, 1.45, 1.2, 1.0, 1.35, 1.15])
    assert verdict("tictac.real_ps_gain", noisy) == "partly reproduced"  # the interval straddles 1.1
    assert verdict("tictac.real_ps_gain", seeds(0.99, 0.01)) == "not reproduced"
    with pytest.raises(ValueError, match="per-seed"):
        verdict("tictac.real_ps_gain", 1.4)
    assert verdict("tictac.heuristic_cost", seeds(0.005, 0.0005)) == "not reproduced"
    assert verdict("tictac.heuristic_cost", seeds(10.0, 0.5)) == "reproduced"


def test_the_experiments_measure_over_the_ranges_the_claims_declare():
    from mlsys_core.seeds import DEFAULT_SEEDS
    from mlsys_core.tictac import experiments

    for claim_id in ("tictac.inference_gain", "tictac.training_gain"):
        assert claims.get(claim_id).sweep.values == experiments.BANDWIDTHS_GBPS
    assert claims.get("tictac.straggler_spread").sweep.values == experiments.JITTERS
    assert len(DEFAULT_SEEDS) >= max(claims.get(i).seeds for i in IDS if claims.get(i).sample == "seed")
    assert experiments.ORDER_DAGS >= claims.get("tictac.tac_beats_layer_on_branching").seeds
