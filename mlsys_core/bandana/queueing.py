"""A queueing model of the NVM device: open-loop request arrivals, block reads that wait for each other.

`nvm.NVMDevice.batch_latency_us` prices each request alone on an idle device. Here requests arrive
over time (Poisson at rate lambda, or a trace's own timestamps with every gap scaled by one factor to
reach the rate: `PoissonArrivals`, `TraceArrivals`), each issues its block reads at once, and the
device serves the outstanding reads: with n reads in service (n <= `peak_queue_depth` slots; the rest
wait first come, first served) the device completes IOPS(n) reads a second, the P4800X curve of
`NVMDevice.iops` (108K at queue depth 1 rising to 585K at 16), shared equally by the n in service.
A read's *work* is drawn from a service-time distribution of mean 1 (exponential, or the shape of
measured latencies), so one read alone takes work / IOPS(1) seconds.

With exponential work the number of reads in the device is a birth-death chain with completion rate
IOPS(min(n, 16)); with one slot and a flat curve it is exactly M/M/1 (`mm1_check`). The simulation is
one numba pass over the events (arrivals and completions), O(reads x slots).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numba
import numpy as np
import numpy.typing as npt

from mlsys_core import validate
from mlsys_core.bandana.nvm import NVMDevice, latency_percentiles
from mlsys_core.bandana.trace import Trace


@dataclasses.dataclass(frozen=True)
class _Shape:
    """One kind of service-time distribution: how it draws n works of mean 1, and its squared coefficient of
    variation, each from the `ServiceTimes` that holds its parameters."""

    draw: Callable[[ServiceTimes, int, np.random.Generator], np.ndarray]
    scv: Callable[[ServiceTimes], float]


def _samples(s: ServiceTimes) -> np.ndarray:
    assert s.samples is not None  # kind "empirical": __post_init__ checked and normalised them
    return s.samples


SHAPES: dict[str, _Shape] = {
    "exponential": _Shape(lambda s, n, rng: rng.exponential(1.0, n), lambda s: 1.0),
    "deterministic": _Shape(lambda s, n, rng: np.ones(n), lambda s: 0.0),
    "gamma": _Shape(lambda s, n, rng: rng.gamma(1.0 / s.gamma_scv, s.gamma_scv, n), lambda s: s.gamma_scv),
    "empirical": _Shape(lambda s, n, rng: _samples(s)[rng.integers(0, _samples(s).size, n)],
                        lambda s: float(_samples(s).var())),
}


@dataclasses.dataclass(frozen=True, eq=False)
class ServiceTimes:
    """The distribution of a read's work, normalised to mean 1."""

    kind: str = "exponential"  # one of SHAPES: "exponential", "deterministic" (every read 1), "gamma"
    #                            (`gamma_scv`) or "empirical" (`samples`)
    samples: np.ndarray | None = None  # measured latencies, resampled (divided by their mean) for "empirical"
    source: str = "exponential (memoryless), mean 1"  # where the distribution comes from
    gamma_scv: float = 1.0  # the squared coefficient of variation of kind "gamma" (> 0)

    def __post_init__(self) -> None:
        validate.choice("kind", self.kind, tuple(SHAPES))
        validate.string("source", self.source)
        validate.positive("gamma_scv", self.gamma_scv)
        if self.kind == "empirical":
            s = validate.reals("samples", self.samples, ndim=1)
            if s.size < 2 or np.any(s <= 0):
                raise ValueError("samples must be a 1-D array of >= 2 finite latencies > 0 for kind 'empirical'")
            object.__setattr__(self, "samples", s / s.mean())

    @staticmethod
    def with_scv(scv: float) -> ServiceTimes:
        """Service times of mean 1 and squared coefficient of variation `scv` (>= 0): deterministic at 0,
        exponential at 1, a gamma distribution (shape 1 / scv) otherwise."""
        scv = validate.number("scv", scv, 0.0)
        if scv == 0:
            return ServiceTimes("deterministic", source="deterministic (every read the same), mean 1")
        if scv == 1:
            return ServiceTimes()
        return ServiceTimes("gamma", source=f"gamma, mean 1, squared coefficient of variation {scv:g}", gamma_scv=scv)

    @staticmethod
    def from_latencies(latencies_us: np.ndarray, source: str) -> ServiceTimes:
        """The shape of measured read latencies (their scale is dropped: the device model sets it)."""
        return ServiceTimes("empirical", latencies_us, source)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n,) work of n reads, mean 1."""
        validate.integer("n", n, 0)
        validate.instance("rng", rng, np.random.Generator)
        return SHAPES[self.kind].draw(self, n, rng)

    @property
    def scv(self) -> float:
        """Squared coefficient of variation (1 for exponential, 0 for deterministic)."""
        return SHAPES[self.kind].scv(self)


@numba.njit(cache=True)
def _simulate(
    arrival: np.ndarray, read_ptr: np.ndarray, work: np.ndarray, rate_of_n: np.ndarray, slots: int
) -> np.ndarray:
    """Finish time of every read. Requests arrive at `arrival` (sorted); request r issues reads
    read_ptr[r]:read_ptr[r+1] (FCFS). With n in service each progresses at rate_of_n[n] work per
    second; `V` is the work every in-service read has received since time 0 (all progress equally),
    so a read entering service at V finishes when V reaches V + its work (its tag)."""
    num_req = arrival.size
    num_reads = work.size
    finish = np.empty(num_reads)
    tag = np.empty(slots)
    who = np.full(slots, -1, dtype=np.int64)
    t = 0.0
    v = 0.0
    nin = 0
    req = 0
    arrived = 0
    nxt = 0
    done = 0
    while done < num_reads:
        ta = arrival[req] if req < num_req else np.inf
        best = -1
        tc = np.inf
        if nin > 0:
            for s in range(slots):
                if who[s] >= 0 and (best < 0 or tag[s] < tag[best]):
                    best = s
            tc = t + (tag[best] - v) / rate_of_n[nin]
        if ta <= tc:
            if nin > 0:
                v += (ta - t) * rate_of_n[nin]
            t = ta
            arrived = read_ptr[req + 1]
            req += 1
        else:
            v = tag[best]
            t = tc
            finish[who[best]] = t
            who[best] = -1
            nin -= 1
            done += 1
        while nin < slots and nxt < arrived:
            for s in range(slots):
                if who[s] < 0:
                    who[s] = nxt
                    tag[s] = v + work[nxt]
                    break
            nin += 1
            nxt += 1
    return finish


@dataclasses.dataclass(frozen=True, eq=False)
class QueueResult:
    """What one queueing run measured."""

    latency_us: np.ndarray  # (num_requests,) from arrival to its last read, plus DRAM time for its hits
    read_latency_us: np.ndarray  # (num_reads,) from its request's arrival to its completion
    throughput_iops: float  # reads completed per second over the run
    utilisation: float  # offered reads per second / the device's peak IOPS

    def percentiles(self, percentiles: npt.ArrayLike = (50.0, 99.0, 99.9)) -> dict[float, float]:
        """{percentile: request latency (us)}."""
        return latency_percentiles(self.latency_us, percentiles)


def _rates(device: NVMDevice, slots: int) -> np.ndarray:
    rate = np.zeros(slots + 1)
    n = np.arange(1, slots + 1)
    rate[1:] = device.iops(n) / n  # work per second of each read in service when n are
    return rate


def simulate_queue(
    arrival_us: npt.ArrayLike,
    reads_per_request: npt.ArrayLike,
    device: NVMDevice = NVMDevice(),
    service: ServiceTimes = ServiceTimes(),
    hits_per_request: npt.ArrayLike | None = None,
    seed: int = 0,
    max_queue_depth: int | None = None,
) -> QueueResult:
    """Run requests, each issuing its block reads at once, through the device (a numba pass over the
    events).

    Args:
        arrival_us: (num_requests,) arrival times (us), non-decreasing.
        reads_per_request: (num_requests,) block reads of each request (whole numbers >= 0).
        device: the NVM device (its IOPS-vs-queue-depth curve).
        service: the distribution of a read's work.
        hits_per_request: (num_requests,) cached lookups of each request (whole numbers >= 0), which
            add DRAM time; None for none.
        seed: the service times' seed (int >= 0).
        max_queue_depth: the most reads in service at once (default: the device's peak queue depth).
    """
    arrival = validate.reals("arrival_us", arrival_us, ndim=1) * 1e-6
    reads = validate.integers("reads_per_request", reads_per_request, 0)
    if arrival.shape != reads.shape or arrival.size == 0:
        raise ValueError(f"arrival_us and reads_per_request must be 1-D of one non-zero length, got shapes "
                         f"{arrival.shape} and {reads.shape}")
    if np.any(np.diff(arrival) < 0):
        raise ValueError("arrival_us must be finite and non-decreasing (requests in time order)")
    if hits_per_request is not None:
        hits_per_request = validate.integers("hits_per_request", hits_per_request, 0)
        if hits_per_request.shape != reads.shape:
            raise ValueError(f"hits_per_request must hold one count per request ({reads.size}), "
                             f"got shape {hits_per_request.shape}")
    validate.instance("device", device, NVMDevice)
    validate.instance("service", service, ServiceTimes)
    seed = validate.seed("seed", seed)
    slots = device.peak_queue_depth if max_queue_depth is None else validate.integer(
        "max_queue_depth", max_queue_depth, 1)
    read_ptr = np.concatenate([[0], np.cumsum(reads)]).astype(np.int64)
    work = service.draw(int(read_ptr[-1]), np.random.default_rng(seed))
    finish = _simulate(arrival, read_ptr, work, _rates(device, slots), slots) if work.size else np.zeros(0)
    owner = np.repeat(np.arange(arrival.size), reads)
    read_latency = (finish - arrival[owner]) * 1e6
    latency = np.zeros(arrival.size)
    np.maximum.at(latency, owner, read_latency)
    if hits_per_request is not None:
        latency = latency + device.dram_lookup_latency_us * hits_per_request.astype(np.float64)
    span = (finish.max() - arrival[0]) if work.size else 0.0
    offered = read_ptr[-1] / (arrival[-1] - arrival[0]) if arrival[-1] > arrival[0] else np.inf
    return QueueResult(latency, read_latency, float(read_ptr[-1] / span) if span > 0 else 0.0,
                       float(offered / device.peak_iops))


def poisson_arrivals_us(num_requests: int, rate_per_s: float, seed: int = 0) -> np.ndarray:
    """(num_requests,) arrival times (us) of a Poisson process at `rate_per_s`, the first at its first gap."""
    validate.integer("num_requests", num_requests, 1)
    validate.positive("rate_per_s", rate_per_s)
    return np.cumsum(np.random.default_rng([validate.seed("seed", seed), 7]).exponential(
        1e6 / rate_per_s, num_requests))


class Arrivals:
    """How requests arrive: `times_us(num_requests, rate_per_s, seed)` gives their (num_requests,)
    non-decreasing arrival times (us) at a mean rate of `rate_per_s`. `source` says what they are."""

    source: str

    def times_us(self, num_requests: int, rate_per_s: float, seed: int = 0) -> np.ndarray:
        """(num_requests,) arrival times (us) at a mean rate of `rate_per_s`."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True, eq=False)
class PoissonArrivals(Arrivals):
    """Open-loop Poisson arrivals: independent exponential gaps, drawn with the seed `times_us` gets."""

    source: str = "Poisson"  # what the arrivals are, for labels

    def __post_init__(self) -> None:
        validate.string("source", self.source)

    def times_us(self, num_requests: int, rate_per_s: float, seed: int = 0) -> np.ndarray:
        """`poisson_arrivals_us` with these arguments."""
        return poisson_arrivals_us(num_requests, rate_per_s, seed)


@dataclasses.dataclass(frozen=True, eq=False)
class TraceArrivals(Arrivals):
    """A trace's own request times replayed: every gap is multiplied by one factor (trace speed-up)
    so that the mean rate is the one asked for; bursts and lulls keep their shape (no randomness:
    the seed is unused). `time_us` (num_requests,) finite, non-decreasing, spanning more than an instant."""

    time_us: np.ndarray  # (num_requests,) the trace's request times (us)
    source: str = "the trace's own times, gaps scaled"  # what the arrivals are, for labels

    def __post_init__(self) -> None:
        t = validate.reals("time_us", self.time_us)
        if t.ndim != 1 or t.size < 2:
            raise ValueError(f"time_us must be a 1-D array of >= 2 arrival times (us), got shape {t.shape}")
        if np.any(np.diff(t) < 0):
            raise ValueError("time_us must be finite and non-decreasing (requests in time order)")
        if t[-1] == t[0]:
            raise ValueError(f"time_us spans no time (all {t.size} requests at {t[0]:g} us): no rate to scale")
        object.__setattr__(self, "time_us", t)
        validate.string("source", self.source)

    @staticmethod
    def of(trace: Trace) -> TraceArrivals:
        """The arrival times of a `trace.Trace`; ValueError if it has none."""
        time_us = validate.instance("trace", trace, Trace).time_us
        if time_us is None:
            raise ValueError("the trace has no arrival times (time_us is None): load one with a time_us column "
                             "(or clock_time), or use PoissonArrivals()")
        return TraceArrivals(time_us)

    def times_us(self, num_requests: int, rate_per_s: float, seed: int = 0) -> np.ndarray:
        """The trace's times from 0, scaled so that its num_requests - 1 gaps last (num_requests - 1) / rate;
        `seed` is checked but unused."""
        validate.seed("seed", seed)
        if validate.integer("num_requests", num_requests, 1) != self.time_us.size:
            raise ValueError(f"num_requests must be the {self.time_us.size} requests the trace times, "
                             f"got {num_requests}")
        span = self.time_us[-1] - self.time_us[0]
        scale = (num_requests - 1) * 1e6 / validate.positive("rate_per_s", rate_per_s) / span
        return (self.time_us - self.time_us[0]) * scale


def closed_loop_iops(device: NVMDevice = NVMDevice(), queue_depth: int = 1, num_reads: int = 100_000,
                     service: ServiceTimes = ServiceTimes(), seed: int = 0) -> float:
    """Reads per second with `queue_depth` reads always outstanding (all issued at once, at most
    `queue_depth` in service: the fio-style measurement behind the spec sheet's IOPS-vs-QD figures).

    Args:
        device: the NVM device.
        queue_depth: reads in service at once (int >= 1).
        num_reads: reads simulated (int >= 1).
        service: the distribution of a read's work.
        seed: the service times' seed (int >= 0).
    """
    validate.integer("num_reads", num_reads, 1)
    seed = validate.seed("seed", seed)
    res = simulate_queue(np.zeros(1), np.array([num_reads]), device, service, seed=seed,
                         max_queue_depth=validate.integer("queue_depth", queue_depth, 1))
    return res.throughput_iops


def request_rate_for(utilisation: float, mean_reads: float, device: NVMDevice = NVMDevice()) -> float:
    """Requests per second at which reads arrive at `utilisation` x the device's peak IOPS."""
    validate.number("utilisation", utilisation, 0.0, 1.0, low_open=True, high_open=True)
    validate.instance("device", device, NVMDevice)
    return utilisation * device.peak_iops / validate.positive("mean_reads", mean_reads)


def latency_vs_utilisation(reads_per_request: npt.ArrayLike, utilisations: npt.ArrayLike,
                           device: NVMDevice = NVMDevice(), service: ServiceTimes = ServiceTimes(),
                           hits_per_request: npt.ArrayLike | None = None, seed: int = 0,
                           percentiles: npt.ArrayLike = (50.0, 99.0, 99.9),
                           arrivals: Arrivals = PoissonArrivals()) -> np.ndarray:
    """(len(utilisations), len(percentiles)) request-latency percentiles (us) when the requests (in
    trace order, their reads as a cache simulation gave them) arrive at the rate whose reads load the
    device to each utilisation of its peak IOPS. A request of no reads takes DRAM time only.

    Args:
        reads_per_request: (num_requests,) block reads of each request (whole numbers >= 0).
        utilisations: the device loads, fractions of its peak IOPS in (0, 1).
        device: the NVM device.
        service: the distribution of a read's work.
        hits_per_request: (num_requests,) cached lookups of each request, or None.
        seed: the arrivals' and service times' seed (int >= 0).
        percentiles: the percentiles reported, in [0, 100].
        arrivals: how requests arrive: a Poisson stream, or a trace's own times scaled.
    """
    reads = validate.integers("reads_per_request", reads_per_request, 0)
    validate.instance("arrivals", arrivals, Arrivals, "PoissonArrivals() or TraceArrivals(time_us)")
    seed = validate.seed("seed", seed)
    utilisations = validate.reals("utilisations", utilisations, ndim=1)
    percentiles = tuple(validate.reals("percentiles", percentiles, 0.0, 100.0, ndim=1).tolist())
    mean_reads = float(reads.mean())
    if mean_reads <= 0:
        raise ValueError("reads_per_request reads no block at all: nothing to queue")
    out = np.empty((len(utilisations), len(percentiles)))
    for i, u in enumerate(utilisations):
        arrival = arrivals.times_us(reads.size, request_rate_for(u, mean_reads, device), seed)
        res = simulate_queue(arrival, reads, device, service, hits_per_request, seed)
        p = res.percentiles(percentiles)
        out[i] = [p[float(q)] for q in percentiles]
    return out


@dataclasses.dataclass(frozen=True)
class MM1Check:
    """The queueing model in its M/M/1 case against theory (`mm1_check`)."""

    mean_us: float  # simulated mean sojourn time (us)
    mean_theory_us: float  # M/M/1's mean sojourn time, 1 / (mu - lambda) (us)
    p99_us: float  # simulated p99 sojourn time (us)
    p99_theory_us: float  # M/M/1's p99, ln(100) / (mu - lambda) (us)
    error: float  # the worse relative error of the two, |simulated / theory - 1|


def mm1_check(utilisation: float = 0.5, num_requests: int = 200_000, service_rate: float = 100_000.0,
              seed: int = 0) -> MM1Check:
    """The model in its M/M/1 case (one slot, flat IOPS curve, exponential work, one read per request,
    Poisson arrivals) against theory: sojourn time ~ Exp(mu - lambda), so mean 1 / (mu - lambda) and
    p99 ln(100) / (mu - lambda). The first tenth of the requests (the warm-up from an empty device)
    is left out.

    Args:
        utilisation: lambda / mu, in (0, 1).
        num_requests: requests simulated.
        service_rate: mu, reads per second.
        seed: the arrivals' and service times' seed (int >= 0).
    """
    rho = validate.number("utilisation", utilisation, 0.0, 1.0, low_open=True, high_open=True)
    mu = validate.positive("service_rate", service_rate)
    seed = validate.seed("seed", seed)
    device = NVMDevice(qd1_iops=mu, peak_iops=mu, peak_queue_depth=1)
    lam = rho * mu
    arrival = poisson_arrivals_us(num_requests, lam, seed)
    res = simulate_queue(arrival, np.ones(num_requests, dtype=np.int64), device, ServiceTimes(), seed=seed)
    lat = res.latency_us[num_requests // 10:]  # drop the warm-up from an empty device
    mean_th = 1e6 / (mu - lam)
    p99_th = float(np.log(100.0) * mean_th)
    mean, p99 = float(lat.mean()), float(np.percentile(lat, 99.0))
    return MM1Check(mean, mean_th, p99, p99_th, max(abs(mean / mean_th - 1), abs(p99 / p99_th - 1)))
