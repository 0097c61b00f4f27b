"""FL's fault tolerance in a pod (survey synergy 5): quorum commit vs restart, deadlines vs waiting."""

import dataclasses

import jax
import numpy as np
import optax
import pytest

from mlsys_core import synergy
from mlsys_core.data import digits_split, epoch_batches
from mlsys_core.sharding.strategies import reference_train


def _max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in
               zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_quorum_commit_without_failures_is_plain_wus_training():
    run = synergy.fault_run("quorum", synergy.FaultConfig(failure_rate=0.0, budget_steps=4.0), seed=3)
    assert run.masks.shape == (4, 8) and run.masks.all() and run.goodput == 1.0 and run.failures == 0
    quorum = synergy.masked_wus_training(run.masks, seed=3)
    plain = synergy.plain_wus_training(4, seed=3)
    assert _max_diff(quorum.params, plain) == 0.0  # weights of 1 change nothing, bit for bit
    assert quorum.test_loss.shape == (5,) and quorum.test_loss[-1] < quorum.test_loss[0]


def test_a_failed_replicas_gradient_is_skipped_and_the_survivors_averaged():
    masks = np.ones((2, 8), np.float32)
    masks[0, 2] = masks[1, 5] = masks[1, 6] = 0.0
    quorum = synergy.masked_wus_training(masks, per_replica_batch=4, seed=1)
    # the same two steps on one device with only the survivors' examples
    x, y, _, _ = digits_split(1)
    batches = epoch_batches(x, y, 32, 2, 1)
    kept = [(bx[np.repeat(m, 4) > 0], by[np.repeat(m, 4) > 0]) for (bx, by), m in zip(batches, masks)]
    params = synergy.fedavg.init_params(jax.random.key(1), synergy.fedavg.ModelConfig())
    ref, _ = reference_train(synergy._plain_loss, optax.adam(0.01), params, kept)
    assert _max_diff(quorum.params, ref) < 1e-6
    np.testing.assert_allclose(synergy.replica_weights([1, 0, 1, 1], 2), [4 / 3] * 2 + [0, 0] + [4 / 3] * 4)


def test_goodput_falls_with_the_failure_rate_for_both_policies():
    rates = (0.0, 3e-4, 1e-3, 3e-3, 1e-2)
    g = synergy.goodput_grid(rates, (10, 50), seeds=range(5))
    # quorum: the same draws fail a superset of replica-steps, so goodput never rises, seed by seed
    assert np.all(np.diff(g.quorum, axis=0) <= 0)
    # restart: a rollback shifts which draws later steps meet, so it falls on the mean over seeds
    assert np.all(np.diff(g.restart.mean(axis=2), axis=0) < 0)
    for policy in synergy.FAULT_POLICIES:
        assert g.of(policy)[-1].max() < g.of(policy)[0].min(), policy
    assert np.all(g.quorum[0] == 1.0)
    # without failures a restart policy only pays for its checkpoints: 1 / (1 + 2 / interval)
    np.testing.assert_allclose(g.restart[0, :, 0], [1 / 1.2, 1 / 1.04], atol=0.01)
    assert np.all(g.quorum[1:] > g.restart[1:])


def test_restart_loses_the_work_since_the_checkpoint():
    cfg = synergy.FaultConfig(replicas=2, failure_rate=0.5, checkpoint_interval=3, checkpoint_steps=0.0,
                              restart_steps=0.0, budget_steps=6.0)
    draws = np.array([[0.9, 0.9], [0.9, 0.9], [0.9, 0.1], [0.9, 0.9], [0.9, 0.9], [0.9, 0.9], [0.9, 0.9]])
    run = synergy.restart_from_checkpoint(cfg, draws)
    assert len(run.masks) == 3 and run.failures == 1  # 2 steps lost at slot 2, then 3 committed by t = 6
    q = synergy.quorum_commit(dataclasses.replace(cfg, recovery_steps=0.0), draws)
    assert q.masks.shape == (6, 2) and q.masks[2].tolist() == [1.0, 0.0]


def test_a_reporting_deadline_commits_the_replicas_that_made_it():
    times = np.array([[1.0, 1.2, 4.0], [1.1, 0.9, 1.0]])
    wait = synergy.straggler_policy(times, None)
    cut = synergy.straggler_policy(times, 1.5, budget=6.0)
    assert wait.mean_step == pytest.approx(2.55) and wait.masks.all()
    assert cut.masks.tolist() == [[1, 1, 0], [1, 1, 1]] and cut.mean_step == pytest.approx(1.3)
    assert synergy.straggler_policy(times, 0.1).masks[0].tolist() == [1, 0, 0]  # at least the fastest
    r = synergy.straggler_goodput((0.0, 0.3), seeds=(0, 1))
    assert np.all(r.deadline[1] > r.wait[1])  # heavy stragglers: the deadline wins
    assert np.all(r.wait[1] < r.wait[0])


def test_fault_arguments_are_checked():
    with pytest.raises(ValueError, match="failure_rate"):
        synergy.FaultConfig(failure_rate=1.0)
    with pytest.raises(ValueError, match="policy"):
        synergy.fault_run("retry", synergy.FaultConfig(), 0)
    with pytest.raises(ValueError, match="masks"):
        synergy.masked_wus_training(np.ones(4))
    with pytest.raises(ValueError, match="straggler_p"):
        synergy.straggler_step_times(straggler_p=2.0)


def test_restarts_loss_is_the_plain_runs_loss_after_its_committed_steps():
    cfg = synergy.FaultConfig(failure_rate=0.05, checkpoint_interval=3, restart_steps=1.0, budget_steps=12.0)
    r = synergy.loss_vs_failure_rate((0.0, 0.05), seeds=(0,), config=cfg)
    n = len(synergy.fault_run("restart", cfg, 0).masks)
    own = synergy.masked_wus_training(np.ones((n, 8), np.float32), seed=0, eval_every=n)
    assert r.restart[1, 0] == pytest.approx(own.test_loss[-1], abs=1e-6)
    assert r.restart.shape == r.quorum.shape == (2, 1)
    # no failures: quorum trains all 12 steps of the budget, restart 8 (it pays 2 step times per checkpoint)
    twelve = synergy.masked_wus_training(np.ones((12, 8), np.float32), seed=0)
    assert r.quorum[0, 0] == pytest.approx(twelve.test_loss[12], abs=1e-6)
    assert r.restart[0, 0] == pytest.approx(twelve.test_loss[8], abs=1e-6)


def test_fault_runs_check_their_config_draws_and_size():
    with pytest.raises(ValueError, match=r"budget_steps x replicas must be <= 1e\+08 .*, got 1e\+12 x 8"):
        synergy.FaultConfig(budget_steps=1e12)
    with pytest.raises(TypeError, match="config must be FaultConfig, got 'quorum'"):
        synergy.fault_draws("quorum", 0)
    with pytest.raises(ValueError, match=r"draws must have one column per replica \(8\), got shape \(3, 2\)"):
        synergy.quorum_commit(synergy.FaultConfig(), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        synergy.fault_run("quorum", synergy.FaultConfig(), -1)
