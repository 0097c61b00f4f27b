"""Paper 3's claims as functions of their assumptions: the measure functions, the assumptions they vary (time-zone
mix, windows, drop-out, the unsteered retry delay, the accountant's orders) and the federated-evaluation bound
derived from sampling error."""

import inspect

import numpy as np
import pytest

from mlsys_core import claims
from mlsys_core.claims import fl as fl_claims
from mlsys_core.claims import registry, rules
from mlsys_core.fl import dp, experiments, inversion, measures
from mlsys_core.fl.population import DEFAULT_TIME_ZONES, PopulationConfig, make_population, time_zone_mix
from mlsys_core.fl.rounds import RoundConfig
from mlsys_core.fl.steering import SteeringConfig


def test_every_claim_names_a_measure_whose_keywords_are_its_parameters():
    for c in fl_claims.CLAIMS:
        assert c.kind in registry.KINDS and c.measure.startswith("mlsys_core.fl.measures:"), c.id
        signature = inspect.signature(registry.load_measure(c))
        assert list(signature.parameters) == [a.name for a in c.parameters], c.id
        for a in c.parameters:
            assert signature.parameters[a.name].default == a.default, (c.id, a.name)
        if not isinstance(c.rule, rules.Qualitative):
            assert c.parameters, c.id


def test_bounded_quantities_take_the_bootstrap_and_ratios_the_log_interval():
    by_id = {c.id: c for c in fl_claims.CLAIMS}
    for claim_id in ("fl.over_selection", "fl.session_outcomes", "fl.telemetry_leak", "fl.fault_semantics",
                     "fl.federated_eval_tracks_central"):
        assert by_id[claim_id].interval == "bootstrap", claim_id
    for claim_id in ("fl.diurnal_swing", "fl.pace_steering", "fl.adaptive_server_fewer_rounds"):
        assert by_id[claim_id].interval == "log-t", claim_id
    assert {c.id for c in fl_claims.CLAIMS if c.kind == "sanity check"} == {
        "fl.fault_semantics", "fl.fedsgd_equals_sgd", "fl.two_actors"}


def test_the_population_claims_vary_time_zones_and_windows():
    for claim_id in ("fl.session_outcomes", "fl.diurnal_swing", "fl.telemetry_leak"):
        names = {a.name for a in claims.get(claim_id).parameters}
        assert {"main_zone_share", "window_length_h"} <= names, claim_id
    assert "drop_out" in {a.name for a in claims.get("fl.session_outcomes").parameters}
    assert "drop_out" in {a.name for a in claims.get("fl.over_selection").parameters}


def test_the_federated_eval_bound_is_the_sampling_error_of_the_examples_evaluated():
    # a uniform sample of n examples at accuracy p: simulate its mean |gap| and compare with the formula
    rng = np.random.default_rng(0)
    for n, p in ((160, 0.5), (160, 0.85), (40, 0.5)):
        gaps = np.abs(rng.binomial(n, p, 200_000) / n - p)
        assert abs(gaps.mean() - fl_claims.sampling_gap(n, p)) < 0.03 * fl_claims.sampling_gap(n, p)
    assert fl_claims.sampling_gap(160, 0.85) < fl_claims.sampling_gap(160) < fl_claims.sampling_gap(40)
    claim = claims.get("fl.federated_eval_tracks_central")
    assert fl_claims.EVAL_GAP == pytest.approx(fl_claims.sampling_gap(20 * 8), abs=1e-4)
    assert claim.rule(fl_claims.EVAL_GAP * 0.9, fl_claims.EVAL_GAP * 0.95) == rules.REPRODUCED
    assert claim.rule(fl_claims.EVAL_GAP * 1.5, fl_claims.EVAL_GAP * 1.6) == rules.PARTLY
    assert claim.rule(fl_claims.EVAL_GAP * 2.5, fl_claims.EVAL_GAP * 2.6) == rules.NOT_REPRODUCED


