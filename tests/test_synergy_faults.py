"""FL's fault tolerance in a pod (survey synergy 5): quorum commit vs restart, deadlines vs waiting."""

import dataclasses

import jax
import numpy as np
import optax
import pytest

from mlsys_core.data import digits_split, epoch_batches
from mlsys_core.fl import fedavg
from mlsys_core.sharding.strategies import reference_train
from mlsys_core.synergy import fault_tolerance


def _max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in
               zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_quorum_commit_without_failures_is_plain_wus_training():
    run = fault_tolerance.fault_run("quorum", fault_tolerance.FaultConfig(failure_rate=0.0, budget_steps=4.0), seed=3)
    assert run.masks.shape == (4, 8) and run.masks.all() and run.goodput == 1.0 and run.failures == 0
    quorum = fault_tolerance.masked_wus_training(run.masks, seed=3)
    plain = fault_tolerance.plain_wus_training(4, seed=3)
    assert _max_diff(quorum.params, plain) == 0.0  # weights of 1 change nothing, bit for bit
    assert quorum.test_loss.shape == (5,) and quorum.test_loss[-1] < quorum.test_loss[0]


def test_a_failed_replicas_gradient_is_skipped_and_the_survivors_averaged():
    masks = np.ones((2, 8), np.float32)
    masks[0, 2] = masks[1, 5] = masks[1, 6] = 0.0
    quorum = fault_tolerance.masked_wus_training(masks, per_replica_batch=4, seed=1)
    # the same two steps on one device with only the survivors' examples
    x, y, _, _ = digits_split(1)
    batches = epoch_batches(x, y, 32, 2, 1)
    kept = [(bx[np.repeat(m, 4) > 0], by[np.repeat(m, 4) > 0]) for (bx, by), m in zip(batches, masks)]
    params = fedavg.init_params(jax.random.key(1), fedavg.ModelConfig())
    ref, _ = reference_train(fault_tolerance._plain_loss, optax.adam(0.01), params, kept)
    assert _max_diff(quorum.params, ref) < 1e-6
    np.testing.assert_allclose(fault_tolerance.replica_weights([1, 0, 1, 1], 2), [4 / 3] * 2 + [0, 0] + [4 / 3] * 4)


def test_goodput_falls_with_the_failure_rate_for_both_policies():
    rates = (0.0, 3e-4, 1e-3, 3e-3, 1e-2)
    g = fault_tolerance.goodput_grid(rates, (10, 50), seeds=range(5))
    # quorum: the same draws fail a superset of replica-steps, so goodput never rises, seed by seed
    assert np.all(np.diff(g.quorum, axis=0) <= 0)
    # restart: a rollback shifts which draws later steps meet, so it falls on the mean over seeds
    assert np.all(np.diff(g.restart.mean(axis=2), axis=0) < 0)
    for policy in fault_tolerance.FAULT_POLICIES:
        assert g.of(policy)[-1].max() < g.of(policy)[0].min(), policy
    assert np.all(g.quorum[0] == 1.0)
    # without failures a restart policy only pays for its checkpoints: 1 / (1 + 2 / interval)
    np.testing.assert_allclose(g.restart[0, :, 0], [1 / 1.2, 1 / 1.04], atol=0.01)
    assert np.all(g.quorum[1:] > g.restart[1:])


def test_restart_loses_the_work_since_the_checkpoint():
    cfg = fault_tolerance.FaultConfig(replicas=2, failure_rate=0.5, checkpoint_interval=3, checkpoint_steps=0.0,
                                      restart_steps=0.0, budget_steps=6.0)
    draws = np.array([[0.9, 0.9], [0.9, 0.9], [0.9, 0.1], [0.9, 0.9], [0.9, 0.9], [0.9, 0.9], [0.9, 0.9]])
    run = fault_tolerance.restart_from_checkpoint(cfg, draws)
    assert len(run.masks) == 3 and run.failures == 1  # 2 steps lost at slot 2, then 3 committed by t = 6
    q = fault_tolerance.quorum_commit(dataclasses.replace(cfg, recovery_steps=0.0), draws)
    assert q.masks.shape == (6, 2) and q.masks[2].tolist() == [1.0, 0.0]


