"""Claims checked by the tictac notebook."""

from mlsys_core.claims.registry import Claim

CLAIMS: tuple[Claim, ...] = ()
