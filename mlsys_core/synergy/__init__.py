"""The survey's synergies: its seven cross-paper claims, each as pure experiments over two papers' systems.

The one wing that imports other wings, and only their domain modules (`sharding.cost_model`, `strategies`,
`spmd`, `optimizers`; `bandana.evaluation`, `nvm`; `fl.fedavg`, `population`, `protocol`; `tictac.compare`,
`simulate`). Notebook 05 tabulates and plots what these functions return and hands the claim measurements
to the registry (`mlsys_core.claims.synergy`). One module per claim, in the survey's order (import them:
`from mlsys_core.synergy import bf16`):

1. `fedsgd`: synchronous data parallelism on a mesh (Paper 1) against FedAvg with full participation
   and one local step (Paper 3), per seed (`data_parallel_vs_fedsgd`, `fedsgd_equivalence`).
2. `cast_as_fl`: data-centre training cast as FL. The digits dealt out to devices, IID or Dirichlet
   (`dispatch`, `round_batches`), trained by FedAvg rounds (`federated_rounds`) with everyone or with the
   devices the FL protocol commits (`protocol_participants`), against data parallelism
   (`data_parallel_rounds`, `cast_as_fl`); the dispatch round's bytes and time next to a training
   round's (`dispatch_cost`).
3. `bf16`: what bfloat16 communication buys a pod and a phone (`bf16_saving_tpu`, with or without the
   all-reduce hidden under the compute; `bf16_saving_edge`), over the pod's link bandwidth, utilisation, overlap
   and size and the phones' link speeds (`bf16_pod_vs_phone`, `bf16_gap_points`); what bf16 deltas cost
   FedAvg's accuracy (`fedavg_delta_dtype`, `bf16_accuracy_gap`); the explorer `explore_bf16`.
4. `on_devices`: a federated evaluation round against the pod's distributed evaluation
   (`federated_accuracy`, `evaluation_on_devices`), its partial rounds' error against the binomial sampling
   error of the digits they score (`binomial_standard_error`); batch-norm statistics over device groups on
   non-IID data (`bn_on_devices`).
5. `fault_tolerance`: replica failures in WUS training, committed FL-style with the survivors
   (`quorum_commit`) or restarted from a checkpoint (`restart_from_checkpoint`), over failure rates
   (`goodput_grid`) and in the trained model's loss (`masked_wus_training`, `loss_vs_failure_rate`); a
   reporting deadline against waiting for every replica (`straggler_goodput`); the explorer `explore_faults`.
6. `nvm`: Bandana's NVM (Paper 2) holding a pod's optimizer state, each layout against its own step, at
   Bandana's measured effective bandwidth (`nvm_optimizer_state`, `bandana_effective_bandwidth`); the memory
   a chip can move to NVM without slowing its step (`nvm_movable_memory`); the explorer `explore_nvm`.
7. `tictac_links`: TicTac's gain (Paper 4) on pod links (the pod's transfer/compute balance,
   `pod_cluster`, `tictac_pod`) and on the FL population's phone downlinks (`tictac_vs_bandwidth`,
   `tictac_phone_percentiles`); the explorer `explore_tictac`.

`common`: what several synergies share (the cost model's workloads by name). `measures`: the measurement
behind each claim of `mlsys_core.claims.synergy` as a function of its declared assumptions (what the report
varies). `plots`: notebook 05's
figures (results in, Figure out; `plots.explore_<what>` draws `explore_<what>`'s result).

Importing this package does not start JAX.
"""
