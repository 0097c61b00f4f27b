"""Claim declarations, the registry built from the paper modules, and the evaluation of measurements."""

import dataclasses
import inspect
import re

import numpy as np
import pytest

from mlsys_core import claims
from mlsys_core.claims import registry, rules
from mlsys_core.claims.registry import Assumption, Claim

BASE = dict(
    id="test.gain", paper="Paper 4 — TicTac", statement="TAC beats random", paper_value="up to +37.7%",
    source="abstract", unit="x", rule=rules.at_least(1.2, partly=1.05, exceeds=1.377), kind="reproduction",
)
BANDWIDTH = Assumption("bandwidth_gbps", "link bandwidth", "Gbit/s", 1.0, (0.3, 1.0, 3.0, 10.0), "suite's choice")
AFFINITY = Assumption("affinity", "affinity", "", 0.8, (0.2, 0.5, 0.8), "suite's choice")


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


def test_every_claim_declares_its_kind_assumptions_and_a_measure_that_takes_them():
    for c in claims.REGISTRY.values():
        assert c.kind in claims.KINDS, c.id
        if isinstance(c.rule, rules.Qualitative):
            continue
        assert c.parameters and c.measure, c.id
        signature = inspect.signature(registry.load_measure(c))
        for a in c.parameters:
            assert signature.parameters[a.name].default == a.default, (c.id, a.name)


def test_every_measure_refuses_a_non_number_naming_its_parameter_before_any_work():
    for c in claims.REGISTRY.values():
        if c.measure:
            measure = registry.load_measure(c)
            for a in c.parameters:
                with pytest.raises(TypeError, match=f"{a.name} must be a number, got 'x'"):
                    measure(**{a.name: "x"})


def test_no_two_claims_share_one_measurement():
    measures = [c.measure for c in claims.REGISTRY.values() if c.measure]
    assert len(measures) == len(set(measures))


def test_no_claim_names_a_file_outside_the_repository_or_tracker_history():
    for c in claims.REGISTRY.values():
        text = " ".join([c.statement, c.paper_value, c.source, *c.assumptions, *(a.source for a in c.parameters)])
        assert "PAPERS.md" not in text and not re.search(r"issue \d", text, re.IGNORECASE), c.id


@pytest.mark.parametrize(
    "claim_id, name, low, high",
    [("tictac.inference_gain", "bandwidth_gbps", 0.3, 10.0),
     ("tictac.straggler_spread", "jitter", 0.1, 0.5),
     ("bandana.bandwidth_gain", "affinity", 0.2, 0.8),
     ("bandana.pod_cost", "price_ratio", 2.0, 50.0),
     ("fl.telemetry_leak", "jitter_h", 0.0, 2.0)],
)
def test_the_assumptions_the_suite_chose_are_swept_over_their_range(claim_id, name, low, high):
    a = claims.get(claim_id).parameter(name)
    assert a.values[0] <= low and a.values[-1] >= high


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
     ({"kind": "headline"}, ValueError, "kind must be one of"),
     ({"sample": "iteration"}, ValueError, "sample must be one of"),  # pooled iterations are not replicates
     ({"interval": "wald"}, ValueError, "interval must be one of"),
     ({"measure": "numpy:mean"}, ValueError, "measure must be 'mlsys_core"),
     ({"parameters": ("bandwidth",)}, TypeError, "parameters must be"),
     ({"parameters": (AFFINITY, AFFINITY)}, ValueError, "distinct names"),
     ({"fmt": "q"}, ValueError, "fmt must be a float format spec")],
)
def test_bad_declarations_are_refused(kw, error, match):
    with pytest.raises(error, match=match):
        claim(**kw)


def test_a_source_may_say_where():
    assert claim(source="survey: Paper 4 weaknesses").source.startswith("survey")


