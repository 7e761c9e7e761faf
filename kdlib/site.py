"""A static site of the committed reproduction for readers without Jupyter: ``./reproduce.sh site``.

``python -m kdlib.site [--out build/site]`` renders every committed executed notebook to HTML (nbconvert's lab
template, figures embedded), and an index page with the README's graded-verdict block and a thumbnail gallery of
every figure in ``figures/``. Open ``build/site/index.html`` in a browser; nothing is fetched from the network.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import sys
from pathlib import Path

import mistune
import nbformat
from nbconvert import HTMLExporter

from kdlib.paths import repo_root
from kdlib.results.readme import readme_table

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; line-height: 1.45; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; vertical-align: top; text-align: left; }
.gallery { display: flex; flex-wrap: wrap; gap: 1em; }
.gallery figure { margin: 0; width: 270px; }
.gallery img { width: 270px; height: 180px; object-fit: contain; border: 1px solid #ddd; background: #fff; }
.gallery figcaption { font-size: 0.8em; }
"""
REMOTE_SCRIPT = re.compile(r'<script[^>]*\bsrc="https?://[^"]*"[^>]*>\s*</script>|<script type="module">(?:(?!</script>).)*?https?://.*?</script>', re.S)


def notebook_title(path: Path) -> str:
    """The first Markdown heading of a notebook (its file name if it has none)."""
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("#"):
            return cell.source.lstrip().splitlines()[0].lstrip("# ").strip()
    return path.stem


def render_notebooks(out: Path) -> list[tuple[str, str]]:
    """Every committed notebook as ``out/NN_name.html``; returns (page, title) pairs in reading order."""
    exporter = HTMLExporter(template_name="lab")
    pages = []
    for path in sorted((repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        body, _ = exporter.from_notebook_node(nbformat.read(path, as_version=4))
        (out / f"{path.stem}.html").write_text(REMOTE_SCRIPT.sub("", body))  # offline: no CDN scripts (MathJax, require.js)
        pages.append((f"{path.stem}.html", notebook_title(path)))
    return pages


def index_page(pages: list[tuple[str, str]], figures: list[Path]) -> str:
    """The index: the notebooks, the graded-verdict block of the README, and the figure gallery."""
    notebooks = "".join(f'<li><a href="{html.escape(page)}">{html.escape(title)}</a></li>' for page, title in pages)
    gallery = "".join(
        f'<figure><a href="figures/{html.escape(f.name)}"><img src="figures/{html.escape(f.name)}" alt="{html.escape(f.stem)}"></a>'
        f"<figcaption>{html.escape(f.stem)}</figcaption></figure>" for f in figures
    )
    verdicts = mistune.html(readme_table())
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>kdlib: ten KD papers reproduced on a laptop CPU</title>"
            f"<style>{STYLE}</style></head><body><h1>kdlib: knowledge distillation papers, reproduced on a laptop CPU</h1>"
            f"<h2>Notebooks</h2><ol start='0'>{notebooks}</ol><h2>Results (graded verdicts)</h2>{verdicts}"
            f"<h2>Figures</h2><div class='gallery'>{gallery}</div></body></html>")


def build_site(out: Path) -> Path:
    """Write the site to ``out`` (replacing it) and return its index page."""
    if out.exists():
        shutil.rmtree(out)
    (out / "figures").mkdir(parents=True)
    figures = sorted((repo_root() / "figures").glob("*.png"))
    for figure in figures:
        shutil.copyfile(figure, out / "figures" / figure.name)
    pages = render_notebooks(out)
    index = out / "index.html"
    index.write_text(index_page(pages, figures))
    (out / "manifest.json").write_text(json.dumps({"pages": [p for p, _ in pages], "figures": [f.name for f in figures]}, indent=1))
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlib.site", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=repo_root() / "build" / "site")
    args = parser.parse_args(argv)
    index = build_site(args.out)
    print(f"static site: {index} ({len(json.loads((args.out / 'manifest.json').read_text())['pages'])} notebooks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
