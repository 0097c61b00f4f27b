"""Paper 3 — Towards Federated Learning at Scale (Bonawitz et al., SysML 2019), built for real.

- `population`: millions of devices as arrays, with diurnal eligibility windows across time zones and an
  optional check-in delay after each window opens.
- `rounds`: one round apart from the clock: `RoundConfig`, reservoir selection with over-selection, the
  selected devices' sessions, reporting, and the recycling of late updates.
- `steering`: pace steering, its modes as objects in `STEERING_MODES` ("none", "spread", "synchronise",
  "auto") over a small explicit state.
- `checkin`: the check-in stream, a calendar queue of every device's next check-in with numba kernels
  (a round touches only the devices due, so 10 M devices run a day).
- `protocol`: `simulate()`, a vectorised discrete-event model of rounds over a simulated day: a short
  driver over small steps and a typed columnar result (`FLSimResult`; `round_participants` gives each
  round's aggregated device ids).
- `actors`: Coordinator, Selectors, Master Aggregator, Aggregators exchanging messages on the simulated
  clock (and the survey's two-actor alternative); every message and lifecycle event goes into one log
  (`ActorSystem.trace`) that respawns and hops are counted from. `faults`: the topology, fault injection,
  the lock service and the control plane that works out who is down when.
- `fedavg`: FedAvg in JAX, all clients of a round in one jit + vmap; server optimizers as objects (FedAvg,
  FedProx, FedAdam, FedYogi on optax state); federated evaluation. `training` replays a `simulate` run as
  training: a round's clients are the devices the simulation accepted (late updates discarded or recycled).
- `telemetry`: session strings, per-round counters, and the privacy of per-device dashboards.
- `plans`: FL plans (device + server part), versioned per device runtime.
- `secagg`: Secure Aggregation (CCS 2017, the actively secure protocol) for one Aggregator group: pairwise
  masks, Shamir recovery of drop-outs, signed messages bound to their session and round, devices that answer
  each round once; built on `crypto` (X25519, Ed25519, HKDF, AES-GCM, AES-CTR; randomness from the system),
  `shamir` (t-of-n sharing over GF(2^31 - 1)) and `wire` (message formats). `secagg_cost` measures the bytes
  a device sends; `secure_round` runs it inside a FedAvg round (quantised updates, Aggregator groups, Master
  Aggregator); `secagg_attacks` is a malicious server's attacks on it, for notebook 03b.
- `dp`: DP-FedAvg with `dp-accounting`'s accountants (`ACCOUNTANTS`); `privacy`: notebook 03b's telemetry
  attacks and DP sweeps; `inversion`: gradient inversion of one update, against DP and Secure Aggregation.
- `experiments`: a package, one module per section of notebook 03, one pure, seeded function per figure or
  claim (per-seed values for the claims registry, `mlsys_core.claims.fl`).
- `measures`: the measurement behind each claim of `mlsys_core.claims.fl` as a function of its declared
  assumptions (time-zone mix, window length, drop-out, retry delay, ...), which the report varies.
- `plots`: figures for notebooks 03 and 03b (results in, Figure out).

Importing this package does not start JAX.
"""
