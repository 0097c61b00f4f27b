"""The seeds a seeded experiment runs over unless told otherwise: as many as the claims registry asks of a claim
that depends on a seed, so that every default run can decide one."""

from __future__ import annotations

MIN_SEEDS = 5  # a claim that depends on a seed is measured on at least this many
DEFAULT_SEEDS = tuple(range(MIN_SEEDS))
