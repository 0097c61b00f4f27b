"""Claims checked by the synergy notebook."""

from mlsys_core.claims.registry import Claim

CLAIMS: tuple[Claim, ...] = ()