def test_time_zone_mix_moves_only_the_concentration():
    assert time_zone_mix(0.2) == DEFAULT_TIME_ZONES  # the default mix's largest zone holds 20%
    for share in (0.1, 0.4):
        mix = np.array(time_zone_mix(share))
        assert mix[:, 0].tolist() == [z[0] for z in DEFAULT_TIME_ZONES]
        assert mix[:, 1].sum() == pytest.approx(1.0) and mix[2, 1] == pytest.approx(share)  # UTC-5 holds it
    rest = np.array(time_zone_mix(0.4))[:, 1]
    others = np.array([w for _, w in DEFAULT_TIME_ZONES])
    keep = others != others.max()
    assert np.allclose(rest[keep] / rest[keep].sum(), others[keep] / others[keep].sum())  # proportions kept
    with pytest.raises(ValueError, match="main_zone_share"):
        time_zone_mix(1.0)
    with pytest.raises(ValueError, match="zones must be >= 2"):
        time_zone_mix(0.5, ((0.0, 1.0),))


def test_a_population_concentrated_in_time_swings_more_over_the_day():
    swings = [experiments.diurnal_swing(make_population(measures.population_config(20_000, share), 0), 1.0).ratio
              for share in (0.1, 0.2, 0.4)]
    assert swings[0] < swings[1] < swings[2]


def test_longer_windows_flatten_the_day():
    swings = [experiments.diurnal_swing(make_population(measures.population_config(20_000, window_length_h=h), 0),
                                        1.0).ratio for h in (5.0, 9.0)]
    assert swings[1] < swings[0]


def test_population_config_at_its_defaults_is_the_default_population():
    assert measures.population_config(1000) == PopulationConfig(num_devices=1000)
    config = measures.population_config(1000, drop_out=0.12)
    assert config.drop_out_range == (0.1, 0.14)
    with pytest.raises(ValueError, match="drop_out"):
        measures.population_config(1000, drop_out=0.01)


def test_the_unsteered_baseline_retries_at_the_given_delay():
    pop = PopulationConfig(num_devices=5_000)
    config = RoundConfig(goal_count=50)
    cuts = [experiments.steering_over_seeds(pop, config, hours=3, seeds=(0,), steering=SteeringConfig(retry_s=r))
            .load_per_round_cut[0] for r in (30.0, 240.0)]
    assert cuts[0] > cuts[1]  # retrying sooner hammers the server harder, so steering saves more
    with pytest.raises(TypeError, match="steering"):
        experiments.steering_over_seeds(pop, config, hours=1, seeds=(0,), steering="auto")


def test_the_moments_accountant_loosens_with_fewer_orders():
    setting = dict(sampling_rate=0.01, noise_multiplier=4.0, rounds=10_000, delta=1e-5)
    full, few = dp.moments_accountant_epsilon(**setting), dp.moments_accountant_epsilon(**setting, max_order=8)
    assert full == dp.moments_accountant_epsilon(**setting, max_order=256) and few > full + 0.5
    with pytest.raises(ValueError, match="max_order"):
        dp.moments_accountant_epsilon(**setting, max_order=1)


def test_one_attack_setting_gives_that_row_of_the_full_study():
    study = inversion.attack_over_seeds(seeds=(0, 1), group=4, steps=20)
    for i, setting in enumerate(inversion.SETTINGS):
        assert np.allclose(inversion.attack_psnr(setting, (0, 1), group=4, steps=20), study.psnr[i])
    assert np.allclose(inversion.mean_digit_psnr((0, 1), group=4), study.baseline_psnr)
    with pytest.raises(ValueError, match="setting"):
        inversion.attack_psnr("plain", (0,))


@pytest.mark.parametrize("claim_id", ["fl.dp_accountant_abadi", "fl.fedsgd_equals_sgd", "fl.over_selection"])
def test_cheap_measures_at_their_defaults_give_what_the_rule_takes(claim_id):
    claim = claims.get(claim_id)
    measured = registry.load_measure(claim)()
    evaluation = claims.evaluate(claim, measured)
    assert evaluation.verdict == rules.REPRODUCED
    if claim.seeds:
        assert np.shape(measured) == (claim.seeds,) and ((0 <= measured) & (measured <= 1)).all()


def test_over_selection_falls_with_a_short_reporting_window():
    short, default = measures.over_selection(reporting_window_s=120.0), measures.over_selection()
    assert short.mean() < default.mean()


def test_the_claims_read_nothing_but_the_paper_and_the_suite():
    for c in fl_claims.CLAIMS:
        for a in c.parameters:
            assert "PAPERS" not in a.source and a.source.split(":")[0] in ("paper text", "suite's choice"), (c.id, a)
