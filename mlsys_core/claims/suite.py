"""The start-here notebook's check that the suite itself works: one sharded array, its bytes per device."""

from mlsys_core.claims import rules
from mlsys_core.claims.registry import Claim

CLAIMS = (
    Claim(
        id="suite.shard_bytes",
        paper="Suite check",
        statement="an array sharded 8 ways keeps 1/8 of its bytes on each device",
        paper_value="1/8",
        source="suite: what sharding means",
        unit="of the array",
        rule=rules.equal(1 / 8, atol=1e-12, partly_atol=1 / 16),
        assumptions=("8 devices, array size a multiple of 8",),
    ),
)
