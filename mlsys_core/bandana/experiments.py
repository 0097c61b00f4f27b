"""The paper's experiments as pure functions: learn placements on the past, evaluate on the future.

Each function takes configurations and seeds and returns numbers, arrays or a typed result, so
notebooks, widgets and the benchmark share one tested code path.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import pathlib
from typing import NamedTuple

import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.cache import NO_PREFETCH, CacheConfig, CacheResult, simulate_cache
from mlsys_core.bandana.mrc import cache_grid, hit_rate_curve, shards_hit_rate_curve, shards_keep
from mlsys_core.bandana.nvm import (
    MemoryPrices,
    NVMDevice,
    endurance,
    latency_percentiles,
    memory_cost_usd,
    skewed_refresh_rates,
)
from mlsys_core.bandana.placement import (
    BlockMap,
    Placement,
    block_map,
    effective_bandwidth_no_cache,
    fanout,
    kmeans_placement,
    random_placement,
    sequential_placement,
)
from mlsys_core.bandana.queueing import Arrivals, PoissonArrivals, ServiceTimes, TraceArrivals, latency_vs_utilisation
from mlsys_core.bandana.shp import Hypergraph, SHPConfig, blocks_read, shp_placement
from mlsys_core.bandana.trace import Trace
from mlsys_core.bandana.workload import (
    EmbeddingTable,
    WorkloadConfig,
    default_tables,
    generate_trace,
    table_vectors,
)

PLACEMENTS = ("sequential", "random", "kmeans", "shp")
THRESHOLDS = (0, 1, 2, 4, 8, NO_PREFETCH)


def learn_placements(past: Trace, method: str, seed: int = 0, shp: SHPConfig = SHPConfig()) -> tuple[Placement, ...]:
    """One placement per table of `past`, by `method` (one of PLACEMENTS); SHP learns from `past`."""
    validate.choice("placement", method, PLACEMENTS)
    seed = validate.seed("seed", seed)
    out = []
    for t in past.tables:
        if method == "sequential":
            out.append(sequential_placement(t))
        elif method == "random":
            out.append(random_placement(t, seed))
        elif method == "kmeans":
            out.append(kmeans_placement(t, table_vectors(t, seed), seed))
        else:
            has_lookups = np.any(past.table == past.table_index(t.name))
            out.append(shp_placement(Hypergraph.from_trace(past, t.name), t.block_capacity, shp)
                       if has_lookups else sequential_placement(t))
    return tuple(out)


@dataclasses.dataclass(frozen=True, eq=False)
class Experiment:
    """A workload split in time: placements learn on `past`, every metric is measured on `future`.

    `config` is the synthetic workload it was generated from, or None for a user's trace
    (`from_trace`); everything downstream reads the tables from `tables`."""

    config: WorkloadConfig | None
    past: Trace
    future: Trace
    past_counts: np.ndarray  # (num_keys,) lookups of each key in the past (admission counts)

    @staticmethod
    def from_config(config: WorkloadConfig, past_fraction: float = 0.5) -> Experiment:
        return Experiment._split(config, generate_trace(config), past_fraction)

    @staticmethod
    def from_trace(trace, tables=None, past_fraction: float = 0.5) -> Experiment:
        """A user's trace through the same pipeline as the synthetic one: `trace` is a `Trace`, or the
        path of a CSV / NPZ trace (`trace.load_trace`) or a libCacheSim oracleGeneral file
        (`trace.load_oracle_general`: a request per clock_time, keys split over `tables` in order).
        `tables` (EmbeddingTable, ...) say each table's size and vector bytes; a `Trace` brings its own.
        The first `past_fraction` of the requests is the past."""
        from mlsys_core.bandana.trace import load_oracle_general, load_trace

        if isinstance(trace, Trace):
            if tables is not None and tuple(tables) != trace.tables:
                raise ValueError("tables must be None or the trace's own tables for a Trace")
        else:
            path = validate.instance("trace", trace, (str, pathlib.PurePath),
                                     "a Trace or the path of a .csv / .npz / oracleGeneral trace")
            if tables is None:
                raise ValueError("tables must be given with a trace file: (EmbeddingTable, ...) in key order")
            tables = tuple(tables)
            for i, t in enumerate(tables):
                validate.instance(f"tables[{i}]", t, EmbeddingTable)
            name = str(path)
            trace = load_trace(path, tables) if name.endswith((".csv", ".npz")) else load_oracle_general(path, tables)
        return Experiment._split(None, trace, validate.number("past_fraction", past_fraction, 0.0, 1.0,
                                                              low_open=True, high_open=True))

    @staticmethod
    def _split(config, trace: Trace, past_fraction: float) -> Experiment:
        past, future = trace.split(past_fraction)
        num_keys = int(past.table_offsets[-1])
        return Experiment(config, past, future, np.bincount(past.keys, minlength=num_keys))

    @property
    def tables(self) -> tuple:
        return self.past.tables

    @property
    def total_bytes(self) -> int:
        return int(sum(t.table_bytes for t in self.tables))

    def blocks(self, placements) -> BlockMap:
        return block_map(self.tables, placements)

    def arrivals(self) -> Arrivals:
        """How the future's requests arrive in the queueing model (`queue_profile`): at the trace's own
        times, gaps scaled to each load, when it has them; else Poisson, its `source` saying so."""
        if self.future.time_us is None:
            return PoissonArrivals("Poisson (the trace has no timestamps)")
        return TraceArrivals.of(self.future)

    def simulate(self, blocks: BlockMap, cache_fraction: float, threshold) -> CacheResult:
        """The future through one cache of `cache_fraction` of all table bytes with threshold t
        (an int for every table, or a tuple with one t per table)."""
        validate.probability("cache_fraction", cache_fraction)
        return simulate_cache(self.future, blocks, CacheConfig(int(cache_fraction * self.total_bytes), threshold),
                              self.past_counts)


MINI_RATE = 0.25  # SHARDS rate of the mini-caches that choose t (the rate bandana.minicache_t measures)
MAX_COMBINATIONS = 4096  # per-table t combinations searched exhaustively


@dataclasses.dataclass(frozen=True, eq=False)
class ThresholdChoice:
    """Per-table admission thresholds picked from every combination: `combinations` (n, tables) and
    the hit rate each scored, `hit_rates` (n,). `source` says what was simulated to score them."""

    combinations: np.ndarray
    hit_rates: np.ndarray
    source: str

    @property
    def best(self) -> int:
        return int(np.argmax(self.hit_rates))  # ties: the first combination (lower t first)

    @property
    def thresholds(self) -> tuple[int, ...]:
        """The chosen t, one per table."""
        return tuple(int(t) for t in self.combinations[self.best])

    @property
    def hit_rate(self) -> float:
        """The hit rate of the chosen combination, as its own simulation scored it."""
        return float(self.hit_rates[self.best])


def _combinations(num_tables: int, thresholds) -> np.ndarray:
    ts = [validate.integer(f"thresholds[{i}]", t, 0) for i, t in enumerate(validate.instance(
        "thresholds", thresholds, (tuple, list, np.ndarray), "a non-empty list of ints >= 0"))]
    if not ts:
        raise ValueError("thresholds must be a non-empty list of ints >= 0, got an empty list")
    if len(ts) ** num_tables > MAX_COMBINATIONS:
        raise ValueError(f"{len(ts)} thresholds over {num_tables} tables make {len(ts) ** num_tables} combinations; "
                         f"at most {MAX_COMBINATIONS} are searched: pass fewer thresholds")
    return np.array(list(itertools.product(ts, repeat=num_tables)), dtype=np.int64).reshape(-1, num_tables)


def minicache_thresholds(past: Trace, blocks: BlockMap, cache_fraction: float, thresholds=THRESHOLDS,
                         rate: float = MINI_RATE, seed: int = 0, warmup_fraction: float = 0.5) -> ThresholdChoice:
    """Per-table t chosen, as Bandana chooses it, by miniature caches on past traffic only.

    The past is cut in time: admission counts come from its first `warmup_fraction`, scaled up to the
    length of the whole past, and the mini-caches replay the rest, just as the future is later scored
    with counts from the whole past (unscaled, the replay's counts would be about half the future's, and
    a t would admit as a t twice as large would in the future). Each
    combination of per-table t (len(thresholds) ** tables of them) is one mini-cache: the lookups of a
    SHARDS sample of whole blocks at `rate` (hash seed `seed`; whole blocks, so a prefetch still brings
    its sampled neighbours) through one LRU of rate x `cache_fraction` x all table bytes, shared by the
    tables as the real cache is. The combination of highest sampled hit rate wins. Nothing here sees
    the future.
    """
    validate.instance("past", past, Trace)
    validate.instance("blocks", blocks, BlockMap)
    fraction = validate.probability("cache_fraction", cache_fraction, open_low=True)
    rate = validate.number("rate", rate, 0.0, 1.0, low_open=True)
    seed = validate.seed("seed", seed)
    warmup = validate.probability("warmup_fraction", warmup_fraction, open_low=True, open_high=True)
    combos = _combinations(len(past.tables), thresholds)
    num_keys = blocks.key_bytes.size
    if int(past.table_offsets[-1]) != num_keys:
        raise ValueError(f"blocks map {num_keys} keys, the past trace's tables hold {int(past.table_offsets[-1])}")
    warm, replay = past.split(warmup)
    counts = np.rint(np.bincount(warm.keys, minlength=num_keys) * (past.num_lookups / warm.num_lookups))
    counts = counts.astype(np.int64)
    if rate < 1:
        keep = shards_keep(np.arange(blocks.block_ptr.size - 1), rate, seed)[blocks.block_of][replay.keys]
        if not keep.any():
            raise ValueError(f"rate {rate} samples no lookup of the past trace (seed {seed}); raise the rate")
        replay = replay.select(keep)
    capacity = int(round(fraction * sum(t.table_bytes for t in past.tables) * rate))
    hits = [simulate_cache(replay, blocks, CacheConfig(capacity, tuple(c)), counts).hit_rate for c in combos]
    return ThresholdChoice(combos, np.array(hits), f"mini-caches (R={rate:g}) on the past")


def oracle_thresholds(exp: Experiment, blocks: BlockMap, cache_fraction: float,
                      thresholds=THRESHOLDS) -> tuple[ThresholdChoice, CacheResult]:
    """Per-table t "chosen with the answer": every combination fully simulated on the *future* that is
    then scored, the best kept. An upper bound on what any choice of t could reach (not Bandana's rule).
    Returns the choice and the best combination's simulation."""
    validate.instance("exp", exp, Experiment)
    validate.probability("cache_fraction", cache_fraction, open_low=True)
    combos = _combinations(len(exp.future.tables), thresholds)
    runs = [exp.simulate(blocks, cache_fraction, tuple(c)) for c in combos]
    choice = ThresholdChoice(combos, np.array([r.hit_rate for r in runs]),
                             "t chosen with the answer (full simulation of the future)")
    return choice, runs[choice.best]


class PlacementScore(NamedTuple):
    """One placement scored on the future trace: without the DRAM cache, then with it at the per-table t
    its mini-caches pick on the past; the `oracle_` fields (None unless asked for) at the t of highest
    future hit rate, the bound a choice of t made with the answer reaches."""

    fanout: float  # blocks read per request, no cache
    eb_no_cache: float  # effective bandwidth: useful / read bytes
    t: tuple  # one admission threshold per table
    hit_rate: float
    eb_cache: float
    blocks_read: int
    oracle_t: tuple | None = None
    oracle_hit_rate: float | None = None
    oracle_eb_cache: float | None = None
    oracle_blocks_read: int | None = None


def compare_placements(exp: Experiment, placements: dict, cache_fraction: float, thresholds=THRESHOLDS,
                       rate: float = MINI_RATE, seed: int = 0, oracle: bool = False) -> dict[str, PlacementScore]:
    """Per placement: fanout and effective bandwidth without cache, then with the cache at the
    per-table t that mini-caches pick on the past (`minicache_thresholds`), scored on the future;
    with `oracle`, also at the per-table t of highest future hit rate (`oracle_thresholds`)."""
    validate.instance("exp", exp, Experiment)
    validate.instance("placements", placements, dict, "a non-empty dict {name: placements per table}")
    if not placements:
        raise ValueError("placements must be a non-empty dict {name: placements per table}, got {}")
    validate.probability("cache_fraction", cache_fraction, open_low=True)
    oracle = validate.boolean("oracle", oracle)
    rows = {}
    for name, pl in placements.items():
        bm = exp.blocks(pl)
        choice = minicache_thresholds(exp.past, bm, cache_fraction, thresholds, rate, seed)
        r = exp.simulate(bm, cache_fraction, choice.thresholds)
        rows[name] = PlacementScore(float(fanout(exp.future, bm).mean()), effective_bandwidth_no_cache(exp.future, bm),
                                    choice.thresholds, r.hit_rate, r.effective_bandwidth, r.total_blocks_read)
        if oracle:
            best, o = oracle_thresholds(exp, bm, cache_fraction, thresholds)
            rows[name] = rows[name]._replace(oracle_t=best.thresholds, oracle_hit_rate=o.hit_rate,
                                             oracle_eb_cache=o.effective_bandwidth,
                                             oracle_blocks_read=o.total_blocks_read)
    return rows


def threshold_table(exp: Experiment, blocks: BlockMap, table: str, thresholds, cache_fractions, rate: float = 1.0,
                    seed: int = 0, unit: str = "block"):
    """Hit rates of one table's cache (capacity = fraction of that table's bytes) for every t x size;
    rate < 1 gives the SHARDS mini-cache estimate."""
    i = exp.future.table_index(table)
    t = exp.tables[i]
    sub = exp.future.only_table(table)
    lo, hi = exp.future.table_offsets[i], exp.future.table_offsets[i + 1]
    own = blocks.block_of[lo:hi]
    local = block_map((t,), (Placement(own - own.min(), t.block_capacity),))
    caps = (np.asarray(cache_fractions) * t.table_bytes).astype(np.int64)
    return cache_grid(sub, local, thresholds, caps, rate, seed, exp.past_counts[lo:hi], unit)


def dram_saved_at_equal_hit_rate(capacities: np.ndarray, base_hit: np.ndarray, new_hit: np.ndarray, at: int) -> float:
    """1 - (capacity the new system needs to match the base hit rate at capacities[at]) / capacities[at].

    Hit rates are interpolated linearly in capacity; the curves must be sampled at the same capacities.
    """
    target = base_hit[at]
    reach = np.maximum.accumulate(new_hit)  # best hit rate reachable with at most each capacity
    if reach[-1] < target:
        return float("nan")
    need = float(np.interp(target, reach, capacities))
    return 1.0 - need / float(capacities[at])


def latency_profile(result: CacheResult, device: NVMDevice = NVMDevice()) -> dict[float, float]:
    """p50 / p99 / p99.9 request latency (us) of a cache simulation through the idle-device model
    (each request alone on the device; no queueing: see `queue_profile`)."""
    return latency_percentiles(device.request_latency_us(result.blocks_read, result.hits_per_request))


UTILISATIONS = (0.2, 0.5, 0.7, 0.9)  # offered reads / the device's peak IOPS
TAIL_UTILISATION = 0.5  # where the latency-tail claim is decided
MEASURED_READS = pathlib.Path(__file__).resolve().parents[2] / "data" / "bandana" / "bandana_odirect_reads.npz"


def queue_profile(result: CacheResult, utilisations=UTILISATIONS, device: NVMDevice = NVMDevice(),
                  service: ServiceTimes = ServiceTimes(), seed: int = 0,
                  arrivals: Arrivals = PoissonArrivals()) -> np.ndarray:
    """(len(utilisations), 3) p50 / p99 / p99.9 request latency (us) of a cache simulation through the
    queueing device model: the requests, in trace order with their block reads, arrive by `arrivals`
    (Poisson, or `Experiment.arrivals()`: the future trace's own times, gaps scaled) at the rate that
    loads the device to each utilisation of its peak IOPS (`queueing.latency_vs_utilisation`)."""
    validate.instance("result", result, CacheResult)
    return latency_vs_utilisation(result.blocks_read, utilisations, device, service, result.hits_per_request, seed,
                                  arrivals=arrivals)


def measured_service_times(path=MEASURED_READS, queue_depth: int = 1) -> ServiceTimes:
    """The shape of the O_DIRECT read latencies stored in `path` (`store.save_measurement`) at one
    queue depth, as the queueing model's service-time distribution (mean 1: the device sets the scale)."""
    from mlsys_core.bandana.store import load_measurement

    m = load_measurement(path)
    if queue_depth not in m["latency_us"]:
        raise ValueError(f"queue_depth must be one of {sorted(m['latency_us'])}, got {queue_depth!r}")
    return ServiceTimes.from_latencies(m["latency_us"][queue_depth],
                                       f"O_DIRECT 4 KB reads at QD{queue_depth}, {m['where']}, {m['when']}")


@functools.lru_cache(maxsize=8)
def _explore_setup(post_lookups_per_request: float, placement: str, seed: int):
    post, user = default_tables(0.25)
    post = dataclasses.replace(post, lookups_per_request=float(post_lookups_per_request))
    exp = Experiment.from_config(WorkloadConfig(tables=(post, user), num_requests=20_000, seed=seed))
    return exp, exp.blocks(learn_placements(exp.past, placement, seed))


class DesignPoint(NamedTuple):
    """The widget's view of one point of the design space (the post table's cache)."""

    fractions: np.ndarray  # cache sizes of the hit-rate curves, fraction of the post table's bytes
    full: np.ndarray  # hit rate, full simulation
    mini: np.ndarray  # hit rate, mini-cache estimate at `rate`
    hit_rate: float  # at the chosen cache size (whole workload)
    effective_bandwidth: float
    utilisation: float  # of the device's peak IOPS, for `latency_us`
    latency_us: dict[float, float]  # percentile -> request latency
    post_share: float  # of the requests' lookups
    placement: str
    threshold: int
    rate: float


def explore(cache_fraction: float, threshold: int, placement: str, sampling_rate: float,
            post_lookups_per_request: float, seed: int = 0) -> DesignPoint:
    """One point of the design space on a small workload (for widgets): the full simulation of the
    post table's cache and its mini-cache estimate at `sampling_rate`, plus bandwidth and request
    latency through the queueing device model at `TAIL_UTILISATION` of its peak IOPS.
    `post_lookups_per_request` sets the table mix (the user table keeps 1 lookup per request)."""
    exp, blocks = _explore_setup(float(post_lookups_per_request), placement, seed)
    fractions = np.array([0.02, 0.05, 0.1, 0.2, 0.4])
    full = threshold_table(exp, blocks, "post", [threshold], fractions)
    mini = threshold_table(exp, blocks, "post", [threshold], fractions, rate=sampling_rate, seed=seed)
    res = exp.simulate(blocks, cache_fraction, threshold)
    post_share = float(np.mean(exp.future.table == 0))
    latency = dict(zip((50.0, 99.0, 99.9), queue_profile(res, (TAIL_UTILISATION,), seed=seed)[0].tolist()))
    return DesignPoint(fractions, full.hit_rates[0], mini.hit_rates[0], res.hit_rate, res.effective_bandwidth,
                       TAIL_UTILISATION, latency, post_share, placement, threshold, sampling_rate)


# --- the claims' measurements: over seeds and over the assumptions that decide them ---------------

STUDY_CURVE = (0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2)  # DRAM cache sizes (fraction of table bytes)


@dataclasses.dataclass(frozen=True, eq=False)
class SeedStudy:
    """Per-seed measurements of small workloads (one workload and one placement seed per column).

    `gain_*` are (len(affinities), len(seeds)): SHP / sequential effective bandwidth, with the DRAM
    cache (each placement at the per-table t its mini-caches pick on the past) and without. The rest
    are (len(seeds),), at `default_affinity`: `gain_oracle` the with-cache gain when both placements
    get the t chosen with the answer (best on the future), `hit_rate_lost` SHP's hit rate at that
    oracle t minus at the mini-caches' t;
    `blocks_ratio` sequential / SHP and `kmeans_ratio` k-means / SHP post-table blocks read per
    request (no cache); `dram_saved` the DRAM SHP + its mini-cache t saves at the hit rate sequential placement
    without prefetching reaches with `cache_fraction`; `tail_ratio` (len(tail_utilisations), len(seeds))
    p99.9 / p50 request latency of SHP + cache through the queueing device model (Poisson arrivals at
    each utilisation of the device's peak IOPS, exponential service times).
    """

    affinities: np.ndarray
    seeds: np.ndarray
    default_affinity: float
    gain_cache: np.ndarray
    gain_no_cache: np.ndarray
    gain_oracle: np.ndarray
    hit_rate_lost: np.ndarray
    blocks_ratio: np.ndarray
    kmeans_ratio: np.ndarray
    dram_saved: np.ndarray
    tail_ratio: np.ndarray
    tail_utilisations: np.ndarray

    def tail_at(self, utilisation: float) -> np.ndarray:
        """(len(seeds),) p99.9 / p50 at one of `tail_utilisations`."""
        hit = np.flatnonzero(np.isclose(self.tail_utilisations, utilisation))
        if hit.size == 0:
            raise ValueError(f"utilisation must be one of {self.tail_utilisations.tolist()}, got {utilisation!r}")
        return self.tail_ratio[hit[0]]

    def gains_at(self, affinity: float) -> np.ndarray:
        """(len(seeds),) the with-cache gains at one of `affinities`."""
        hit = np.flatnonzero(np.isclose(self.affinities, affinity))
        if hit.size == 0:
            raise ValueError(f"affinity must be one of {self.affinities.tolist()}, got {affinity!r}")
        return self.gain_cache[hit[0]]


def _study_experiment(affinity: float, seed: int, scale: float, num_requests: int) -> Experiment:
    post, user = default_tables(scale)
    tables = (dataclasses.replace(post, affinity=float(affinity)), user)
    return Experiment.from_config(WorkloadConfig(tables=tables, num_requests=num_requests, seed=int(seed)))


def seed_study(
    seeds=range(5),
    affinities=(0.2, 0.5, 0.8),
    default_affinity: float = 0.8,
    cache_fraction: float = 0.1,
    scale: float = 0.25,
    num_requests: int = 20_000,
    device: NVMDevice = NVMDevice(),
    utilisations=UTILISATIONS,
) -> SeedStudy:
    """The seeded claims of the notebook, measured on one small workload per (affinity, seed).

    Every workload learns placements and per-table t (mini-caches at `MINI_RATE`, hash seed = the
    seed) on its first half and is measured on its second. Only at `default_affinity` are the oracle
    t, k-means, the DRAM curve and the latency tail measured (they cost most).
    """
    seeds = list(validate.seeds("seeds", seeds))
    affinities = [validate.probability("affinities[i]", a) for a in affinities]
    if len(seeds) < 2 or not affinities:
        raise ValueError(f"seed_study needs >= 2 seeds and >= 1 affinity, got {seeds}, {affinities}")
    if default_affinity not in affinities:
        raise ValueError(f"default_affinity must be one of affinities {affinities}, got {default_affinity!r}")
    validate.probability("cache_fraction", cache_fraction, open_low=True)
    gains = np.empty((2, len(affinities), len(seeds)))
    extra = np.empty((5, len(seeds)))
    utilisations = [validate.number("utilisations[i]", u, 0.0, 1.0, low_open=True, high_open=True)
                    for u in utilisations]
    tails = np.empty((len(utilisations), len(seeds)))
    curve = np.asarray(STUDY_CURVE)
    at = int(np.argmin(np.abs(curve - cache_fraction)))
    for i, a in enumerate(affinities):
        for j, seed in enumerate(seeds):
            exp = _study_experiment(a, seed, scale, num_requests)
            placements = {m: learn_placements(exp.past, m, seed) for m in ("sequential", "shp")}
            rows = compare_placements(exp, placements, cache_fraction, seed=seed, oracle=a == default_affinity)
            shp, seq = rows["shp"], rows["sequential"]
            gains[0, i, j] = shp.eb_cache / seq.eb_cache
            gains[1, i, j] = shp.eb_no_cache / seq.eb_no_cache
            if a != default_affinity:
                continue
            extra[0, j] = shp.oracle_eb_cache / seq.oracle_eb_cache
            extra[1, j] = shp.oracle_hit_rate - shp.hit_rate
            post = exp.tables[0]  # k-means for the post table only (the user table's costs most)
            g = Hypergraph.from_trace(exp.future, post.name)
            shp_blocks = blocks_read(g, placements["shp"][0])
            extra[2, j] = blocks_read(g, placements["sequential"][0]) / shp_blocks
            extra[3, j] = blocks_read(g, kmeans_placement(post, table_vectors(post, seed), seed)) / shp_blocks
            seq_map, shp_map = exp.blocks(placements["sequential"]), exp.blocks(placements["shp"])
            base = np.array([exp.simulate(seq_map, f, NO_PREFETCH).hit_rate for f in curve])
            new = np.array([exp.simulate(shp_map, f, shp.t).hit_rate for f in curve])
            extra[4, j] = dram_saved_at_equal_hit_rate(curve, base, new, at)
            q = queue_profile(exp.simulate(shp_map, cache_fraction, shp.t), utilisations, device, seed=seed)
            tails[:, j] = q[:, 2] / q[:, 0]
    return SeedStudy(
        np.asarray(affinities, dtype=float), np.asarray(seeds), float(default_affinity), gains[0], gains[1], *extra,
        tails, np.asarray(utilisations, dtype=float),
    )


def minicache_loss(
    exp: Experiment, blocks: BlockMap, full: dict, thresholds, cache_fractions, rate: float, seed: int
) -> float:
    """Worst hit rate lost, over tables and cache sizes, by using the t that SHARDS mini-caches at
    `rate` pick instead of the best t of the full simulation `full` ({table: MiniCacheGrid})."""
    worst = 0.0
    for name, grid in full.items():
        mini = threshold_table(exp, blocks, name, thresholds, cache_fractions, rate=rate, seed=seed)
        rows = np.searchsorted(grid.thresholds, mini.best_threshold())
        if not np.array_equal(grid.thresholds[rows], mini.best_threshold()):
            raise ValueError("full and mini-cache grids must share thresholds (sorted)")
        loss = grid.hit_rates.max(axis=0) - grid.hit_rates[rows, np.arange(grid.hit_rates.shape[1])]
        worst = max(worst, float(loss.max()))
    return worst


def shards_errors(keys: np.ndarray, cache_sizes, rate: float, seeds=range(5)) -> np.ndarray:
    """(len(seeds),) mean absolute error of the SHARDS hit-rate curve at `rate`, one hash seed each,
    against the exact one-pass curve."""
    exact = hit_rate_curve(keys, cache_sizes)
    return np.array([np.abs(shards_hit_rate_curve(keys, cache_sizes, rate, seed=s) - exact).mean() for s in seeds])


def drives_over_budget(
    cv: float,
    seeds=range(5),
    num_tables: int = 200,
    mean_per_day: float = 15.0,
    table_gb=(50.0, 300.0),
    device: NVMDevice = NVMDevice(),
) -> np.ndarray:
    """(len(seeds),) fraction of drives written more than the rated drive-writes-per-day, when
    `num_tables` tables of uniform random size in `table_gb` fill the drives and are refreshed at
    lognormal rates (mean `mean_per_day`, coefficient of variation `cv`). Seed s draws both."""
    validate.integer("num_tables", num_tables, 1)
    lo, hi = (validate.positive("table_gb", g) for g in table_gb)
    out = []
    for s in seeds:
        sizes = np.random.default_rng(s).uniform(lo * 1e9, hi * 1e9, num_tables)
        out.append(
            endurance(sizes, skewed_refresh_rates(num_tables, mean_per_day, cv, seed=s), device).fraction_over_budget
        )
    return np.array(out)


def pod_cost_factor(
    price_ratio: float,
    cache_fraction: float = 0.1,
    chips: int = 1000,
    bytes_per_chip: float = 32e9,
    dram_usd_per_gb: float = MemoryPrices().dram_usd_per_gb,
) -> float:
    """How many times cheaper a pod's memory gets on NVM with a DRAM cache of `cache_fraction`, when
    DRAM costs `price_ratio` x NVM per GB: all-DRAM cost / (NVM + DRAM cache) cost."""
    ratio = validate.positive("price_ratio", price_ratio)
    prices = MemoryPrices(dram_usd_per_gb, dram_usd_per_gb / ratio)
    total = validate.integer("chips", chips, 1) * validate.positive("bytes_per_chip", bytes_per_chip)
    cost = memory_cost_usd(total, validate.probability("cache_fraction", cache_fraction) * total, prices)
    return cost.all_dram_usd / cost.nvm_plus_cache_usd
