"""Paper 3 benchmark: Secure Aggregation (CCS 2017, `mlsys_core.fl.secagg`) at 100, 200 and 500 clients
with 10^5-dimensional 16-bit updates (modulus 16 + ceil(log2 n) bits, threshold n/2 + 1), at 0% and
10% drop-out. The drop-outs happen after sharing keys, before the masked input (the costly case for
the server: it reconstructs every dropped client's mask key and removes its pair masks with every
survivor). Rounds 0-2 run once per size; the server's side then runs for both drop-out rates.

Server seconds: the server's compute in all rounds (relaying shares, reading masked inputs,
Shamir reconstruction, removing masks). Client seconds: one client's compute over all rounds
(mean over clients). Expansion: bytes a client sends, measured from its serialised messages, over
the bytes of its update in the clear. Every run checks that the server's sum is the survivors' sum.

Ends with `RESULT secagg clients=500 dim=100000 server_seconds_0drop=... server_seconds_10drop=...
client_seconds=... expansion=...`.
"""

import argparse
import math
import time

import numpy as np


def run_size(n: int, d: int, drop_rate: float, seed: int) -> dict:
    from mlsys_core.fl import secagg

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2**16, size=(n, d))
    cfg = secagg.SecAggConfig(n, n // 2 + 1, 16 + math.ceil(math.log2(n)))
    run = secagg.GroupRun(x, cfg)  # keys from the operating system, as deployed
    start = time.perf_counter()
    assert run.through_masked_input()
    clients_wall = time.perf_counter() - start
    after_sharing = run.fork()
    out = {"clients_wall_s": clients_wall}
    for rate in (0.0, drop_rate):
        run = after_sharing.fork()  # each device answers a round once: each pattern gets its own copy
        gone = set(rng.choice(n, int(round(rate * n)), replace=False).tolist())
        res = run.finish({u: m for u, m in run.masked.items() if u not in gone})
        assert res.aborted == "" and np.array_equal(res.total, x[res.included].sum(0) % 2**cfg.modulus_bits)
        assert res.included.sum() == n - len(gone)
        out[f"server_s_{rate:.0%}"] = res.server_seconds
        if rate == 0.0:
            out["client_s"] = float(res.client_seconds.mean())
            sent = sum(v for v in res.bytes_sent.values())
            out["expansion"] = float(sent.mean() / (d * 16 / 8))
            out["bytes_per_phase"] = {k: int(v.mean()) for k, v in res.bytes_sent.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 200, 500])
    parser.add_argument("--dim", type=int, default=100_000)
    parser.add_argument("--drop", type=float, default=0.1)
    args = parser.parse_args()
    rows = {}
    for n in args.clients:
        rows[n] = r = run_size(n, args.dim, args.drop, seed=0)
        print(f"{n:4d} clients, dim {args.dim}: server {r['server_s_0%']:.2f} s at 0% drop-out, "
              f"{r[f'server_s_{args.drop:.0%}']:.2f} s at {args.drop:.0%}; client {r['client_s']:.3f} s; "
              f"expansion {r['expansion']:.3f}x; bytes per client and phase {r['bytes_per_phase']} "
              f"(all clients simulated in {r['clients_wall_s']:.0f} s)", flush=True)
    n, r = args.clients[-1], rows[args.clients[-1]]
    print(f"RESULT secagg clients={n} dim={args.dim} server_seconds_0drop={r['server_s_0%']:.2f} "
          f"server_seconds_10drop={r[f'server_s_{args.drop:.0%}']:.2f} client_seconds={r['client_s']:.3f} "
          f"expansion={r['expansion']:.3f}")


if __name__ == "__main__":
    main()
