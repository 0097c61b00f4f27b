"""Claims checked by the sharding notebook."""

from mlsys_core.claims.registry import Claim

CLAIMS: tuple[Claim, ...] = ()
