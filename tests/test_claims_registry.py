"""Claim declarations, the registry built from the paper modules, and the evaluation of measurements."""

import dataclasses

import numpy as np
import pytest

from mlsys_core import claims
from mlsys_core.claims import registry, rules
from mlsys_core.claims.registry import Claim, Sweep

BASE = dict(
    id="test.gain", paper="Paper 4 — TicTac", statement="TAC beats random", paper_value="up to +37.7%",
    source="abstract", unit="x", rule=rules.at_least(1.2, partly=1.05, exceeds=1.377),
)


def claim(**kw) -> Claim:
    return Claim(**{**BASE, **kw})


def test_the_registry_holds_every_module_and_unique_valid_claims():
    assert len(claims.REGISTRY) >= 1
    assert {c.paper for c in claims.REGISTRY.values()} <= set(claims.PAPERS)
    for claim_id, c in claims.REGISTRY.items():
        assert claim_id == c.id and claim_id.split(".")[0] in claims.MODULES


def test_the_suite_declares_enough_claims_with_seeds_in_every_paper():
    assert len(claims.REGISTRY) >= 40
    for paper in claims.PAPERS[1:5]:
        mine = [c for c in claims.REGISTRY.values() if c.paper == paper]
        assert any(c.seeds >= claims.MIN_SEEDS and c.sample == "seed" for c in mine), paper


@pytest.mark.parametrize(
    "claim_id, low, high",
    [("tictac.inference_gain", 0.3, 10.0),            # link bandwidth at fixed compute, Gbit/s
     ("tictac.straggler_spread", 0.1, 0.5),            # transfer jitter
     ("bandana.bandwidth_gain", 0.2, 0.8),             # co-access affinity
     ("synergy.bf16_fl_gains_more_vs_bandwidth", 70.0, 330.0),  # pod link GB/s per chip
     ("synergy.bf16_fl_gains_more_vs_utilisation", 0.3, 0.6),
     ("bandana.pod_cost", 2.0, 50.0),                  # DRAM / NVM price per GB
     ("fl.telemetry_leak", 0.0, 2.0)],                 # check-in jitter, hours
)
def test_the_assumptions_the_suite_chose_are_swept_over_their_range(claim_id, low, high):
    sweep = claims.get(claim_id).sweep
    assert sweep is not None and min(sweep.values) <= low and max(sweep.values) >= high


def test_get_names_the_known_ids():
    assert claims.get("suite.shard_bytes").paper == "Suite check"
    with pytest.raises(ValueError, match="claim_id must be a declared claim.*suite.shard_bytes"):
        claims.get("no.such_claim")
    with pytest.raises(TypeError, match=r"claim_id must be a string, got \{'a': 1\}"):
        claims.get({"a": 1})  # used to fail as an unhashable dict


@pytest.mark.parametrize(
    "kw, error, match",
    [({"id": "Gain"}, ValueError, "Claim.id"),
     ({"paper": "Paper 9"}, ValueError, "paper must be one of"),
     ({"source": "blog post"}, ValueError, "source must be one of"),
     ({"statement": " "}, ValueError, "statement must be a non-empty string"),
     ({"unit": 3}, TypeError, "unit must be a string"),
     ({"rule": "reproduced"}, TypeError, "rule must be a rule"),
     ({"seeds": 3}, ValueError, "seeds must be 0"),
     ({"seeds": 5.0}, TypeError, "seeds must be an int"),
     ({"sweep": (1, 2)}, TypeError, "sweep must be Sweep"),
     ({"fmt": "q"}, ValueError, "fmt must be a float format spec")],
)
def test_bad_declarations_are_refused(kw, error, match):
    with pytest.raises(error, match=match):
        claim(**kw)


def test_a_source_may_say_where():
    assert claim(source="survey: Paper 4 weaknesses").source.startswith("survey")


@pytest.mark.parametrize(
    "kw, match",
    [({"values": (1.0,), "default": 1.0}, "at least 2 points"),
     ({"values": (1.0, 2.0), "default": 3.0}, "default must be one of"),
     ({"values": (1.0, float("nan")), "default": 1.0}, "finite")],
)
def test_bad_sweeps_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        Sweep("link bandwidth", "Gbit/s", **kw)


def test_evaluate_a_single_value():
    e = claims.evaluate(claim(), 1.25)
    assert (e.estimate.value, e.estimate.interval, e.estimate.seeds, e.verdict) == (1.25, None, 0, "reproduced")
    assert claims.evaluate(claim(), 1.5).verdict == "exceeds paper"


def test_evaluate_per_seed_values_uses_their_95_percent_interval():
    values = np.array([1.18, 1.22, 1.25, 1.21, 1.24])
    e = claims.evaluate(claim(seeds=5), values)
    lo, hi = e.estimate.interval
    half = 2.776 * values.std(ddof=1) / np.sqrt(5)  # Student t, 4 degrees of freedom
    assert e.estimate.value == pytest.approx(values.mean())
    assert (lo, hi) == pytest.approx((values.mean() - half, values.mean() + half), rel=1e-3)
    assert e.estimate.seeds == 5 and lo < 1.2 < hi
    assert e.verdict == "partly reproduced"  # the interval straddles the target edge
    tight = claims.evaluate(claim(seeds=5), values - values.mean() + 1.3)
    assert tight.verdict == "reproduced"  # the same spread around 1.3 lies inside [1.2, 1.377]