@pytest.mark.parametrize(
    "kw, error, match",
    [({"values": (1.0,), "default": 1.0}, ValueError, ">= 2 increasing points"),
     ({"values": (2.0, 1.0), "default": 1.0}, ValueError, ">= 2 increasing points"),
     ({"values": (1.0, 2.0), "default": 3.0}, ValueError, "default must be one of"),
     ({"values": (1.0, float("nan")), "default": 1.0}, ValueError, "finite"),
     ({"name": "link bandwidth"}, ValueError, "Python keyword name"),
     ({"source": ""}, ValueError, "source must be a non-empty string")],
)
def test_bad_assumptions_are_refused(kw, error, match):
    fields = dict(name="bandwidth_gbps", label="link bandwidth", unit="Gbit/s", default=1.0, values=(1.0, 2.0),
                  source="suite's choice")
    with pytest.raises(error, match=match):
        Assumption(**{**fields, **kw})


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
    assert e.verdict == "inconclusive" and e.mean_verdict == "reproduced"  # straddles the target edge
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
    c = claim(parameters=(BANDWIDTH,))
    e = claims.evaluate(c, sweep={"bandwidth_gbps": [1.0, 1.48, 1.3, 1.02]})
    assert [p.verdict for p in e.sweep] == ["not reproduced", "exceeds paper", "reproduced", "not reproduced"]
    assert e.verdict == "exceeds paper" and e.estimate.value == 1.48
    assert e.holds_over == ("link bandwidth: not reproduced at 0.3 Gbit/s; exceeds paper at 1 Gbit/s; "
                            "reproduced at 3 Gbit/s; not reproduced at 10 Gbit/s")
    assert e.depends_on == ("bandwidth_gbps",)
    assert e.flip == "reproduced at link bandwidth = 3 Gbit/s (default 1 Gbit/s)"  # the nearest change wins


def test_holds_over_merges_neighbouring_points():
    e = claims.evaluate(claim(parameters=(AFFINITY,)), sweep={"affinity": [1.25, 1.3, 1.0]})
    assert e.holds_over == "affinity: reproduced for 0.2-0.5; not reproduced at 0.8"
    assert e.verdict == "not reproduced"


def test_a_verdict_that_holds_everywhere_is_robust_and_the_report_adds_its_sweeps():
    e = claims.evaluate(claim(parameters=(BANDWIDTH, AFFINITY)), 1.3)
    assert e.flip == "no assumption swept" and e.depends_on == ()
    e = registry.with_sweep(e, "affinity", [1.25, 1.3, 1.3])
    assert e.sweeps[0].by == "report" and e.depends_on == ()
    assert e.flip == "robust over all declared ranges (affinity)"
    qualitative = claim(rule=rules.qualitative("no figure"), parameters=(AFFINITY,))
    assert claims.evaluate(qualitative, 1.0).flip == "not comparable whatever the assumptions"


def test_a_log_t_claim_averages_timing_ratios_on_a_log_scale():
    ratios = np.array([1.0, 1.1, 1.2, 1.05, 4.0])  # one slow round
    e = claims.evaluate(claim(interval="log-t"), ratios)
    assert e.estimate.value == pytest.approx(np.exp(np.log(ratios).mean()))
    assert e.estimate.value < ratios.mean()  # the outlier pulls the geometric mean less
    lo, hi = e.estimate.interval
    assert lo * hi == pytest.approx(e.estimate.value**2)  # symmetric on the log scale
    assert lo > 0  # a ratio's interval never reaches zero or below
    with pytest.raises(ValueError, match="positive for a geometric mean"):
        claims.evaluate(claim(interval="log-t"), [1.0, 0.0, 1.2])


def test_a_bootstrap_interval_stays_within_the_bounds_of_a_bounded_quantity():
    """A t-interval on small non-negative errors reached below zero ([-0.004, 0.016] for a hit rate lost)."""
    errors = np.array([0.0, 0.0, 0.0, 0.0, 0.03])
    t = registry.estimate(errors, 5, "t")
    boot = registry.estimate(errors, 5, "bootstrap")
    assert t.interval[0] < 0 <= boot.interval[0] <= boot.value <= boot.interval[1] <= errors.max()
    assert boot == registry.estimate(errors, 5, "bootstrap")  # seeded: the same interval every time
    shares = np.array([1.0, 1.0, 1.0, 0.96, 1.0])
    assert registry.estimate(shares, 5, "bootstrap").interval[1] <= 1.0 < registry.estimate(shares, 5, "t").interval[1]
    assert registry.estimate([0.5] * 5, 5, "bootstrap").interval == (0.5, 0.5)


@pytest.mark.parametrize(
    "kw, match",
    [({"measured": None}, "needs a measured value"),
     ({"measured": 1.0, "sweep": [1.0, 2.0]}, "sweep must map a declared parameter's name"),
     ({"measured": 1.0, "sweep": {"cores": [1.0, 2.0]}}, "sweep names 'cores'")],
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
    with pytest.raises(ValueError, match="one measurement per affinity"):
        claims.evaluate(claim(parameters=(AFFINITY,)), sweep={"affinity": [1.3]})


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
