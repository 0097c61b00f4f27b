"""mlsys_core: the systems of four ML-systems papers, implemented to be run, measured and taught.

Wings, one subpackage each: `sharding` (TPU concurrency, Paper 1), `bandana` (Paper 2), `fl` (FL at scale,
Paper 3), `tictac` (Paper 4), and `synergy` (the survey's cross-paper claims, the one wing that combines the
others). Call `mlsys_core.backend.setup()` before anything starts JAX; importing this package never does.
"""

__version__ = "0.1.0"
