"""The paper's optimizers (SGD+momentum, Adam, LAMB, LARS) from optax, made exact on weight shards.

SGD, momentum and Adam act element by element, so updating a 1/N shard of a weight gives exactly the
shard of the full update: optax's own transforms are used unchanged. LAMB and LARS scale each layer's
update by a trust ratio ||w|| / ||u|| - a norm over the *whole* layer. On a shard that norm must be
summed across the devices holding the other shards: `scale_by_trust_ratio` below does that with a
`psum` over every mesh axis the leaf is sharded along (read from JAX's varying-axes type), and is
optax's transform everywhere else (one device, or a replicated leaf). `lamb` and `lars` rebuild
optax's chains with it, so they are exact on shards inside any `shard_map` you write.
`strategies.Trainer` does not need them: it runs the update on the global view of the whole tree,
where XLA sums every norm across devices, so optax's own `lamb`/`lars` are exact there too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jax import lax

from mlsys_core import validate

OPTIMIZERS = ("sgd", "momentum", "adam", "lamb", "lars")


def sharded_axes(x: jax.Array) -> tuple[str, ...]:
    """Mesh axes along which `x` varies inside `shard_map` (empty outside it or when replicated)."""
    aval = jax.typeof(x)
    manual = getattr(aval, "manual_axis_type", None)
    varying = manual.varying if manual is not None else getattr(aval, "vma", frozenset())
    return tuple(sorted(varying))


def _global_norm(x: jax.Array) -> jax.Array:
    """L2 norm of the whole layer, summing squares across the devices that hold its shards."""
    squares = jnp.sum(jnp.square(x))
    axes = sharded_axes(x)
    if axes:
        squares = lax.psum(squares, axes)
    return jnp.sqrt(squares)


def scale_by_trust_ratio(trust_coefficient: float = 1.0, eps: float = 0.0) -> optax.GradientTransformation:
    """optax.scale_by_trust_ratio (min_norm 0) with layer norms that are global across shards."""

    def update_fn(updates, state, params):
        if params is None:
            raise ValueError("scale_by_trust_ratio needs params")

        def scale(u, p):
            p_norm, u_norm = _global_norm(p), _global_norm(u)
            ratio = trust_coefficient * p_norm / (u_norm + eps)
            ratio = jnp.where((p_norm == 0.0) | (u_norm == 0.0), jnp.ones_like(ratio), ratio)
            return u * ratio

        return jax.tree.map(scale, updates, params), state

    return optax.GradientTransformation(optax.init_empty_state, update_fn)


def lamb(learning_rate, b1=0.9, b2=0.999, eps=1e-6, weight_decay=0.0) -> optax.GradientTransformation:
    """optax.lamb's chain with shard-exact trust ratios (You et al. 2019; BERT in the paper).

    Args:
        learning_rate: the step size (a float or an optax schedule).
        b1: Adam's decay of the first moment.
        b2: Adam's decay of the second moment.
        eps: added to the root of the second moment.
        weight_decay: decoupled weight decay per step, before the trust ratio.
    """
    return optax.chain(
        optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
        optax.add_decayed_weights(weight_decay),
        scale_by_trust_ratio(),
        optax.scale_by_learning_rate(learning_rate),
    )


def lars(learning_rate, weight_decay=0.0, trust_coefficient=0.001, eps=0.0,
         momentum=0.9) -> optax.GradientTransformation:
    """optax.lars's chain with shard-exact trust ratios (You et al. 2017; ResNet-50 in the paper).

    Args:
        learning_rate: the step size (a float or an optax schedule).
        weight_decay: weight decay added to the update before the trust ratio.
        trust_coefficient: scales the trust ratio ||w|| / ||u||.
        eps: added to ||u||.
        momentum: the decay of the momentum trace.
    """
    return optax.chain(
        optax.add_decayed_weights(weight_decay),
        scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps),
        optax.scale_by_learning_rate(learning_rate),
        optax.trace(decay=momentum),
    )


_MAKERS = {
    "sgd": optax.sgd,
    "momentum": lambda learning_rate: optax.sgd(learning_rate, momentum=0.9),
    "adam": optax.adam,
    "lamb": lamb,
    "lars": lars,
}


def make(name: str, learning_rate: float) -> optax.GradientTransformation:
    """An optimizer by name (one of `OPTIMIZERS`), shard-exact under every strategy."""
    validate.choice("optimizer", name, OPTIMIZERS)
    return _MAKERS[name](learning_rate)
