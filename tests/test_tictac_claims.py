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
    n = len(claims.get(claim_id).parameter("bandwidth_gbps").values)

    def over_bandwidth(value):
        return verdict(claim_id, sweep={"bandwidth_gbps": [seeds(value)] * n})

    assert over_bandwidth(0.97) == "not reproduced"  # a slowdown is not "partly"
    assert over_bandwidth(1.07) == "partly reproduced"
    assert over_bandwidth(1.479) == "exceeds paper"
    assert over_bandwidth(1.15) == ("reproduced" if "training" in claim_id else "partly reproduced")
    with pytest.raises(ValueError, match="per-seed"):
        verdict(claim_id, sweep={"bandwidth_gbps": [1.2] * n})


def test_straggler_relative_spread_is_finite_and_beats_the_paper_only_below_its_ratio():
    n = len(claims.get("tictac.straggler_spread").parameter("jitter").values)

    def over_jitter(values):
        return verdict("tictac.straggler_spread", sweep={"jitter": [values] * n})

    assert over_jitter(seeds(0.0, 0.0) + [0, 0, 0, 0, 1e-3]) == "exceeds paper"
    assert over_jitter(seeds(0.6)) == "reproduced"
    assert over_jitter(seeds(0.8)) == "partly reproduced"
    assert over_jitter(seeds(1.0)) == "not reproduced"


def test_shape_and_equivalence_claims_can_fail():
    assert verdict("tictac.gain_rises_then_falls", seeds(0.0, 0.0)) == "not reproduced"  # monotone curve
    assert verdict("tictac.gain_rises_then_falls", seeds(0.38)) == "reproduced"
    assert verdict("tictac.tic_close_to_tac", 0.025) == "reproduced"
    assert verdict("tictac.tic_close_to_tac", 0.30) == "not reproduced"
    assert verdict("tictac.layer_order_matches_tac", 0.0) == "reproduced"
    assert verdict("tictac.layer_order_matches_tac", 0.10) == "not reproduced"
    assert verdict("tictac.efficiency_gain", seeds(-0.05)) == "not reproduced"
    assert verdict("tictac.efficiency_gain", seeds(0.1)) == "partly reproduced"


def test_timing_claims_take_runs_and_an_interval_across_an_edge_is_inconclusive():
    noisy = np.array([0.95, 1.1, 1.3, 1.45, 1.2, 1.0, 1.35, 1.15])
    assert verdict("tictac.real_ps_gain", noisy) == "inconclusive"  # the interval straddles 1.1
    assert verdict("tictac.real_ps_gain", seeds(0.99, 0.01)) == "not reproduced"
    with pytest.raises(ValueError, match="per-seed"):
        verdict("tictac.real_ps_gain", 1.4)
    assert verdict("tictac.heuristic_cost", seeds(0.005, 0.0005)) == "not reproduced"
    assert verdict("tictac.heuristic_cost", seeds(10.0, 0.5)) == "reproduced"


def test_every_claim_declares_kind_parameters_and_a_measure_that_takes_exactly_them():
    import inspect

    from mlsys_core.claims import registry

    for c in tictac.CLAIMS:
        fn = registry.load_measure(c)
        assert c.kind in claims.KINDS, c.id
        assert list(inspect.signature(fn).parameters) == [a.name for a in c.parameters], c.id
        assert fn.__module__ == "mlsys_core.tictac.measures" and fn.__name__ == c.id.split(".")[1]
    assert claims.get("tictac.layer_order_matches_tac").kind == "sanity check"
    assert claims.get("tictac.heuristic_cost").kind == "survey test"
    assert claims.get("tictac.real_ps_gain").sample == "run"


@pytest.mark.parametrize("claim_id", [i for i in IDS if i not in ("tictac.real_ps_gain", "tictac.heuristic_cost")])
def test_every_simulated_claim_varies_the_cluster_that_could_decide_it(claim_id):
    names = {a.name for a in claims.get(claim_id).parameters}
    wanted = {"parameter_servers", "op_overhead_us", "latency_us", "compute_noise", "bandwidth_gbps"}
    if claim_id != "tictac.gain_rises_then_falls":  # its axis is the worker count itself
        wanted.add("workers")
    assert wanted <= names
    noise = claims.get(claim_id).parameter("compute_noise")
    assert noise.values[0] == 0.0 and noise.values[-1] >= 0.3


def test_bounded_quantities_take_a_bootstrap_interval_and_ratios_a_log_scale():
    for claim_id in ("tictac.straggler_spread", "tictac.gain_rises_then_falls", "tictac.efficiency_gain"):
        assert claims.get(claim_id).interval == "bootstrap", claim_id
    for claim_id in ("tictac.inference_gain", "tictac.training_gain", "tictac.real_ps_gain",
                     "tictac.tac_beats_layer_on_branching", "tictac.heuristic_cost"):
        assert claims.get(claim_id).interval == "log-t", claim_id


def test_the_experiments_measure_over_the_ranges_the_claims_declare():
    from mlsys_core.seeds import DEFAULT_SEEDS
    from mlsys_core.tictac import experiments

    for claim_id in ("tictac.inference_gain", "tictac.training_gain"):
        assert claims.get(claim_id).parameter("bandwidth_gbps").values == experiments.BANDWIDTHS_GBPS
    assert claims.get("tictac.straggler_spread").parameter("jitter").values == experiments.JITTERS
    assert len(DEFAULT_SEEDS) >= max(claims.get(i).seeds for i in IDS if claims.get(i).sample == "seed")
    assert experiments.ORDER_DAGS >= claims.get("tictac.tac_beats_layer_on_branching").seeds
    assert experiments.REAL_RUNS >= claims.get("tictac.real_ps_gain").seeds
