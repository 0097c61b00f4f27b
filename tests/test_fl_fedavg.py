"""Paper 3: FedAvg in JAX (vmap over clients), non-IID splits, and protocol-driven training."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlsys_core.data import load_digits
from mlsys_core.fl import fedavg as F
from mlsys_core.fl import telemetry as TL
from mlsys_core.fl import training as TR
from mlsys_core.fl.actors import ActorSystem
from mlsys_core.fl.faults import Fault, Topology
from mlsys_core.fl.rounds import RoundConfig
from mlsys_core.fl.steering import SteeringConfig
from mlsys_core.fl.training import TrainConfig

X, Y = load_digits()
MODEL = F.ModelConfig()


def _close(a, b, tol=1e-5):
    return all(np.allclose(a[k], b[k], atol=tol, rtol=tol) for k in a)


def test_dirichlet_split_is_a_partition_and_alpha_controls_skew():
    for alpha in (0.1, 100.0):
        parts = F.dirichlet_split(Y, 30, alpha, seed=0)
        flat = np.concatenate(parts)
        assert len(flat) == len(Y) and len(np.unique(flat)) == len(Y)
    classes = lambda a: np.mean([len(np.unique(Y[p])) for p in F.dirichlet_split(Y, 30, a, 0) if len(p)])  # noqa: E731
    assert classes(0.1) < 4 < 9 < classes(100.0)


@pytest.mark.parametrize("alpha", [0.0, -1.0])
def test_bad_alpha_is_rejected(alpha):
    with pytest.raises(ValueError, match="alpha"):
        F.dirichlet_split(Y, 10, alpha, 0)
    with pytest.raises(ValueError, match="alpha"):
        TrainConfig(alpha=alpha)


def test_fedavg_one_step_full_participation_equals_centralised_sgd_on_the_union():
    parts = F.dirichlet_split(Y[:600], 12, 0.5, seed=1)
    longest = max(len(p) for p in parts)
    model = dataclasses.replace(MODEL, batch_size=longest, epochs=1)  # one local step on all local data
    data = F.pad_clients(X[:600], Y[:600], parts, model.batch_size)
    params = F.init_params(jax.random.key(0), model)
    fed = F.vmap_round(params, data, data.num_examples, model)
    central = F.sgd_step(params, jnp.asarray(X[:600]), jnp.asarray(Y[:600]), model)
    assert _close(fed, central)
    assert not _close(fed, params)  # it did move


def test_vmap_loop_and_sharded_executors_agree_and_padding_changes_nothing():
    parts = F.dirichlet_split(Y, 13, 0.5, seed=2)
    data = F.pad_clients(X, Y, parts, MODEL.batch_size)
    params = F.init_params(jax.random.key(1), MODEL)
    w = data.num_examples
    ref = F.vmap_round(params, data, w, MODEL)
    assert _close(ref, F.loop_round(params, data, w, MODEL))
    sdata, sw = F.shard_clients(data, w, jax.devices())  # 13 clients padded to 16 over 8 devices
    assert sdata.x.shape[0] == 16
    assert _close(ref, F.vmap_round(params, sdata, sw, MODEL))
    padded = F.pad_clients(X, Y, parts + [np.zeros(0, np.int64)], MODEL.batch_size)
    assert _close(ref, F.vmap_round(params, padded, padded.num_examples, MODEL))


def test_local_epochs_are_repeated_passes_over_the_same_batches():
    data = F.pad_clients(X, Y, F.dirichlet_split(Y, 6, 0.5, seed=3), MODEL.batch_size)
    params = F.init_params(jax.random.key(2), MODEL)
    two = F.client_deltas(params, data, dataclasses.replace(MODEL, epochs=2))
    one = F.client_deltas(params, data, MODEL)
    update = jax.jit(F.client_update, static_argnames="model")
    for k in range(6):  # a second epoch from where each client's first ended
        after = jax.tree.map(lambda p, d, k=k: p + d[k], params, one)
        again = update(after, data.x[k], data.y[k], data.mask[k], MODEL)
        both = jax.tree.map(lambda d, e, k=k: d[k] + e, one, again)
        assert _close(both, jax.tree.map(lambda d, k=k: d[k], two))
        assert not _close(both, jax.tree.map(lambda d, k=k: d[k], one))


# A small task on the system: 300 devices, rounds of goal 10, a few simulated hours.
RC = RoundConfig(goal_count=10, min_reports=8, reporting_window_s=60.0, checkpoint_bytes=10_000, update_bytes=10_000)
TASK = TrainConfig(num_devices=300, alpha=0.1, examples_per_device=16, hours=3.0, rounds=12, eval_every=3)
STEER = SteeringConfig(cooldown_s=1800.0)
TMODEL = F.ModelConfig(batch_size=4)  # 4 local steps: FedProx's term acts after the first


@pytest.fixture(scope="module")
def small():
    task = TR.make_task(TASK, TMODEL, seed=0)
    sim = TR.simulate_task(RC, STEER, TASK, TMODEL, seed=0)
    return task, sim


def _train(small, server, **kw):
    task, sim = small
    return TR.train_on_simulation(sim, task, TMODEL, server, 0, RC, TASK.rounds, TASK.eval_every, **kw)


def test_fedprox_mu_zero_is_fedavg_bit_for_bit(small):
    avg, prox0, prox = (_train(small, s) for s in (F.FedAvg(), F.FedProx(mu=0.0), F.FedProx(mu=1.0)))
    for k in avg.params:
        assert np.array_equal(np.asarray(avg.params[k]), np.asarray(prox0.params[k]))
    assert np.array_equal(avg.accuracy, prox0.accuracy)
    assert not _close(avg.params, prox.params, tol=1e-4)  # the proximal term does change training
    moved = lambda run: sum(float(jnp.sum((run.params[k] - p0[k]) ** 2)) for k in p0)  # noqa: E731
    p0 = F.init_params(jax.random.key(0), TMODEL)
    assert moved(prox) < moved(avg)  # ... by holding clients nearer the global model


def test_fedadam_is_optax_adam_on_the_negative_mean_delta(small):
    task, sim = small
    server = F.FedAdam(learning_rate=0.05)
    run = _train(small, server)
    params = F.init_params(jax.random.key(0), TMODEL)
    adam = optax.adam(0.05, b1=0.9, b2=0.99, eps=1e-3)
    state = adam.init(params)
    for r in range(len(run.round)):
        ids = sim.aggregated.of(r)
        if not sim.counters.committed[r]:
            assert len(ids) == 0
            continue
        data = task.train.take(ids)
        mean = F.weighted_mean(F.client_deltas(params, data, TMODEL), jnp.asarray(data.num_examples))
        updates, state = adam.update(jax.tree.map(jnp.negative, mean), state, params)
        params = optax.apply_updates(params, updates)
    assert run.version[-1] == TASK.rounds
    assert _close(run.params, params, tol=2e-5)
    assert not _close(run.params, _train(small, F.FedYogi(learning_rate=0.05)).params, tol=1e-4)


@pytest.mark.parametrize("make, field", [
    (lambda: F.FedProx(mu=-0.1), "mu"), (lambda: F.FedAvg(learning_rate=0.0), "learning_rate"),
    (lambda: F.FedAdam(learning_rate=-1.0), "learning_rate"),
    (lambda: F.server_optimizer("fedsgdm"), "^name must be one of"),
    (lambda: F.server_optimizer("fedyogi", learning_rate=0.0), "learning_rate"),
])
def test_bad_server_config_is_a_clear_value_error(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_registry_builds_each_optimizer():
    assert [type(F.server_optimizer(n)) for n in F.SERVER_OPTIMIZERS] == [F.FedAvg, F.FedProx, F.FedAdam, F.FedYogi]
    with pytest.raises(TypeError, match="server"):
        TR.train_on_simulation(None, None, TMODEL, "fedavg", 0, RC)


def test_training_accepts_only_the_devices_the_simulation_accepted():
    plain = TR.simulate_task(RC, STEER, TASK, TMODEL, seed=1).counters
    r0 = int(np.flatnonzero(plain.committed)[3])  # crash an Aggregator while round r0 reports, a Selector later
    faults = (Fault("aggregator", float(plain.close_s[r0]) + 1.0, 1), Fault("selector", 1.5 * 3600, 2))
    system = ActorSystem(Topology(), faults)
    task = TR.make_task(TASK, TMODEL, seed=1)
    sim = TR.simulate_task(RC, STEER, TASK, TMODEL, seed=1, executor=system.run_round)
    run = TR.train_on_simulation(sim, task, TMODEL, F.FedAvg(), 1, RC, None, 0)
    ids, t, codes = sim.log.arrays()
    lost = {int(d) for m in system.trace if m.kind == "lost" for d in m.devices}
    assert lost  # the faults did take devices down with them
    for r in range(len(run.round)):
        got = run.trained.of(r)
        c = sim.counters
        if not c.committed[r]:
            assert len(got) == 0
            continue
        assert len(got) == c.accepted[r]
        up = ids[(codes == TL.CODES.index("^")) & (t > c.close_s[r]) & (t <= c.end_s[r] + 1.0)]
        assert set(got.tolist()) <= set(up.tolist())  # each one's upload was accepted in round r
    lost_rounds = {m.round for m in system.trace if m.kind == "lost"}
    for r in lost_rounds:
        lost_r = {int(d) for m in system.trace if m.kind == "lost" and m.round == r for d in m.devices}
        assert not lost_r & set(run.trained.of(r).tolist())  # a device lost with its actor trains nothing


def test_training_learns_and_federated_evaluation_tracks_central(small):
    run = _train(small, F.FedAvg())
    assert run.accuracy[-1] > 0.4 and run.accuracy[-1] > run.accuracy[0] + 0.25  # Dir(0.1), 12 rounds
    assert np.all(np.diff(run.time_s) > 0) and run.hours[-1] < TASK.hours
    ev = np.isfinite(run.federated_accuracy)
    assert ev.sum() == 4  # every third committed round, from the first
    assert np.all(np.abs(run.federated_accuracy[ev] - run.central_at_eval[ev]) < 0.25)
    assert TR.rounds_to_accuracy(run, 0.0) == run.version[0] and TR.rounds_to_accuracy(run, 1.01) == np.inf
    assert run.accuracy[np.searchsorted(run.version, TR.rounds_to_accuracy(run, 0.4))] >= 0.4


def test_late_updates_are_recycled_only_when_asked():
    rc = dataclasses.replace(RC, reporting_window_s=25.0)
    task = TR.make_task(TASK, TMODEL, seed=3)
    off_sim = TR.simulate_task(rc, STEER, TASK, TMODEL, seed=3)
    rc_on = dataclasses.replace(rc, recycle_late=True)
    on_sim = TR.simulate_task(rc_on, STEER, TASK, TMODEL, seed=3)
    off = TR.train_on_simulation(off_sim, task, TMODEL, F.FedAvg(), 3, rc, TASK.rounds, 0)
    on = TR.train_on_simulation(on_sim, task, TMODEL, F.FedAvg(), 3, rc_on, TASK.rounds, 0)
    assert off.recycled.sum() == 0 and off.late.sum() > 0 and off.wasted_compute_s.sum() > 0
    assert 0 < on.recycled.sum() <= on.late.sum() and on.wasted_compute_s.sum() == 0
    assert np.array_equal(off.late, on.late)  # same sessions; only what is done with them differs
    assert not np.allclose(off.accuracy, on.accuracy)


def test_splits_check_their_labels_and_seed():
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        F.dirichlet_split(Y, 10, 0.5, seed=-1)
    with pytest.raises(TypeError, match="seed must be an int, got 1.5"):
        F.resample_clients(Y, 10, 8, 0.5, seed=1.5)
    with pytest.raises(ValueError, match=r"labels must hold whole numbers; labels\[0\] is 0.5"):
        F.dirichlet_split(np.array([0.5, 1.0]), 2, 0.5, seed=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        F.pad_clients(X, Y, [np.arange(4)], 0)


def test_a_string_where_a_model_or_server_optimizer_belongs_is_a_type_error():
    with pytest.raises(TypeError, match="model must be a fedavg.ModelConfig, got 'mlp'"):
        F.init_params(jax.random.key(0), "mlp")
    with pytest.raises(TypeError, match="opt must be a fedavg.ServerOptimizer, got 'fedadam'"):
        F.server_init("fedadam", {"w": jnp.zeros(2)})


def test_training_checks_configs_seed_and_targets():
    train = TrainConfig(num_devices=20, hours=1.0)
    with pytest.raises(TypeError, match="train must be a training.TrainConfig, got 'digits'"):
        TR.make_task("digits", MODEL, 0)
    with pytest.raises(ValueError, match="seed must be >= 0, got -3"):
        TR.make_task(train, MODEL, -3)
    with pytest.raises(TypeError, match="round_config must be a rounds.RoundConfig, got 10"):
        TR.simulate_task(10, SteeringConfig(), train, MODEL, 0)
    with pytest.raises(TypeError, match="model must be a fedavg.ModelConfig, got None"):
        TR.federated_training(RoundConfig(goal_count=5), None, train, 0)
    with pytest.raises(ValueError, match="steps must be >= 0, got -1"):
        TR.centralised_accuracy(MODEL, train, -1, 0)
