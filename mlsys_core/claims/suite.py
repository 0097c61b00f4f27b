"""The start-here notebook's check that the suite itself works: one sharded array, its bytes per device."""

from mlsys_core.claims import rules
from mlsys_core.claims.registry import Assumption, Claim

CLAIMS = (
    Claim(
        id="suite.shard_bytes",
        paper="Suite check",
        statement="an array sharded N ways keeps 1/N of its bytes on each device (a 16 x 8 float32 array)",
        paper_value="1/N (bytes per device x N = 1)",
        source="suite: what sharding means",
        unit="x 1/N of the array",
        rule=rules.equal(1.0, atol=1e-12, partly_atol=0.5),
        kind="sanity check",
        measure="mlsys_core.sharding.measures:shard_bytes",
        parameters=(Assumption(
            "devices", "devices in the mesh (N)", "devices", 8.0, (2.0, 4.0, 8.0),
            "suite's choice: the meshes of 2, 4 and 8 simulated devices that the array's 16 rows divide",
        ),),
        assumptions=("array rows a multiple of N, split by rows; columns whole on every device",),
        interval="bootstrap",
        fmt=".4f",
    ),
)
