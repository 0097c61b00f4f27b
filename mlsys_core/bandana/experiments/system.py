"""Section 2 of notebook 02, The system: a cache run's request latency, idle and queued, and the
measured O_DIRECT reads that give the queueing model its service-time shape.

`latency_profile` prices each request alone on the device; `queue_profile` runs the requests through
the queueing device model at several loads (the latency-tail claim reads it at `TAIL_UTILISATION`);
`measured_service_times` turns the stored O_DIRECT measurement (`MEASURED_READS`) into service times.
"""

from __future__ import annotations

import numpy as np

from mlsys_core import data, validate
from mlsys_core.bandana.cache import CacheResult
from mlsys_core.bandana.nvm import NVMDevice, latency_percentiles
from mlsys_core.bandana.queueing import Arrivals, PoissonArrivals, ServiceTimes, latency_vs_utilisation
from mlsys_core.bandana.store import load_measurement

UTILISATIONS = (0.2, 0.5, 0.7, 0.9)  # offered reads / the device's peak IOPS
TAIL_UTILISATION = 0.5  # where the latency-tail claim is decided
MEASURED_READS = data.DATA_DIR / "bandana" / "bandana_odirect_reads.npz"  # `store.save_measurement`'s file


def latency_profile(result: CacheResult, device: NVMDevice = NVMDevice()) -> dict[float, float]:
    """{50, 99, 99.9: request latency (us)} of a cache simulation through the idle-device model
    (each request alone on the device; no queueing: see `queue_profile`)."""
    return latency_percentiles(device.request_latency_us(result.blocks_read, result.hits_per_request))


def queue_profile(result: CacheResult, utilisations=UTILISATIONS, device: NVMDevice = NVMDevice(),
                  service: ServiceTimes = ServiceTimes(), seed: int = 0,
                  arrivals: Arrivals = PoissonArrivals()) -> np.ndarray:
    """(len(utilisations), 3) p50 / p99 / p99.9 request latency (us) of a cache simulation through the
    queueing device model (`queueing.latency_vs_utilisation`): the requests, in trace order with their
    block reads, arrive at the rate that loads the device to each utilisation of its peak IOPS.

    Args:
        result: the cache simulation whose requests are queued.
        utilisations: the device loads, fractions of its peak IOPS in (0, 1).
        device: the NVM device.
        service: the distribution of a read's service time.
        seed: the arrivals' and service times' seed (int >= 0).
        arrivals: Poisson, or `Experiment.arrivals()`: the future trace's own times, gaps scaled.
    """
    validate.instance("result", result, CacheResult)
    return latency_vs_utilisation(result.blocks_read, utilisations, device, service, result.hits_per_request, seed,
                                  arrivals=arrivals)


def measured_service_times(path=MEASURED_READS, queue_depth: int = 1) -> ServiceTimes:
    """The shape of the O_DIRECT read latencies stored in `path` (`store.save_measurement`) at one
    queue depth, as the queueing model's service-time distribution (mean 1: the device sets the scale)."""
    m = load_measurement(path)
    if queue_depth not in m.latency_us:
        raise ValueError(f"queue_depth must be one of {sorted(m.latency_us)}, got {queue_depth!r}")
    return ServiceTimes.from_latencies(m.latency_us[queue_depth],
                                       f"O_DIRECT 4 KB reads at QD{queue_depth}, {m.where}, {m.when}")
