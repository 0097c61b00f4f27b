"""A real parameter server over loopback TCP: P server processes, W JAX workers, ordered pulls and pushes.

`run(PSConfig(...), schedulers)` makes this process the coordinator: it starts the servers and workers
(`python -m mlsys_core.tictac.ps`), hands each server the real bytes of its parameters and, every
iteration, each server the order in which to send them to each worker. `runs` repeats `run` with fresh
processes; `mean_interval` summarises per-run times; `orders_match` is the order check.

Enforcement (the paper's): a server sends its k-th transfer to a worker only after the worker's receive
loop (one thread per server connection) has acknowledged the (k-1)-th. Links: every server-worker
connection is paced to `bandwidth_gbps / workers` in each direction (a server's link shared equally by
its workers, as in the simulator), the pulls by the server and, in training, the pushes by the worker.
Each worker runs the model's primitives eagerly as soon as their inputs have arrived; in training it
pushes each gradient to its server the moment the op producing it has run. Checks: every payload
carries a CRC-32, checked by its receiver; workers record the order in which parameters arrived and the
coordinator compares it, per server, with the schedule (`PSConfig.fault="swap"` makes server 0 send its
first two transfers swapped, so that the check fails); every worker's output is compared with a jitted
reference.

Modules: `config` (`PSConfig`, and its command line), `wire` (message formats, paced sends),
`server`, `worker`, `coordinator` (`run`, `runs`, results `Trial` and `Runs`), `__main__` (a child
process's entry point). Importing this package does not start JAX.
"""

from mlsys_core.tictac.ps.config import FAULTS, PSConfig
from mlsys_core.tictac.ps.coordinator import Runs, Trial, mean_interval, orders_match, run, runs

__all__ = ["FAULTS", "PSConfig", "Runs", "Trial", "mean_interval", "orders_match", "run", "runs"]
