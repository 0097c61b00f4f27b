"""Paper 4 — TicTac: communication scheduling for parameter-server training and inference.

- `graph`: `OpGraph`, a validated DAG of recv ops (parameter transfers) and compute ops, with the
  dependency bitsets `deps` TicTac's properties are built on.
- `jaxgraph`: op DAGs from real JAX programs (`trace` -> `FlatProgram`, `to_graph`), eager execution.
- `models`: the `MODELS` registry — an MLP, a small CNN, a ResNet-style and an Inception-style network
  in plain JAX, and three branching ones (skewed Inception, two-tower, transformer encoder).
- `ordering`: TIC, TAC (fast incremental kernel, and `tac_recompute`, the naive recompute-every-step
  form), baselines random / layer / reverse, all in the `SCHEDULERS` registry; `schedule`.
- `simulate`: the parameter-server simulator (`Cluster`, `simulate` -> `IterationResult`): pulls, and in
  training gradient pushes, over full-duplex links with an optional worker-card cap; its numba kernels
  live in `executor` (which compute op runs when) and `links` (transfers over a worker's flows).
- `placement`: parameter-to-server placements (round robin, size-balanced greedy) in the `PLACEMENTS` registry.
- `partition`: ByteScheduler-style tensor partitioning (slices, priority order; credit in `simulate`).
- `compare`: a bundled model's op graph (`model_graph`), schedulers side by side (`compare`, `speedup`).
- `ps`: a real parameter server over loopback TCP (a package: `config`, `wire`, `server`, `worker`,
  `coordinator`): P server processes enforcing the order by acknowledgement, paced links, W JAX workers
  pulling and pushing, CRC and order checks.
- `experiments`: the notebook's measurements as pure functions, one module per section; `plots`: their figures.
- `measures`: each claim's measurement as a function of its declared assumptions (what the report sweeps).

Importing this package does not start JAX.
"""
