"""The claims registry: every claim the suite checks, declared once, beside the rules that decide it.

One module per paper (`sharding`, `bandana`, `fl`, `tictac`, `synergy`, and `suite` for the start-here
notebook) defines `CLAIMS`, a tuple of `Claim`. `REGISTRY` maps each id to its claim. Nothing here
imports JAX or a paper's package: the report reads the registry without starting a backend.
"""

from __future__ import annotations

import importlib

from mlsys_core import validate
from mlsys_core.claims.registry import (
    KINDS,
    MIN_SEEDS,
    PAPERS,
    SOURCES,
    Assumption,
    Claim,
    Estimate,
    Evaluation,
    evaluate,
)
from mlsys_core.claims.rules import VERDICTS

MODULES = ("suite", "sharding", "bandana", "fl", "tictac", "synergy")


def _collect() -> dict[str, Claim]:
    found: dict[str, Claim] = {}
    for name in MODULES:
        for claim in importlib.import_module(f"mlsys_core.claims.{name}").CLAIMS:
            if claim.id in found:
                raise ValueError(f"claim id {claim.id!r} is declared twice")
            found[claim.id] = claim
    return found


REGISTRY: dict[str, Claim] = _collect()


def get(claim_id: str) -> Claim:
    """The claim declared under `claim_id`; a ValueError lists the known ids otherwise."""
    if validate.string("claim_id", claim_id) not in REGISTRY:
        raise ValueError(f"claim_id must be a declared claim, got {claim_id!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[claim_id]


__all__ = [
    "KINDS", "MIN_SEEDS", "MODULES", "PAPERS", "REGISTRY", "SOURCES", "VERDICTS",
    "Assumption", "Claim", "Estimate", "Evaluation", "evaluate", "get",
]
