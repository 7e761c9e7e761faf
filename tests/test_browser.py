"""A real browser: headless Chromium (Debian's package, driven by Playwright) runs a notebook in JupyterLab with
Run All in the quick profile, and opens the static site. Skipped, with the reason, where Chromium is not installed
(``./reproduce.sh`` installs it when it runs as root).

What it checks: no cell of the JupyterLab run errors, the committed ``notebooks/``, ``results/`` and ``figures/``
are byte for byte unchanged afterwards (the server works on copies and writes outputs elsewhere), and every image
of the site's index and of one notebook page loads.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from kdlib import lab
from kdlib.paths import repo_root
from kdlib.site import build_site

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOTEBOOK = "06_layernas.ipynb"  # the quickest quick profile
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
TOKEN = "kdlib-browser-test"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (./reproduce.sh installs Debian's package when run as root)")


def _snapshot() -> dict[str, str]:
    files = [p for folder in ("notebooks", "results", "figures") for p in sorted((repo_root() / folder).rglob("*")) if p.is_file()]
    return {str(p.relative_to(repo_root())): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield instance
        instance.close()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copyfile(repo_root() / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    port = _free_port()
    env = {**lab.lab_environment(quick=True), "KDLIB_OUTPUT": str(tmp_path / "output")}
    process = subprocess.Popen([*lab.lab_command(port, root), f"--IdentityProvider.token={TOKEN}"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("JupyterLab did not start within 60 s")
    yield url, root, tmp_path / "output"
    process.terminate()
    process.wait(timeout=30)


def test_run_all_in_jupyterlab_leaves_the_committed_reproduction_unchanged(server, browser):
    url, root, output = server
    before = _snapshot()
    page = browser.new_page()
    page.goto(f"{url}/lab/tree/{NOTEBOOK}?token={TOKEN}", timeout=120_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_function("document.querySelector('.jp-StatusBar-Widget') && document.body.innerText.includes('(ipykernel) | Idle')",
                           timeout=120_000)  # the kernel is up
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator:not([data-status='idle'])", timeout=60_000)  # the run started
    deadline, quiet = time.time() + 600, 0
    while time.time() < deadline and quiet < 3:  # done when the notebook's execution indicator stays idle
        time.sleep(2)
        quiet = quiet + 1 if idle.count() else 0
    if quiet < 3:
        pytest.fail("Run All did not finish within 10 minutes")
    saved = (root / NOTEBOOK).stat().st_mtime
    dialogs = page.locator(".jp-Dialog").all_inner_texts()
    assert not dialogs, f"JupyterLab shows a dialog: {dialogs}"
    page.get_by_role("menuitem", name="File", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Save( Notebook)?")).first.click()
    for _ in range(30):
        if (root / NOTEBOOK).stat().st_mtime != saved:
            break
        time.sleep(1)
    time.sleep(1)
    executed = json.loads((root / NOTEBOOK).read_text())
    errors = [o for c in executed["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, f"cells failed in JupyterLab: {[e['ename'] + ': ' + e['evalue'] for e in errors]}"
    assert all(c.get("execution_count") for c in executed["cells"] if c["cell_type"] == "code" and c["source"]), "not every cell ran"
    assert _snapshot() == before, "a JupyterLab session changed the committed notebooks, results or figures"
    results = json.loads((output / "quick" / "results" / NOTEBOOK.replace(".ipynb", ".json")).read_text())
    assert results["profile"] == "quick"  # the run happened, in the quick profile, and wrote where the server said


def test_static_site_pages_show_every_image(tmp_path, browser):
    index = build_site(tmp_path / "site")
    page = browser.new_page()
    for target in (index, tmp_path / "site" / "01_lelp.html"):
        page.goto(target.as_uri())
        page.wait_for_load_state("load")
        sizes = page.eval_on_selector_all("img", "images => images.map(i => [i.getAttribute('src').slice(0, 40), i.complete, i.naturalWidth])")
        assert sizes, f"{target.name} shows no image"
        broken = [s for s in sizes if not (s[1] and s[2] > 0)]
        assert not broken, f"{target.name}: images that did not load: {broken}"
    assert page.locator("table").count() >= 1