def test_a_seeded_claim_refuses_a_single_value_or_too_few_seeds():
    with pytest.raises(ValueError, match="per-seed values"):
        claims.evaluate(claim(seeds=5), 1.3)
    with pytest.raises(ValueError, match=">= 5 finite per-seed values"):
        claims.evaluate(claim(seeds=5), [1.3, 1.3, 1.3])
    with pytest.raises(ValueError, match="finite"):
        claims.evaluate(claim(), [1.3, np.nan])


def test_an_unseeded_claim_takes_repeat_ratios_with_their_spread():
    e = claims.evaluate(claim(), [1.3, 1.31, 1.29])
    assert e.estimate.seeds == 3 and e.estimate.interval[0] < 1.3 < e.estimate.interval[1]


def test_a_sweep_gives_a_verdict_per_point_and_the_headline_at_the_default():
    c = claim(sweep=Sweep("link bandwidth", "Gbit/s", (0.3, 1.0, 3.0, 10.0), default=1.0))
    e = claims.evaluate(c, sweep=[1.0, 1.48, 1.3, 1.02])
    assert [p.verdict for p in e.sweep] == ["not reproduced", "exceeds paper", "reproduced", "not reproduced"]
    assert e.verdict == "exceeds paper" and e.estimate.value == 1.48
    assert e.holds_over == ("link bandwidth: not reproduced at 0.3 Gbit/s; exceeds paper at 1 Gbit/s; "
                            "reproduced at 3 Gbit/s; not reproduced at 10 Gbit/s")


def test_holds_over_merges_neighbouring_points():
    c = claim(sweep=Sweep("affinity", "", (0.2, 0.5, 0.8), default=0.8))
    e = claims.evaluate(c, sweep=[1.25, 1.3, 1.0])
    assert e.holds_over == "affinity: reproduced for 0.2-0.5; not reproduced at 0.8"
    assert e.verdict == "not reproduced"


def test_a_geometric_claim_averages_timing_ratios_on_a_log_scale():
    ratios = np.array([1.0, 1.1, 1.2, 1.05, 4.0])  # one slow round
    e = claims.evaluate(claim(geometric=True), ratios)
    assert e.estimate.value == pytest.approx(np.exp(np.log(ratios).mean()))
    assert e.estimate.value < ratios.mean()  # the outlier pulls the geometric mean less
    lo, hi = e.estimate.interval
    assert lo * hi == pytest.approx(e.estimate.value**2)  # symmetric on the log scale
    with pytest.raises(ValueError, match="positive for a geometric mean"):
        claims.evaluate(claim(geometric=True), [1.0, 0.0, 1.2])


def test_a_swept_claim_with_seeds_takes_per_seed_values_per_point():
    c = claim(seeds=5, sweep=Sweep("jitter", "", (0.1, 0.3), default=0.3))
    e = claims.evaluate(c, sweep=[[1.3] * 5, [1.0, 1.1, 1.2, 1.3, 1.4]])
    assert e.sweep[0].estimate.interval == (1.3, 1.3) and e.verdict == "partly reproduced"


@pytest.mark.parametrize(
    "kw, match",
    [({"measured": None}, "needs a measured value"),
     ({"measured": 1.0, "sweep": [1.0, 2.0]}, "declares no sweep")],
)
def test_evaluate_refuses_mismatched_input(kw, match):
    with pytest.raises(ValueError, match=match):
        claims.evaluate(claim(), **kw)


@pytest.mark.parametrize("measured, error, said", [
    (True, TypeError, "measured must be a number, got True"),
    ([True, False, True], TypeError, "measured must be an array of numbers, got dtype bool"),
    ("1.3", TypeError, "measured must be an array of numbers, got dtype <U3"),
    ({"a": 1}, TypeError, "measured must be an array of numbers, got dtype object"),
    (float("nan"), ValueError, "measured must be finite, got nan"),
])
def test_a_measurement_that_is_not_numbers_is_refused_naming_it(measured, error, said):
    """A bool used to count as 1.0 and a string to fail inside float()."""
    with pytest.raises(error, match=said):
        claims.evaluate(claim(), measured)


def test_a_swept_claim_needs_one_measurement_per_point():
    c = claim(sweep=Sweep("affinity", "", (0.2, 0.8), default=0.8))
    with pytest.raises(ValueError, match="pass sweep="):
        claims.evaluate(c, 1.3)
    with pytest.raises(ValueError, match="one measurement per affinity"):
        claims.evaluate(c, sweep=[1.3])


def test_show_prints_the_interval_and_seed_count():
    c = claim(seeds=5, fmt=".2f")
    e = claims.evaluate(c, [1.2, 1.3, 1.25, 1.22, 1.28])
    assert registry.show(c, e.estimate) == "1.25 [1.20, 1.30] x (5 seeds)"
    timed = claim(seeds=5, sample="timed run", unit="s")
    assert registry.show(timed, claims.evaluate(timed, [1.3] * 5).estimate).endswith("s (5 timed runs)")
    assert registry.show(c, claims.evaluate(claim(fmt=".2f"), 1.234).estimate) == "1.23 x"


def test_claims_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        claim().unit = "s"
