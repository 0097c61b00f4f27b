"""Paper 2 — Bandana: embedding tables on NVM read in 4 KB blocks, placed by SHP, cached in DRAM.

Modules (import them: `from mlsys_core.bandana import placement`):

- `workload`: embedding tables and a time-ordered request stream (Zipf popularity, co-access communities).
- `trace`: a trace of lookups, its file formats (CSV / NPZ / libCacheSim oracleGeneral) and loaders.
- `placement`: vectors into 4 KB blocks (sequential / random / k-means), the block map, fanout.
- `hypergraph`: past requests as a hypergraph over a table's vectors; blocks read, probabilistic fanout.
- `shp`: the Social Hash Partitioner.
- `evaluation`: the placement methods (`PLACEMENTS`), a trace split into past and future (`Experiment`),
  notebook 02's small workload and its effective bandwidth.
- `cache`: the DRAM cache, LRU with threshold admission of prefetched vectors.
- `mrc`: one-pass hit-rate curves, SHARDS, mini-caches.
- `thresholds`: the admission threshold t per table, chosen by mini-caches on the past.
- `nvm`: the NVM device model, endurance, memory cost.
- `queueing`: the device as a queue (arrivals, service times).
- `store`: a real file-backed block store, O_DIRECT reads and their measurement.
- `experiments`: the notebook's experiments as pure functions, one module per section.
- `measures`: the measurement behind each claim, as a function of its declared assumptions.
- `plots`: the notebook's figures.

NumPy + numba only: importing this never starts JAX.
"""
