"""Claims checked by the fl notebooks (03_federated_learning; its privacy half 03b_fl_privacy): Bonawitz et al.,
SysML 2019, and the survey's critique of it. Measurements come from `mlsys_core.fl.experiments` (03) and
`mlsys_core.fl.privacy`, `dp`, `secagg_cost`, `inversion` (03b); seeded ones over >= 5 seeds."""

from mlsys_core.claims import rules
from mlsys_core.claims.registry import Claim, Sweep

PAPER = "Paper 3 — FL at scale"

CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="fl.over_selection",
        paper=PAPER,
        statement="Selecting 130% of the goal count lets rounds commit although 6-10% of devices drop out "
        "(share of rounds committing at 1.3x, at the worse 10% drop-out)",
        paper_value="130% over-selection for 6-10% drop-out",
        source="paper text",
        unit="share of rounds",
        rule=rules.at_least(0.95, partly=0.8),
        assumptions=(
            "goal count 100, every report needed (min_reports = goal), 240 s reporting window",
            "session times from lognormal device speeds and links (median 5 examples/s, 2 MB/s down, 1 MB/s up)",
            "200 independent rounds per seed, devices drawn uniformly (availability aside)",
        ),
        seeds=5,
        fmt=".3f",
    ),
    Claim(
        id="fl.session_outcomes",
        paper=PAPER,
        statement="Selected devices' sessions end about 75% accepted, 22% rejected as late, 2% interrupted "
        "(largest gap between our three shares and those)",
        paper_value="75% / 22% / 2%",
        source="unconfirmed secondary source: PAPERS.md",
        unit="share (largest absolute gap)",
        rule=rules.at_most(0.05, partly=0.12),
        assumptions=(
            "drop-out drawn uniformly in 6-10% per device (the paper's range), so interruptions exceed 2%",
            "one simulated day, 200 k devices, goal 500, 1.3x over-selection, auto pace steering",
        ),
        seeds=5,
        fmt=".3f",
    ),
    Claim(
        id="fl.diurnal_swing",
        paper=PAPER,
        statement="Participation swings about 4x over a day (accepted updates per hour, peak / trough)",
        paper_value="~4x",
        source="paper text",
        unit="x (peak / trough)",
        rule=rules.within(4.0, rel=0.25, partly_rel=0.5),
        assumptions=(
            "the time-zone mix we chose (Americas and Europe heavy) sets the swing of eligible devices (~3.8x)",
            "nightly windows open at 23:00 +- 1.5 h local and last 7 +- 1 h; 85% of devices ever unmetered",
        ),
        seeds=5,
        fmt=".2f",
    ),
    Claim(
        id="fl.pace_steering",
        paper=PAPER,
        statement="Pace steering cuts the check-ins the server must handle per committed round "
        "(no steering / auto steering)",
        paper_value="avoids a thundering herd of check-ins (no figure)",
        source="paper text",
        unit="x fewer check-ins per committed round",
        rule=rules.at_least(2.0, partly=1.2),
        assumptions=(
            "without steering a rejected device retries after 0.5-1.5 min; with it, adaptive random delays "
            "(large populations) or synchronised returns (small ones)",
            "100 k devices, goal 250, one simulated day",
        ),
        seeds=5,
        fmt=".2f",
    ),
    Claim(
        id="fl.fault_semantics",
        paper=PAPER,
        statement="Actor failures stay contained: an Aggregator or Selector crash loses only its devices, a "
        "Master Aggregator crash fails the round and the Coordinator restarts it, a dead Coordinator is "
        "respawned exactly once by a Selector holding the lock (share of 9 such behaviours that hold, "
        "read from the actor message log)",
        paper_value="as stated (no figure)",
        source="paper text",
        unit="share of behaviours",
        rule=rules.at_least(1.0, partly=0.75),
        assumptions=(
            "4 Selectors, 4 Aggregators; heartbeat timeout 10 s, respawn 5 s, hop 50 ms",
            "one crash per run, 3 h into a 4 h run of 50 k devices, goal 100, 80 reports needed",
        ),
        seeds=5,
        fmt=".2f",
    ),
    Claim(
        id="fl.fedavg_digits",
        paper=PAPER,
        statement="FedAvg on the round protocol trains a useful model on non-IID data (test accuracy on "
        "digits, Dir(0.5) class mixes over 1,000 devices, 40 committed rounds of goal 20)",
        paper_value="production keyboard model (no digits figure)",
        source="paper text",
        unit="test accuracy",
        rule=rules.qualitative(
            "the paper trains a production keyboard model and reports no accuracy we could set beside a "
            "64-feature digits MLP; the centralised baseline is a sanity check, not the paper's number"
        ),
        assumptions=("an MLP 64-32-10, 32 examples a device, 3 local epochs of batch 8, lr 0.1; the clients of a "
                     "round are the devices protocol.simulate accepted; centralised: 800 SGD steps",),
        fmt=".3f",
    ),
    Claim(
        id="fl.fedsgd_equals_sgd",
        paper=PAPER,
        statement="FedAvg with one full-batch local step and every client taking part equals one step of "
        "centralised SGD on the union of the data (max abs parameter difference)",
        paper_value="equivalent (Papers 1 and 3)",
        source="survey: synergies",
        unit="max |difference|",
        rule=rules.equal(0.0, atol=1e-5, partly_atol=1e-3),
        assumptions=("float32; updates weighted by example counts",),
        fmt=".1e",
    ),
    Claim(
        id="fl.secagg_expansion",
        paper=PAPER,
        statement="Secure Aggregation expands each device's upload about 1.73x for 2^10 users and "
        "2^20-dimensional vectors",
        paper_value="1.73x",
        source="paper text",
        unit="x bytes of the plain update",
        rule=rules.within(1.73, rel=0.05, partly_rel=0.25),
        assumptions=(
            "16-bit inputs, modulus 16 + log2(n) bits; bytes of one device's serialised messages in all four rounds "
            "(two 32-byte X25519 keys, AES-GCM share blobs of 100 bytes per peer, inputs bit-packed, a 64-byte "
            "Ed25519 signature on each message to the server), nobody drops",
        ),
        fmt=".2f",
    ),
    Claim(
        id="fl.adaptive_server_fewer_rounds",
        paper=PAPER,
        statement="Adaptive server optimizers need fewer rounds than FedAvg on heterogeneous data (committed "
        "rounds FedAvg needs to reach 80% test accuracy on Dir(0.1) digits / rounds FedAdam needs)",
        paper_value="FedAdam / FedYogi converge faster than FedAvg on non-IID tasks (no digits figure)",
        source="paper text: Reddi et al. 2021, Adaptive Federated Optimization (not Paper 3)",
        unit="x fewer rounds",
        rule=rules.at_least(1.2, partly=1.0),
        assumptions=(
            "server lr 1 for FedAvg, 0.03 for FedAdam (b1 0.9, b2 0.99, eps 1e-3, as Reddi et al.'s tau); no "
            "tuning beyond one grid point each",
            "1,000 devices, 32 examples each, goal 20, 2 local epochs of batch 16; the rounds protocol.simulate "
            "committed (30-min cooldown), the same simulation for every optimizer of a seed",
        ),
        seeds=5,
        fmt=".2f",
    ),
    Claim(
        id="fl.federated_eval_tracks_central",
        paper=PAPER,
        statement="Federated evaluation (each round's devices report accuracy on their own held-out examples, "
        "weighted by examples) tracks the central held-out accuracy (mean |federated - central| over the "
        "evaluation rounds of a run)",
        paper_value="evaluation as an FL task on devices (no figure)",
        source="suite: the paper runs evaluation on devices; how close it comes is ours",
        unit="accuracy points",
        rule=rules.at_most(0.05, partly=0.1),
        assumptions=(
            "8 held-out examples a device with its training class mix (Dir(0.1)), about 20 devices an "
            "evaluation round, every 5th committed round; FedAvg",
        ),
        seeds=5,
        fmt=".3f",
    ),
    Claim(
        id="fl.recycle_late",
        paper=PAPER,
        statement="Recycling late updates (applied one round later, weight 1/sqrt(1 + staleness)) saves the "
        "device compute discarding wastes without hurting accuracy (final accuracy, recycle - discard)",
        paper_value="proposal (no figure)",
        source="survey: Paper 3 weaknesses",
        unit="accuracy points",
        rule=rules.at_least(-0.01, partly=-0.03, exceeds=0.02),
        assumptions=("digits, Dir(0.5) class mixes over 1,000 devices, 40 committed rounds of goal 20, 60 s "
                     "reporting window; same simulated sessions for discard and recycle",),
        seeds=5,
        fmt="+.4f",
    ),
    Claim(
        id="fl.two_actors",
        paper=PAPER,
        statement="Merging Selector with Aggregator and Master Aggregator with Coordinator removes hops on a "
        "report's way to commit (hops per report, four actors minus two, from the actor message log)",
        paper_value="two actors instead of four, no forwarding delay (no figure)",
        source="survey: Paper 3 weaknesses",
        unit="hops saved per report",
        rule=rules.at_least(2.0, partly=1.0),
        assumptions=(
            "a hop is a delivered actor-to-actor message carrying the device's connection or update",
            "50 k devices, goal 100, 5 simulated hours; hop latency 50 ms",
        ),
        fmt=".2f",
    ),
    Claim(
        id="fl.telemetry_leak",
        paper=PAPER,
        statement="Per-device telemetry reveals a user's schedule: share of traced users whose bedtime the "
        "largest-gap attack on their check-in times gets within 1 h",
        paper_value="a privacy risk (no figure)",
        source="survey: Paper 3 weaknesses",
        unit="share of users",
        rule=rules.at_least(0.5, partly=0.2),
        assumptions=(
            "the first 300 traced users with >= 3 check-ins in one simulated day (20 k devices, goal 100); a random "
            "guess is ~8%, guessing 23:00 for everyone ~50%",
            "a device first calls in an exponential delay (mean: the check-in jitter, capped at 80% of its "
            "window) after its window opens; 0 calls in the moment it opens",
        ),
        seeds=5,
        sweep=Sweep("check-in jitter (mean delay)", "h", (0.0, 0.5, 1.0, 2.0), default=1.0),
        fmt=".2f",
    ),
    Claim(
        id="fl.dp_accountant_abadi",
        paper=PAPER,
        statement="The privacy accountant reproduces a published epsilon: q = 0.01, sigma = 4, 10,000 steps, "
        "delta = 1e-5 (Abadi et al., CCS 2016), from dp-accounting's RDP of the Poisson-sampled Gaussian "
        "converted with the 2016 moments accountant's tail bound",
        paper_value="epsilon ~ 1.26",
        source="paper text: Abadi et al., CCS 2016, Section 3.1",
        unit="epsilon",
        rule=rules.within(1.26, rel=0.01, partly_rel=0.05),
        assumptions=(
            "integer Renyi orders 2-64 (the 2016 paper's moments are integer orders up to 32)",
            "dp-accounting's own conversion (Canonne et al. 2020) and its PLD accountant are tighter: "
            "about 1.04 and 0.95 for the same setting",
        ),
        fmt=".3f",
    ),
    Claim(
        id="fl.dp_fedavg_utility",
        paper=PAPER,
        statement="DP-FedAvg keeps a useful model at epsilon <= 10: test accuracy lost against the same rounds "
        "without privacy, at noise multiplier z = 1 (epsilon 7.8 at delta 1e-4)",
        paper_value="user-level DP at a negligible cost in accuracy (large user population)",
        source="paper text: McMahan et al., ICLR 2018, abstract",
        unit="accuracy points lost",
        rule=rules.at_most(0.02, partly=0.05),
        assumptions=(
            "500 digit clients of 20 examples (Dir(0.5) class mixes), Poisson rate q = 0.2, 30 rounds, clip 0.5",
            "the paper has 763 k users; noise on the average shrinks with the expected clients per round (100 here)",
            "non-private baseline: same sampling and estimator, no clipping, z = 0",
        ),
        seeds=5,
        fmt="+.4f",
    ),
    # --- notebook 03b (privacy): gradient inversion vs Secure Aggregation ---
    Claim(
        id="fl.gradient_inversion_leak",
        paper=PAPER,
        statement="A model update leaks the data it was computed on: PSNR of the digit a curious server "
        "reconstructs from one client's FedSGD update (gradient matching on the input, label from the "
        "output-bias gradient)",
        paper_value="model updates can leak data (no figure)",
        source="survey: Paper 3 weaknesses",
        unit="dB PSNR",
        rule=rules.at_least(20.0, partly=15.0),
        assumptions=(
            "one 8x8 digit per client, the untrained 64-32-10 tanh MLP, 200 Adam steps on the input in [0, 1]",
            "a seed picks the digit, the initialisation and the starting point; 20 dB: recognisable",
        ),
        seeds=5,
        fmt=".1f",
    ),
    Claim(
        id="fl.secagg_hides_update",
        paper=PAPER,
        statement="With Secure Aggregation the server sees only the sum of a group's updates, and the same "
        "attack on the sum of 16 gets no closer to the target digit than the average digit does "
        "(PSNR of the reconstruction minus PSNR of the mean training digit)",
        paper_value="the server learns only the aggregate of the group",
        source="paper text",
        unit="dB over the mean digit",
        rule=rules.at_most(0.0, partly=5.0),
        assumptions=(
            "16 clients of one digit each; the attacker inverts the sum as if it were one client's update",
            "a stronger attacker would fit 16 digits jointly; with 2,410 gradient coordinates and 1,024 "
            "unknowns that is not ruled out, so this bounds one attack, not every attack",
        ),
        seeds=5,
        fmt="+.1f",
    ),
)
