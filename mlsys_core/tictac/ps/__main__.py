"""A server or worker process of the real parameter server: `python -m mlsys_core.tictac.ps --role=...`.

The coordinator (`coordinator.run`) starts these with the experiment's `PSConfig` on the command line.
"""

from __future__ import annotations

from mlsys_core.tictac.ps.config import from_argv


def main(argv: list[str] | None = None) -> None:
    """Run the role named on the command line until the coordinator says stop."""
    args = from_argv(argv)
    if args.role == "server":
        from mlsys_core.tictac.ps.server import server_main

        server_main(args.config, args.port, args.ident)
    else:
        from mlsys_core import backend

        backend.setup(cpu_devices=1)
        from mlsys_core.tictac.ps.worker import worker_main

        worker_main(args.config, args.port, args.ident, list(args.server_ports))


if __name__ == "__main__":
    main()
