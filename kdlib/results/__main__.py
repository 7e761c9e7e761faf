"""``python -m kdlib.results`` regenerates the README's results block from ``results/*.json``;
``python -m kdlib.results provisional`` first grades the committed records of notebooks not yet re-run on declared
claims (:mod:`kdlib.results.provisional`: verdicts, ``results/provisional/``, ``figures/NN_forest.png``)."""

from __future__ import annotations

import sys

from kdlib.paths import repo_root
from kdlib.results.readme import update_readme


def main(argv: list[str]) -> int:
    """Run the command line; returns the exit code."""
    if argv not in ([], ["provisional"]):
        print("usage: python -m kdlib.results [provisional]", file=sys.stderr)
        return 2
    if argv:
        from kdlib.results.provisional import write_provisional  # imports the claims registries (and torch)

        graded = write_provisional(repo_root() / "results", figures_dir=repo_root() / "figures")
        print(f"provisional verdicts written for {len(graded)} notebook(s): {', '.join(graded) or 'none'}")
    print("README results table " + ("updated" if update_readme() else "unchanged"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
