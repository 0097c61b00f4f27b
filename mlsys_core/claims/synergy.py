"""Claims checked by the synergy notebook (05): the survey's arguments that the four papers combine.

The survey gives no numbers for most of them, so each rule states what we take the claim to mean as
a measurable quantity, and the partly band says how close counts as "a little". Every claim names its
measure function (`mlsys_core.synergy.measures`) and the assumptions that could decide it: for the pod's
side the chip count, the per-chip link bandwidth and whether the all-reduce overlaps the compute; for the
phones' side the make-up of the population.
"""

from mlsys_core.claims import rules
from mlsys_core.claims.registry import Assumption, Claim

PAPER = "Survey — synergies"
SURVEY = "survey: Synergistic approaches"
MEASURES = "mlsys_core.synergy.measures:"

_COST_MODEL = "Paper 1's cost model (sharding.cost_model)"
LINK = Assumption(
    "link_gb_per_s", "pod link bandwidth per chip", "GB/s", 330.0, (70.0, 200.0, 330.0),
    "Cloud TPU's v3 page (cloud.google.com/tpu/docs/v3): all-reduce bandwidth 340 TB/s per 1,024-chip pod, "
    "about 330 GB/s per chip (the default, sharding.cost_model.TPU_V3's link); suite's choice: 70 GB/s as the "
    "low end of the range, a slower interconnect (the paper gives no per-chip figure)",
)
OVERLAP = Assumption(
    "overlap", "all-reduce hidden under the compute (0 no, 1 yes)", "", 0.0, (0.0, 1.0),
    f"{_COST_MODEL}'s overlap flag (model_step_s): the two ends, the all-reduce after the compute or hidden "
    "under it",
)
UTILISATION = Assumption(
    "utilisation", "pod utilisation of peak FLOP/s", "", 0.4, (0.3, 0.4, 0.6),
    f"suite's choice: {_COST_MODEL}'s 0.4, and 0.3-0.6 around it; Paper 1 gives step times, not utilisation",
)


def _chips(default: float) -> Assumption:
    return Assumption(
        "chips", "TPU-v3 chips in the pod", "chips", default, (256.0, 1024.0, 4096.0),
        "Paper 1 (arXiv 2011.03641): MLPerf v0.7 runs on 512-4096 TPU-v3 chips; Cloud TPU v3 page: a pod "
        "is 1,024 chips; 256: a quarter pod",
    )


_PEAK_KIOPS = Assumption(
    "peak_kiops", "NVM drive's peak 4 KB reads", "K IOPS", 585.0, (585.0, 1500.0),
    "Intel's Optane SSD datasheets: P4800X 585 K random 4 KB reads/s (2.4 GB/s, the drive bandana.nvm models), "
    "P5800X 1.5 M (6.1 GB/s)",
)
_FAILURE_GOODPUT = Assumption(
    "failure_rate", "failure chance per replica and step", "", 1e-3, (1e-4, 1e-3, 1e-2),
    "suite's choice: one failure per 10,000 to per 100 replica-steps, rare to frequent for a pod",
)
_REPLICAS = Assumption(
    "replicas", "replicas failing or straggling independently (chips)", "", 8.0, (8.0, 256.0, 4096.0),
    "8: the simulated mesh; 256-4096: Paper 1's pods (arXiv 2011.03641), one replica per chip",
)
_ALPHA_DEVICES = Assumption(
    "alpha", "Dirichlet concentration of the devices' label mix", "", 0.5, (0.1, 0.5, 5.0),
    "suite's choice: 0.1 (a few classes per device) to 5 (nearly IID); 0.5 is common in the FL literature",
)

CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="synergy.dp_equals_fedsgd",
        paper=PAPER,
        statement="synchronous data-parallel SGD on a pod and FedSGD (full participation, one local step, "
        "equal clients) make the same update",
        paper_value="fundamentally equivalent",
        source=SURVEY,
        unit="max |Δθ| between the two / max |Δθ| from training",
        rule=rules.at_most(1e-4, partly=1e-2),
        kind="sanity check",
        measure=MEASURES + "dp_equals_fedsgd",
        parameters=(
            Assumption("learning_rate", "SGD learning rate", "", 0.1, (0.01, 0.1),
                       "suite's choice: 0.01, slow training, shrinks the ratio's denominator (how far training "
                       "moved the weights); 0.1: the digits MLP's usual rate"),
        ),
        assumptions=(
            "digits MLP, 10 steps of 8 x 16 examples, SGD, float32",
            "8 simulated devices with the replicated strategy vs 8 vmapped FedAvg clients",
            "seeds draw the data order and the initial weights",
        ),
        seeds=5,
        fmt=".2g",
        interval="bootstrap",
    ),
    Claim(
        id="synergy.bf16_fl_gains_more",
        paper=PAPER,
        statement="bfloat16 on the wire saves a phone's FL session a larger share of its time than it saves "
        "a TPU pod's step (median phone minus the pod, percentage points)",
        paper_value="FL gains more (edge links are slower)",
        source=SURVEY,
        unit="percentage points",
        rule=rules.direction(+1, min_effect=2.0),
        kind="survey test",
        measure=MEASURES + "bf16_fl_gains_more",
        parameters=(
            LINK,
            OVERLAP,
            UTILISATION,
            Assumption("phone_link_factor", "phone link speed, x the population's medians", "x", 1.0,
                       (0.25, 1.0, 4.0),
                       "suite's choice: a quarter to four times the FL population's 2 MB/s down, 1 MB/s up "
                       "medians (fl.population defaults)"),
            _chips(4096.0),
        ),
        assumptions=(
            "pod: Paper 1's cost model, BERT-large on TPU-v3 chips, fixed global batch 8192, WUS, f32 -> bf16 "
            "gradients; the saving is 1 - step(bf16) / step(f32)",
            "phones: FL population defaults, median device (200 examples at 5 examples/s), a 1.4 M-parameter "
            "model (Gboard's) down and up once per session, one epoch; a session cannot overlap its transfers "
            "with its training (it needs the model first and sends the update after)",
            "seeds draw the phone population (100,000 devices each)",
        ),
        seeds=5,
    ),
    Claim(
        id="synergy.bf16_deltas_keep_accuracy",
        paper=PAPER,
        statement="rounding each client's FedAvg delta to bfloat16 before upload keeps the model's accuracy "
        "(float32 minus bf16 test accuracy after 30 rounds)",
        paper_value="no loss (implied; Paper 1 trains BERT with bf16)",
        source=SURVEY,
        unit="accuracy",
        rule=rules.equal(0.0, atol=0.01, partly_atol=0.03),
        kind="survey test",
        measure=MEASURES + "bf16_deltas_keep_accuracy",
        parameters=(
            Assumption("alpha", "Dirichlet concentration of the clients' label mix", "", 0.5, (0.1, 0.5),
                       "suite's choice: 0.5 (common in the FL literature) and 0.1 (a few classes per client)"),
        ),
        assumptions=(
            "digits MLP, 100 clients, 20 clients per round, 30 rounds, 360 test digits",
            "clients compute in float32; only the uploaded delta is rounded",
            "seeds draw the split, initial weights and client selection",
        ),
        seeds=5,
        fmt=".2g",
        interval="bootstrap",
    ),
    Claim(
        id="synergy.nvm_optimizer_state_slowdown",
        paper=PAPER,
        statement="a pod's optimizer state can sit on NVM (one Optane drive per chip) at little cost in step "
        "time once weight-update sharding splits it (step time with it over without)",
        paper_value="feasible (implied by 'NVM ~10x cheaper for pod memory')",
        source=SURVEY,
        unit="x step time",
        rule=rules.at_most(1.05, partly=1.25),
        kind="survey test",
        measure=MEASURES + "nvm_optimizer_state_slowdown",
        parameters=(_chips(1024.0), LINK, OVERLAP, _PEAK_KIOPS),
        assumptions=(
            "BERT-large with LAMB, Paper 1's cost model at utilisation 0.4; 1024 chips by default (the survey's "
            "~1000); the WUS layout against its own step",
            "m and v in f32 (8 B per parameter), read and written once per step, never hidden under the step",
            "a dense state is streamed whole, so every byte of each 4 KB block is used (effective bandwidth 1 in "
            "Bandana's terms) at the drive's 4 KB peak both ways",
        ),
        fmt=".4g",
    ),
    Claim(
        id="synergy.nvm_sparse_state_slowdown",
        paper=PAPER,
        statement="optimizer state read row by row, as Bandana reads embeddings, can sit on NVM at little cost in "
        "step time once weight-update sharding splits it (step time with it over without)",
        paper_value="feasible (implied by 'NVM ~10x cheaper for pod memory')",
        source=SURVEY,
        unit="x step time",
        rule=rules.at_most(1.05, partly=1.25),
        kind="survey test",
        measure=MEASURES + "nvm_sparse_state_slowdown",
        parameters=(
            Assumption("cache_fraction", "Bandana's DRAM cache, share of the table", "", 0.1, (0.05, 0.1, 0.2),
                       "suite's choice around notebook 02's 10% cache (Bandana sizes its DRAM cache as a small "
                       "fraction of the tables)"),
            _chips(1024.0), LINK, OVERLAP, _PEAK_KIOPS,
        ),
        assumptions=(
            "as synergy.nvm_optimizer_state_slowdown, but the drive delivers only Bandana's measured effective "
            "bandwidth (useful / read bytes: SHP placement, the DRAM cache, t = 2, notebook 02's small workload, "
            "bandana.evaluation.effective_bandwidth) of its 4 KB-block peak",
        ),
        fmt=".4g",
    ),
    Claim(
        id="synergy.nvm_pod_memory_bill",
        paper=PAPER,
        statement="the memory a chip can move to NVM without slowing its step (what the drive reads and writes "
        "back within one step) cuts a pod's memory bill ~10x",
        paper_value="90% saved ($200,000 -> $20,000 for 1000 chips x 32 GB)",
        source=SURVEY,
        unit="% of the memory bill",
        rule=rules.at_least(80.0, partly=30.0),
        kind="survey test",
        measure=MEASURES + "nvm_pod_memory_bill",
        parameters=(
            _PEAK_KIOPS,
            Assumption("model", "workload (0 BERT-large, 1 ResNet-50)", "", 0.0, (0.0, 1.0),
                       "Paper 1's MLPerf v0.7 benchmarks (arXiv 2011.03641), in the cost model's WORKLOADS"),
            _chips(1024.0), LINK, OVERLAP,
        ),
        assumptions=(
            "32 GB HBM per chip, all priced as DRAM at the survey's $6.25/GB; NVM 10x cheaper per byte (the "
            "survey's prices)",
            "memory a step touches crosses the drive once each way per step, and at best hides behind the whole "
            "step (prefetched): the drive moves step time x its 4 KB peak / 2 bytes per chip",
            "a training chip's HBM holds weights, activations and optimizer state, all touched every step",
        ),
        fmt=".2g",
    ),
    Claim(
        id="synergy.tictac_helps_fl",
        paper=PAPER,
        statement="TicTac's transfer ordering (TAC) speeds up a phone's training step on an edge downlink "
        "(TAC over random order, throughput)",
        paper_value="helps (survey); TicTac itself: up to 19.2% for training in the data centre",
        source=SURVEY,
        unit="x throughput",
        rule=rules.at_least(1.10, partly=1.02, exceeds=1.192),
        kind="survey test",
        measure=MEASURES + "tictac_helps_fl",
        parameters=(
            Assumption("percentile", "percentile of the phones' downlink", "th", 50.0, (10.0, 50.0, 90.0),
                       "the FL population's drawn downlinks (fl.population: log-normal, median 2 MB/s = "
                       "16 Mbit/s, sigma 0.6), slow tenth to fast tenth"),
            Assumption("local_steps", "local steps per download", "", 1.0, (1.0, 4.0, 13.0),
                       "1: FedSGD; 13: one FedAvg epoch of the population's median device (200 examples in "
                       "batches of 16)"),
            Assumption("phone_gflops", "phone compute rate", "GFLOP/s", 10.0, (5.0, 10.0, 40.0),
                       "suite's choice: 10 GFLOP/s is the TicTac simulator's default worker; 5-40 spans slow "
                       "to fast phones' achieved rate on small training kernels"),
        ),
        assumptions=(
            "notebook 04's simulator and ResNet-style training graph; one phone on its own downlink (1 worker)",
            "50 us per transfer (one connection streams the tensors; the round trip is paid once per session, "
            "not per tensor)",
            "seeds draw the population (so the link at each percentile) and the random orders",
        ),
        seeds=5,
        fmt=".3f",
        interval="log-t",
    ),
    Claim(
        id="synergy.tictac_helps_pods",
        paper=PAPER,
        statement="TicTac's transfer ordering (TAC) speeds up a TPU pod's training step (TAC over random order, "
        "throughput)",
        paper_value="improves the pod's performance greatly (survey); TicTac itself: up to 19.2% for training",
        source=SURVEY,
        unit="x throughput",
        rule=rules.at_least(1.10, partly=1.02, exceeds=1.192),
        kind="survey test",
        measure=MEASURES + "tictac_helps_pods",
        parameters=(LINK, _chips(4096.0), UTILISATION),
        assumptions=(
            "notebook 04's simulator and ResNet-style training graph, one worker on its own link (a chip), 1 us "
            "per transfer",
            "compute rate set so the graph's pulls + pushes over its compute equal the all-reduce over compute + "
            "update of BERT-large in Paper 1's cost model (WUS) at each setting",
            "overlap is the simulator's own (TicTac's ordering decides how much the transfers hide), so the cost "
            "model's overlap flag does not apply",
            "ordering the all-gather / reduce-scatter of a WUS step is taken to behave like ordering a parameter "
            "server's pulls and pushes",
            "seeds draw the random orders",
        ),
        seeds=5,
        fmt=".3f",
        interval="log-t",
    ),
    Claim(
        id="synergy.quorum_commit_goodput",
        paper=PAPER,
        statement="committing each step with the replicas that survived it, as FL commits a round without "
        "its dropped devices, gives a pod more goodput than restarting from the last checkpoint "
        "(quorum's goodput minus restart's, each as a share of a failure-free pod's)",
        paper_value="FL's fault-tolerant design lends well to TPUs",
        source=SURVEY,
        unit="goodput (share of a failure-free pod)",
        rule=rules.at_least(0.05, partly=0.0),
        kind="survey test",
        measure=MEASURES + "quorum_commit_goodput",
        parameters=(
            _FAILURE_GOODPUT,
            Assumption("checkpoint_interval", "restart: committed steps between checkpoints", "steps", 50.0,
                       (10.0, 50.0, 200.0), "suite's choice: frequent to rare checkpoints of a step-time scale"),
            Assumption("restart_steps", "restart: time to restart", "step times", 20.0, (5.0, 20.0, 60.0),
                       "suite's choice: a fast to a slow restart, in healthy step times"),
            _REPLICAS,
        ),
        assumptions=(
            "each replica fails in a step independently; 2000 step times of wall clock",
            "restart: a checkpoint costs 2 step times; a failure loses its step, the restart time and the work "
            "since the checkpoint",
            "quorum: a step with a failure costs 1 extra step time (the failed replica's WUS shard restored "
            "from a peer copy) and its gradient is skipped",
            "a difference of goodputs, not a ratio: restart's goodput reaches zero at high failure rates",
            "seeds draw the failures",
        ),
        seeds=5,
        interval="bootstrap",
    ),
    Claim(
        id="synergy.quorum_commit_loss",
        paper=PAPER,
        statement="at equal wall clock under replica failures, quorum-committed WUS training reaches a lower "
        "test loss than restart-from-checkpoint (restart's loss minus quorum's)",
        paper_value="FL's fault-tolerant design lends well to TPUs",
        source=SURVEY,
        unit="nats",
        rule=rules.direction(+1, min_effect=0.02),
        kind="survey test",
        measure=MEASURES + "quorum_commit_loss",
        parameters=(
            Assumption("failure_rate", "failure chance per replica and step", "", 0.01, (0.001, 0.003, 0.01, 0.03),
                       "suite's choice: one failure per 1,000 to per 33 replica-steps over a short run"),
            Assumption("restart_steps", "restart: time to restart", "step times", 5.0, (5.0, 20.0),
                       "suite's choice: a fast restart (kind to restart) and the goodput claim's 20"),
        ),
        assumptions=(
            "digits MLP, Adam lr 0.01, WUS on the 8-device mesh, 8 examples per replica, 80 step times of wall "
            "clock, 360 test digits",
            "checkpoint every 10 steps (2 step times); quorum recovery 1 step time",
            "a restart replays the same batches from its checkpoint, so it trains the first n batches",
            "seeds draw the failures, the data order and the initial weights",
        ),
        seeds=5,
        fmt=".3f",
    ),
    Claim(
        id="synergy.deadline_beats_waiting",
        paper=PAPER,
        statement="a reporting deadline (FL's reporting window: commit the replicas that made it) gives a pod "
        "with stragglers more goodput than waiting for every replica (deadline over wait)",
        paper_value="some tasks on one TPU can take longer than another (survey); FL's answer is the deadline",
        source=SURVEY,
        unit="x goodput",
        rule=rules.at_least(1.05, partly=1.0),
        kind="survey test",
        measure=MEASURES + "deadline_beats_waiting",
        parameters=(
            Assumption("straggler_p", "straggler chance per replica and step", "", 0.03, (0.01, 0.03, 0.1, 0.3),
                       "suite's choice: rare to common stragglers"),
            Assumption("deadline", "reporting deadline", "healthy step times", 1.5, (1.2, 1.5, 2.0),
                       "suite's choice: tight to loose, above the healthy steps' jitter (sigma 0.1)"),
            Assumption("slow_factor", "a straggler's slowdown", "x", 4.0, (2.0, 4.0, 8.0),
                       "suite's choice: a straggler two to eight times slower"),
            _REPLICAS,
        ),
        assumptions=(
            "step times log-normal (sigma 0.1) around the healthy step; 2000 steps",
            "a late replica's gradient is dropped (its compute wasted)",
            "waiting for all keeps goodput above 0.2 over these ranges, so the ratio's denominator stays away "
            "from zero",
            "seeds draw the step times",
        ),
        seeds=5,
        fmt=".3f",
        interval="log-t",
    ),
    Claim(
        id="synergy.dispatch_one_round",
        paper=PAPER,
        statement="dispatching a data-centre data set onto edge devices costs no more than one training round "
        "of communication (dispatch time over one round's model download + update upload, median phone)",
        paper_value="only one extra round of communication",
        source=SURVEY,
        unit="rounds",
        rule=rules.at_most(1.0, partly=3.0),
        kind="survey test",
        measure=MEASURES + "dispatch_one_round",
        parameters=(
            Assumption("devices", "devices the data is dealt to", "", 100.0, (8.0, 40.0, 100.0, 400.0),
                       "suite's choice: a mesh's 8 to a few hundred devices for 1437 digits"),
        ),
        assumptions=(
            "the digits (1437 training examples x 64 float32 pixels + a label) dealt out evenly",
            "the FL package's digits MLP (2410 float32 parameters) down and its update up once per round",
            "the median device of notebook 03's population (2 MB/s down, 1 MB/s up)",
        ),
        fmt=".3g",
    ),
    Claim(
        id="synergy.cast_as_fl_rounds",
        paper=PAPER,
        statement="training cast as FL on dispatched data (non-IID devices, the protocol's partial participation "
        "and drop-outs) reaches data-parallel accuracy in the data-parallel step count plus one round "
        "((rounds to reach + the dispatch round) / data-parallel steps)",
        paper_value="only one extra round of communication (1 + 1/30 here)",
        source=SURVEY,
        unit="x data-parallel steps",
        rule=rules.at_most(1.1, partly=2.0),
        kind="survey test",
        measure=MEASURES + "cast_as_fl_rounds",
        parameters=(
            Assumption("goal_count", "devices the protocol aims to commit per round (of 100)", "", 10.0,
                       (5.0, 10.0, 20.0), "suite's choice: 5-20% of the devices per round"),
            _ALPHA_DEVICES,
            Assumption("drop_out", "devices' mean drop-out chance per session", "", 0.08, (0.02, 0.08, 0.3),
                       "paper text: Paper 3 (arXiv 1902.01046) Sec. 9, 6-10% of devices drop out (centre 8%, "
                       "fl.population's default); 0.02 and 0.3 bracket it"),
        ),
        assumptions=(
            "reference: 30 steps of data-parallel SGD (lr 0.1) on 8 devices x 16 examples, computed as FedSGD on "
            "8 IID shards (the same update, synergy.dp_equals_fedsgd)",
            "FL: the digits dealt to 100 devices by Dirichlet(alpha), one local SGD step of 16 examples per round, "
            "FedAvg weights by shard size",
            "participants: the committed devices of the FL protocol (over-selection 1.3, drop-outs), with devices "
            "always eligible and no cool-down (a data centre's own devices), so time zones and windows do not "
            "enter",
            "a run that does not reach the reference within 60 rounds counts as 61 (a lower bound)",
            "seeds draw the split, the data order, the initial weights and the protocol's sessions",
        ),
        seeds=5,
        fmt=".3g",
        interval="log-t",
    ),
    Claim(
        id="synergy.federated_eval_equals_pod",
        paper=PAPER,
        statement="a federated evaluation round with every device reporting (correct, examples) gives the pod's "
        "distributed accuracy on the same model and data (|federated - pod|)",
        paper_value="evaluation can move to the edge devices",
        source=SURVEY,
        unit="accuracy",
        rule=rules.at_most(1e-6, partly=1e-3),
        kind="sanity check",
        measure=MEASURES + "federated_eval_equals_pod",
        parameters=(
            Assumption("devices", "devices the test digits are dealt to", "", 40.0, (10.0, 40.0, 120.0),
                       "suite's choice: 360 test digits over 10-120 devices (36-3 digits each)"),
        ),
        assumptions=(
            "digits MLP trained 30 FedAvg rounds; 360 test digits dealt to the devices by Dirichlet(0.5)",
            "pod: Paper 1's sharded evaluation on the 8-device mesh (sharding.spmd.distributed_accuracy)",
            "seeds draw the split and the model",
        ),
        seeds=5,
        fmt=".2g",
        interval="bootstrap",
    ),
    Claim(
        id="synergy.federated_eval_partial_error",
        paper=PAPER,
        statement="a federated evaluation round with the protocol's partial participation estimates the pod's "
        "accuracy as well as the test digits it scores allow (RMS error over 20 committed rounds, over the "
        "binomial standard error of a random sample of as many test digits)",
        paper_value="evaluation can move to the edge devices; suite: within 1.5x the sampling error",
        source=SURVEY,
        unit="x sampling error",
        rule=rules.at_most(1.5, partly=3.0),
        kind="survey test",
        measure=MEASURES + "federated_eval_partial_error",
        parameters=(
            Assumption("goal_count", "devices per evaluation round (of 40)", "", 10.0, (4.0, 10.0, 20.0),
                       "suite's choice: 10-50% of the devices per round"),
            _ALPHA_DEVICES,
        ),
        assumptions=(
            "as synergy.federated_eval_equals_pod, 40 devices; each round evaluates on the devices the FL protocol "
            "commits (over-selection 1.3, drop-outs, devices always eligible)",
            "the standard error is sqrt(p (1 - p) / n x (N - n) / (N - 1)) for the n digits a round scores of "
            "the N = 360, p the pod's accuracy, computed per round (on_devices.binomial_standard_error); a ratio "
            "of 1 is what a random sample of the same size gives",
            "seeds draw the split, the model and the protocol's sessions",
        ),
        seeds=5,
        fmt=".3f",
        interval="log-t",
    ),
    Claim(
        id="synergy.bn_groups_on_devices",
        paper=PAPER,
        statement="on non-IID devices, batch-norm statistics aggregated over a group of 8 devices (Paper 1's "
        "distributed batch norm) give a more accurate model than each device's local statistics "
        "(accuracy with g = 8 minus g = 1)",
        paper_value="batch normalisation can move to the edge devices",
        source=SURVEY,
        unit="accuracy",
        rule=rules.direction(+1, min_effect=0.02),
        kind="survey test",
        measure=MEASURES + "bn_groups_on_devices",
        parameters=(
            Assumption("alpha", "Dirichlet concentration of the devices' shards", "", 0.1, (0.1, 0.5),
                       "suite's choice: 0.1 (a few classes per device) and 0.5 (milder skew)"),
        ),
        assumptions=(
            "sharding.spmd.BatchNormMLP (64-64-10), WUS Adam lr 0.01 on the 8-device mesh, 60 synchronous steps "
            "of 8 examples per device",
            "each device draws its batches from its own Dirichlet shard of the training digits",
            "evaluation with the whole training set's statistics (one federated aggregate), 360 test digits",
            "seeds draw the split, the data order and the initial weights",
        ),
        seeds=5,
        fmt=".3f",
        interval="bootstrap",
    ),
)
