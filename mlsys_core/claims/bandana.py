"""Claims checked by the bandana notebook."""

from mlsys_core.claims.registry import Claim

CLAIMS: tuple[Claim, ...] = ()