def test_a_reporting_deadline_commits_the_replicas_that_made_it():
    times = np.array([[1.0, 1.2, 4.0], [1.1, 0.9, 1.0]])
    wait = fault_tolerance.straggler_policy(times, None)
    cut = fault_tolerance.straggler_policy(times, 1.5, budget=6.0)
    assert wait.mean_step == pytest.approx(2.55) and wait.masks.all()
    assert cut.masks.tolist() == [[1, 1, 0], [1, 1, 1]] and cut.mean_step == pytest.approx(1.3)
    assert fault_tolerance.straggler_policy(times, 0.1).masks[0].tolist() == [1, 0, 0]  # at least the fastest
    r = fault_tolerance.straggler_goodput((0.0, 0.3), seeds=(0, 1))
    assert np.all(r.deadline[1] > r.wait[1])  # heavy stragglers: the deadline wins
    assert np.all(r.wait[1] < r.wait[0])


def test_fault_arguments_are_checked():
    with pytest.raises(ValueError, match="failure_rate"):
        fault_tolerance.FaultConfig(failure_rate=1.0)
    with pytest.raises(ValueError, match="policy"):
        fault_tolerance.fault_run("retry", fault_tolerance.FaultConfig(), 0)
    with pytest.raises(ValueError, match="masks"):
        fault_tolerance.masked_wus_training(np.ones(4))
    with pytest.raises(ValueError, match="straggler_p"):
        fault_tolerance.straggler_step_times(straggler_p=2.0)


def test_restarts_loss_is_the_plain_runs_loss_after_its_committed_steps():
    cfg = fault_tolerance.FaultConfig(failure_rate=0.05, checkpoint_interval=3, restart_steps=1.0, budget_steps=12.0)
    r = fault_tolerance.loss_vs_failure_rate((0.0, 0.05), seeds=(0,), config=cfg)
    n = len(fault_tolerance.fault_run("restart", cfg, 0).masks)
    own = fault_tolerance.masked_wus_training(np.ones((n, 8), np.float32), seed=0, eval_every=n)
    assert r.restart[1, 0] == pytest.approx(own.test_loss[-1], abs=1e-6)
    assert r.restart.shape == r.quorum.shape == (2, 1)
    # no failures: quorum trains all 12 steps of the budget, restart 8 (it pays 2 step times per checkpoint)
    twelve = fault_tolerance.masked_wus_training(np.ones((12, 8), np.float32), seed=0)
    assert r.quorum[0, 0] == pytest.approx(twelve.test_loss[12], abs=1e-6)
    assert r.restart[0, 0] == pytest.approx(twelve.test_loss[8], abs=1e-6)


def test_fault_runs_check_their_config_draws_and_size():
    with pytest.raises(ValueError, match=r"budget_steps x replicas must be <= 1e\+08 .*, got 1e\+12 x 8"):
        fault_tolerance.FaultConfig(budget_steps=1e12)
    with pytest.raises(TypeError, match="config must be FaultConfig, got 'quorum'"):
        fault_tolerance.fault_draws("quorum", 0)
    with pytest.raises(ValueError, match=r"draws must have one column per replica \(8\), got shape \(3, 2\)"):
        fault_tolerance.quorum_commit(fault_tolerance.FaultConfig(), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        fault_tolerance.fault_run("quorum", fault_tolerance.FaultConfig(), -1)


def test_a_fault_run_is_its_policy_over_the_seeds_draws():
    cfg = fault_tolerance.FaultConfig(failure_rate=0.02, budget_steps=60.0)
    draws = fault_tolerance.fault_draws(cfg, 4)
    for name, policy in fault_tolerance.FAULT_POLICIES.items():
        run, direct = fault_tolerance.fault_run(name, cfg, 4), policy(cfg, draws)
        assert run.policy == direct.policy == name
        np.testing.assert_array_equal(run.masks, direct.masks)
        assert (run.goodput, run.failures) == (direct.goodput, direct.failures) and run.failures > 0
