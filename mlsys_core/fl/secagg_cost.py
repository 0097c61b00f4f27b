"""What Secure Aggregation (`secagg`) costs one device: the bytes it sends in each of the protocol's five
rounds, measured from its serialised messages (`device_bytes`), and their total over the bytes of its input
in the clear (`expansion`). Every phase's cost grows with the group: a device agrees on a key with, shares
its secrets with and checks the signatures of every other.
"""

from __future__ import annotations

import math

import numpy as np

from mlsys_core import validate
from mlsys_core.fl import secagg, wire
from mlsys_core.fl.crypto import MaskStream


def device_bytes(num_devices: int, dim: int, input_bits: int, seed: int = 0) -> dict[str, int]:
    """Bytes device 0 sends in each phase of a group, measured from its serialised messages: its own rounds
    run for real against peers that advertise real keys, send it real encrypted shares and sign U3 (with
    their identity keys, as a device does); nobody drops out. The modulus is input_bits + ceil(log2 n), so
    the sum cannot wrap.

    Args:
        num_devices: n, devices in the group.
        dim: d, entries of each input.
        input_bits: bits per entry.
        seed: draws device 0's input.

    Returns:
        phase -> bytes device 0 sent in it.
    """
    n = validate.integer("num_devices", num_devices, 2)
    d = validate.integer("dim", dim, 1)
    k = validate.integer("input_bits", input_bits, 1, 63) + math.ceil(math.log2(n))
    cfg = secagg.SecAggConfig(n, n // 2 + 1, min(k, 64))
    x = np.random.default_rng(validate.seed("seed", seed)).integers(0, 2**input_bits, (1, d))
    session, pki, devices = secagg.new_session([x[0]] + [x[0, :0]] * (n - 1), cfg)
    adv = {u: dev.advertise() for u, dev in enumerate(devices)}
    me = devices[0]
    out = me.share_keys(adv)
    sent = {"advertise_keys": len(adv[0]), "share_keys": sum(map(len, out.values()))}
    inbox = {u: devices[u].share_keys(adv, receivers=[0])[0] for u in range(1, n)}
    sent["masked_input"] = len(me.masked_input(inbox, MaskStream(d, wire.word_dtype(cfg.modulus_bits))))
    everyone = list(range(n))
    acks = {0: me.consistency_check(everyone)}
    acks |= {u: wire.acknowledgement(devices[u]._signing_key, session, u, everyone) for u in range(1, n)}
    sent["consistency_check"] = len(acks[0])
    sent["unmasking"] = len(me.unmask(acks))
    return sent


def expansion(num_devices: int, dim: int, input_bits: int, seed: int = 0) -> float:
    """Measured bytes device 0 sends over all phases (`device_bytes`) / bytes of its input in the clear.

    Args:
        num_devices: n, devices in the group.
        dim: d, entries of each input.
        input_bits: bits per entry.
        seed: draws device 0's input.
    """
    return sum(device_bytes(num_devices, dim, input_bits, seed).values()) / math.ceil(dim * input_bits / 8)
