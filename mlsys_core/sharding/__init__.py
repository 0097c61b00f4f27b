"""Paper 1 - "Exploring the Limits of Concurrency in ML Training on Google TPUs" (Kumar et al., MLSys 2021).

- `models`: an MLP classifier (digits), an optimizer-heavy FFN stack and a transformer, as plain pytrees.
- `optimizers`: SGD/momentum/Adam from optax, LAMB/LARS with shard-exact trust ratios.
- `strategies`: data-parallel steps under `jax.shard_map` - replicated, weight-update sharding, FSDP
  (per-block gather, remat, gradient accumulation, prefetch); a package of `layouts` (the strategy
  objects and their registry), `blockwise` (losses made of blocks) and `trainer` (the step and loop).
- `spmd`: 2-D (data x model) Megatron-style model parallelism, distributed batch norm with a group
  size, distributed evaluation.
- `inspection`: collectives parsed from HLO, memory per device (persistent and XLA's), schedule order.
- `cost_model`: step time vs chip count (compute, ring all-reduce, weight update), MLPerf v0.7 table
  and logs (data/mlperf), sensitivity to its assumptions, the data-parallel roofline.
- `launch`: the same training under `jax.distributed` in several processes.
- `experiments`: the notebook's experiments as seeded functions that return typed results, one module
  per section of notebook 01.
- `measures`: the measurement behind each claim (`claims.sharding`, `claims.suite`) as a function of the
  claim's declared assumptions, for the report's sweeps.
- `plots`: figures for the notebook (take results, compute nothing).

Importing this package never starts a JAX backend; call `mlsys_core.backend.setup()` first.
"""
