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
            "utilisation 0.4",
            "m and v in f32 (8 B per parameter), read and written once per step, not overlapped with compute",
            "the drive streams at its 4 KB random-read peak (585 K IOPS, 2.4 GB/s) both ways",
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
            "phone compute 10 GFLOP/s; 50 us per transfer (one connection streams the tensors; the "
            "round trip is paid once per session, not per tensor)",
            "one local step per download (FedSGD); FedAvg's many local steps per download dilute the gain",
            "seeds draw the random orders",
        ),
        seeds=5,
        sweep=Sweep("phone downlink", "Mbit/s", (4.0, 16.0, 64.0), 16.0),
        fmt=".3f",
    ),
)
