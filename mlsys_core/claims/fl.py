"""Claims checked by the fl notebook."""

from mlsys_core.claims.registry import Claim

CLAIMS: tuple[Claim, ...] = ()
