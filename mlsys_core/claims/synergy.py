"""Claims checked by the synergy notebook (05): the survey's arguments that the four papers combine.

The survey gives no numbers for most of them, so each rule states what we take the claim to mean as
a measurable quantity, and the partly band says how close counts as "a little".
"""

from mlsys_core.claims import rules
from mlsys_core.claims.registry import Claim, Sweep

PAPER = "Survey — synergies"
SURVEY = "survey: Synergistic approaches"

_POD_BF16 = (
    "pod: Paper 1's cost model, BERT-large on 4096 TPU-v3 chips, fixed global batch 8192, WUS, f32 -> bf16 gradients",
    "no overlap of compute and all-reduce: the saving is half the all-reduce's share of the step",
    "phones: FL population defaults, median device (200 examples at 5 examples/s, 2 MB/s down, 1 MB/s up), "
    "a 1.4 M-parameter model (Gboard's) down and up once per session, one epoch",
    "seeds draw the phone population (100,000 devices each)",
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
        assumptions=(
            "digits MLP, 10 steps of 8 x 16 examples, SGD lr 0.1, float32",
            "8 simulated devices with the replicated strategy vs 8 vmapped FedAvg clients",
            "seeds draw the data order and the initial weights",
        ),
        seeds=5,
        fmt=".2g",
    ),
    Claim(
        id="synergy.bf16_fl_gains_more_vs_bandwidth",
        paper=PAPER,
        statement="bfloat16 on the wire saves a phone's FL session a larger share of its time than it saves "
        "a TPU pod's step (median phone minus 4096-chip pod), over the pod's per-chip link bandwidth",
        paper_value="FL gains more (edge links are slower)",
        source=SURVEY,
        unit="percentage points",
        rule=rules.direction(+1, min_effect=2.0),
        assumptions=(*_POD_BF16, "utilisation 0.4 of peak bf16 FLOP/s"),
        seeds=5,
        sweep=Sweep("pod link bandwidth per chip", "GB/s", (70.0, 100.0, 150.0, 200.0, 250.0, 330.0), 70.0),
    ),
    Claim(
        id="synergy.bf16_fl_gains_more_vs_utilisation",
        paper=PAPER,
        statement="bfloat16 on the wire saves a phone's FL session a larger share of its time than it saves "
        "a TPU pod's step (median phone minus 4096-chip pod), over the pod's achieved utilisation",
        paper_value="FL gains more (edge links are slower)",
        source=SURVEY,
        unit="percentage points",
        rule=rules.direction(+1, min_effect=2.0),
        assumptions=(*_POD_BF16, "70 GB/s per-chip link bandwidth (the cost model's default)"),
        seeds=5,
        sweep=Sweep("pod utilisation of peak FLOP/s", "", (0.3, 0.4, 0.5, 0.6), 0.4),
    ),
    Claim(
        id="synergy.bf16_fl_gains_more_vs_phone_link",
        paper=PAPER,
        statement="bfloat16 on the wire saves a phone's FL session a larger share of its time than it saves "
        "a TPU pod's step (median phone minus 4096-chip pod), over the phones' link speeds",
        paper_value="FL gains more (edge links are slower)",
        source=SURVEY,
        unit="percentage points",
        rule=rules.direction(+1, min_effect=2.0),
        assumptions=(*_POD_BF16, "pod at 70 GB/s per chip and utilisation 0.4 (the cost model's defaults)",
                     "phone links: both medians (2 MB/s down, 1 MB/s up) times the swept factor, same spread"),
        seeds=5,
        sweep=Sweep("phone link speed, x the population's medians", "x", (0.25, 0.5, 1.0, 2.0, 4.0), 1.0),
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
        assumptions=(
            "digits MLP, 100 clients Dirichlet(0.5) non-IID, 20 clients per round, 30 rounds, 360 test digits",
            "clients compute in float32; only the uploaded delta is rounded",
            "seeds draw the split, initial weights and client selection",
        ),
        seeds=5,
        fmt=".2g",
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
        assumptions=(
            "BERT-large with LAMB on 1024 TPU-v3 chips (the survey's ~1000), Paper 1's cost model at 70 GB/s, "
            "utilisation 0.4; each layout against its own step (replicated vs WUS update)",
            "m and v in f32 (8 B per parameter), read and written once per step, not overlapped with compute",
            "a dense state is streamed whole, so every byte of each 4 KB block is used (effective bandwidth 1 in "
            "Bandana's terms) at the drive's 4 KB peak (585 K IOPS, 2.4 GB/s) both ways",
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
        assumptions=(
            "as synergy.nvm_optimizer_state_slowdown, but the drive delivers only Bandana's measured effective "
            "bandwidth (useful / read bytes: SHP placement, 10% DRAM cache, t = 2, notebook 02's small workload, "
            "bandana.evaluation.effective_bandwidth) of its 4 KB-block peak",
        ),
        fmt=".4g",
    ),
    Claim(
        id="synergy.nvm_pod_memory_bill",
        paper=PAPER,
        statement="moving the memory that fits on NVM without slowing the step (the sharded optimizer state) "
        "cuts a pod's memory bill ~10x",
        paper_value="90% saved ($200,000 -> $20,000 for 1000 chips x 32 GB)",
        source=SURVEY,
        unit="% of the memory bill",
        rule=rules.at_least(80.0, partly=30.0),
        assumptions=(
            "32 GB HBM per chip, all priced as DRAM at the survey's $6.25/GB; NVM 10x cheaper per byte",
            "only the WUS optimizer-state shard moves (the placement claim synergy.nvm_optimizer_state_slowdown "
            "measures); weights and activations are read several times a step and stay in HBM",
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
        assumptions=(
            "notebook 04's simulator and ResNet-style training graph; one phone on its own downlink (1 worker)",
            "the phone's downlink is the swept percentile of notebook 03's population (log-normal, median "
            "2 MB/s = 16 Mbit/s, sigma 0.6)",
            "phone compute 10 GFLOP/s; 50 us per transfer (one connection streams the tensors; the "
            "round trip is paid once per session, not per tensor)",
            "one local step per download (FedSGD); FedAvg's many local steps per download dilute the gain",
            "seeds draw the population (so the link at each percentile) and the random orders",
        ),
        seeds=5,
        sweep=Sweep("percentile of the phones' downlink", "th", (10.0, 25.0, 50.0, 75.0, 90.0), 50.0),
        fmt=".3f",
    ),
    Claim(
        id="synergy.tictac_helps_pods",
        paper=PAPER,
        statement="TicTac's transfer ordering (TAC) speeds up a TPU pod's training step (TAC over random order, "
        "throughput), over the pod's per-chip link bandwidth",
        paper_value="improves the pod's performance greatly (survey); TicTac itself: up to 19.2% for training",
        source=SURVEY,
        unit="x throughput",
        rule=rules.at_least(1.10, partly=1.02, exceeds=1.192),
        assumptions=(
            "notebook 04's simulator and ResNet-style training graph, one worker on its own link (a chip), 1 us "
            "per transfer",
            "compute rate set so the graph's pulls + pushes over its compute equal the all-reduce over compute + "
            "update of BERT-large on 4096 TPU-v3 chips (Paper 1's cost model, WUS, utilisation 0.4) at each "
            "link bandwidth",
            "ordering the all-gather / reduce-scatter of a WUS step is taken to behave like ordering a parameter "
            "server's pulls and pushes",
            "seeds draw the random orders",
        ),
        seeds=5,
        sweep=Sweep("pod link bandwidth per chip", "GB/s", (70.0, 100.0, 150.0, 200.0, 250.0, 330.0), 70.0),
        fmt=".3f",
    ),
    Claim(
        id="synergy.quorum_commit_goodput",
        paper=PAPER,
        statement="committing each step with the replicas that survived it, as FL commits a round without "
        "its dropped devices, gives a pod more goodput than restarting from the last checkpoint "
        "(quorum over restart, useful examples per wall-clock)",
        paper_value="FL's fault-tolerant design lends well to TPUs",
        source=SURVEY,
        unit="x goodput",
        rule=rules.at_least(1.05, partly=1.0),
        assumptions=(
            "8 data-parallel replicas; each fails in a step independently with the swept chance; 2000 step "
            "times of wall clock",
            "restart: checkpoint every 50 steps costing 2 step times; a failure loses its step, 20 step times "
            "to restart and the work since the checkpoint",
            "quorum: a step with a failure costs 1 extra step time (the failed replica's WUS shard restored "
            "from a peer copy) and its gradient is skipped",
            "seeds draw the failures",
        ),
        seeds=5,
        sweep=Sweep("failure chance per replica and step", "", (1e-4, 3e-4, 1e-3, 3e-3, 1e-2), 1e-3),
        fmt=".3f",
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
        assumptions=(
            "digits MLP, Adam lr 0.01, WUS on the 8-device mesh, 8 examples per replica, 80 step times of wall "
            "clock, 360 test digits",
            "failure chance 0.01 per replica and step; checkpoint every 10 steps (2 step times), restart 5 step "
            "times; quorum recovery 1 step time",
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
        assumptions=(
            "8 replicas, step times log-normal (sigma 0.1) around the healthy step; with the swept chance a "
            "replica runs 4x slower that step",
            "deadline 1.5 healthy step times; a late replica's gradient is dropped (its compute wasted)",
            "seeds draw the step times",
        ),
        seeds=5,
        sweep=Sweep("straggler chance per replica and step", "", (0.01, 0.03, 0.1, 0.3), 0.03),
        fmt=".3f",
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
        assumptions=(
            "the digits (1437 training examples x 64 float32 pixels + a label) dealt out evenly over the swept "
            "number of devices",
            "the FL package's digits MLP (2410 float32 parameters) down and its update up once per round",
            "the median device of notebook 03's population (2 MB/s down, 1 MB/s up)",
        ),
        sweep=Sweep("devices the data is dealt to", "", (8.0, 40.0, 100.0, 400.0), 100.0),
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
        assumptions=(
            "reference: 30 steps of data-parallel SGD (lr 0.1) on 8 devices x 16 examples, computed as FedSGD on "
            "8 IID shards (the same update, synergy.dp_equals_fedsgd)",
            "FL: the digits dealt to 100 devices by Dirichlet(0.5), one local SGD step of 16 examples per round, "
            "FedAvg weights by shard size",
            "participants: the committed devices of the FL protocol (goal 10, over-selection 1.3, drop-outs), "
            "with devices always eligible and no cool-down (a data centre's own devices)",
            "a run that does not reach the reference within 60 rounds counts as 61 (a lower bound)",
            "seeds draw the split, the data order, the initial weights and the protocol's sessions",
        ),
        seeds=5,
        fmt=".3g",
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
        assumptions=(
            "digits MLP trained 30 FedAvg rounds; 360 test digits dealt to 40 devices by Dirichlet(0.5)",
            "pod: Paper 1's sharded evaluation on the 8-device mesh (sharding.spmd.distributed_accuracy)",
            "seeds draw the split and the model",
        ),
        seeds=5,
        fmt=".2g",
    ),
    Claim(
        id="synergy.federated_eval_partial_error",
        paper=PAPER,
        statement="a federated evaluation round with the protocol's partial participation estimates the pod's "
        "accuracy within 2 points (RMS over 20 committed rounds of federated minus pod accuracy)",
        paper_value="evaluation can move to the edge devices",
        source=SURVEY,
        unit="accuracy",
        rule=rules.at_most(0.02, partly=0.05),
        assumptions=(
            "as synergy.federated_eval_equals_pod; each round evaluates on the devices the FL protocol commits "
            "(over-selection 1.3, drop-outs, devices always eligible), about 9 test digits each",
            "seeds draw the split, the model and the protocol's sessions",
        ),
        seeds=5,
        sweep=Sweep("devices per evaluation round (goal count, of 40)", "", (4.0, 10.0, 20.0), 10.0),
        fmt=".3f",
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
        assumptions=(
            "sharding.spmd.BatchNormMLP (64-64-10), WUS Adam lr 0.01 on the 8-device mesh, 60 synchronous steps "
            "of 8 examples per device",
            "each device draws its batches from its own Dirichlet(0.1) shard of the training digits",
            "evaluation with the whole training set's statistics (one federated aggregate), 360 test digits",
            "seeds draw the split, the data order and the initial weights",
        ),
        seeds=5,
        fmt=".3f",
    ),
)
