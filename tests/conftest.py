"""Unit tests run on 8 simulated CPU devices (also on a GPU machine: JAX_PLATFORMS=cpu)."""

from mlsys_core import backend

backend.setup(cpu_devices=8)
