"""The queueing NVM model: M/M/1 theory, the P4800X IOPS-vs-queue-depth curve, load makes a tail."""

import numpy as np
import pytest

from mlsys_core.bandana import nvm as N
from mlsys_core.bandana import queueing as Q


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_single_server_exponential_case_matches_mm1_theory(rho):
    r = Q.mm1_check(rho, num_requests=200_000, seed=0)
    assert abs(r.mean_us / r.mean_theory_us - 1) < 0.05
    assert abs(r.p99_us / r.p99_theory_us - 1) < 0.05
    assert r.error < 0.05


def test_single_server_is_fcfs_by_hand():
    # mu = 1e6 reads/s, deterministic work 1 => each read takes exactly 1 us; arrivals at 0, 0.5, 5 us
    dev = N.NVMDevice(qd1_iops=1e6, peak_iops=1e6, peak_queue_depth=1)
    res = Q.simulate_queue([0.0, 0.5, 5.0], np.array([1, 1, 2]), dev, Q.ServiceTimes("deterministic"))
    assert np.allclose(res.read_latency_us, [1.0, 1.5, 1.0, 2.0])
    assert np.allclose(res.latency_us, [1.0, 1.5, 2.0])


@pytest.mark.parametrize("qd, iops", [(1, 108_000), (4, None), (16, 585_000), (64, 585_000)])
def test_closed_loop_reproduces_the_iops_curve(qd, iops):
    dev = N.NVMDevice()
    measured = Q.closed_loop_iops(dev, qd, num_reads=100_000)
    expected = iops if iops is not None else float(dev.iops(4))
    assert measured == pytest.approx(expected, rel=0.02)


def test_latency_grows_with_utilisation_and_requests_wait_for_each_other():
    reads = np.random.default_rng(0).poisson(4, 20_000)
    p = Q.latency_vs_utilisation(reads, (0.2, 0.5, 0.9))
    assert np.all(np.diff(p[:, 0]) > 0) and np.all(np.diff(p[:, 2]) > 0)
    idle = N.NVMDevice().batch_latency_us(reads[reads > 0])
    assert p[2, 1] > 2 * np.percentile(idle, 99)  # queueing adds far more than the idle-device model holds
    assert np.all(p[:, 2] >= p[:, 1]) and np.all(p[:, 1] >= p[:, 0])


def test_empirical_service_times_keep_their_shape_and_drop_their_scale():
    s = Q.ServiceTimes.from_latencies([10.0, 10.0, 10.0, 70.0], "a test")
    assert s.samples.mean() == pytest.approx(1.0)
    assert s.scv == pytest.approx(1.08)  # (3 x 0.4^2 + 2.8^2) / 4 - 1
    assert set(np.round(s.draw(100, np.random.default_rng(0)), 6)) <= {0.4, 2.8}
    heavy = Q.ServiceTimes.from_latencies(np.random.default_rng(1).lognormal(0.0, 1.5, 10_000), "lognormal")
    assert heavy.scv > 5
    spread = Q.latency_vs_utilisation(np.ones(30_000, dtype=np.int64), (0.3,), service=heavy)[0]
    expo = Q.latency_vs_utilisation(np.ones(30_000, dtype=np.int64), (0.3,))[0]
    assert spread[2] / spread[0] > expo[2] / expo[0]  # a heavier tail from a wider service spread


def test_queue_arguments_are_checked():
    with pytest.raises(ValueError, match="non-decreasing"):
        Q.simulate_queue([1.0, 0.0], np.array([1, 1]))
    with pytest.raises(ValueError, match="one non-zero length"):
        Q.simulate_queue([0.0], np.array([1, 1]))
    with pytest.raises(ValueError, match="utilisation must be in"):
        Q.request_rate_for(1.2, 3.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        Q.ServiceTimes("lognormal")
    with pytest.raises(ValueError, match="samples must be"):
        Q.ServiceTimes.from_latencies([1.0], "too few")
    with pytest.raises(TypeError, match="max_queue_depth must be an int"):
        Q.simulate_queue([0.0], np.array([1]), max_queue_depth=2.5)


# --- a trace's own arrival times, replayed ----------------------------------------------------------


def test_trace_times_are_scaled_by_one_factor_to_the_rate_asked():
    times = np.array([5.0, 5.0, 6.0, 9.0, 13.0])  # gaps 0, 1, 3, 4: span 8
    out = Q.TraceArrivals(times).times_us(5, rate_per_s=1e6)  # 4 gaps must last 4 us
    assert np.allclose(out, [0.0, 0.0, 0.5, 2.0, 4.0])


def test_evenly_spaced_trace_times_replay_as_deterministic_arrivals():
    # one read per request, deterministic work: at 10% of peak IOPS a request arrives every
    # 1 / 58.5K s = 17.1 us, after the previous one's read (1 / 108K s = 9.26 us) is done: no one waits
    reads = np.ones(5000, dtype=np.int64)
    even = Q.TraceArrivals(np.arange(5000) * 3.7)
    det = Q.ServiceTimes("deterministic")
    alone_us = 1e6 / N.NVMDevice().qd1_iops
    p = Q.latency_vs_utilisation(reads, (0.05, 0.1, 0.15), service=det, arrivals=even)
    assert np.allclose(p, alone_us)
    poisson = Q.latency_vs_utilisation(reads, (0.1,), service=det)[0]
    assert poisson[1] > 1.3 * alone_us  # Poisson gaps below 9.26 us make some wait
    loaded = Q.latency_vs_utilisation(reads, (0.5,), service=det, arrivals=even)[0]
    assert loaded[0] > alone_us and np.allclose(loaded, loaded[0])  # shared device, still no spread


def test_bursty_trace_times_give_a_higher_tail_than_even_spacing_at_one_load():
    reads = np.ones(20_000, dtype=np.int64)
    even = Q.TraceArrivals(np.arange(20_000) * 1.0)
    clumps = Q.TraceArrivals(np.repeat(np.arange(200), 100) * 1.0)  # 100 requests at each instant
    e = Q.latency_vs_utilisation(reads, (0.5,), arrivals=even)[0]
    c = Q.latency_vs_utilisation(reads, (0.5,), arrivals=clumps)[0]
    assert c[1] > 1.5 * e[1] and c[0] > 3 * e[0]


def test_trace_arrivals_are_checked():
    with pytest.raises(ValueError, match="spans no time"):
        Q.TraceArrivals(np.zeros(4))
    with pytest.raises(ValueError, match="non-decreasing"):
        Q.TraceArrivals(np.array([0.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match=r">= 2 arrival times"):
        Q.TraceArrivals(np.array([1.0]))
    with pytest.raises(ValueError, match="must be the 3 requests the trace times, got 4"):
        Q.latency_vs_utilisation(np.ones(4, dtype=np.int64), (0.5,), arrivals=Q.TraceArrivals(np.arange(3.0)))
    with pytest.raises(TypeError, match=r"arrivals must be PoissonArrivals\(\) or TraceArrivals"):
        Q.latency_vs_utilisation(np.ones(4, dtype=np.int64), (0.5,), arrivals="poisson")
