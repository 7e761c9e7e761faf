"""JupyterLab working copies: the committed notebooks are copied, never served; promotion is deliberate."""

import json
import shutil

import pytest

from kdlib import lab
from kdlib.paths import output_dir


@pytest.fixture
def repo(tmp_path, monkeypatch):
    for folder in ("notebooks", "results", "figures"):
        (tmp_path / folder).mkdir()
    (tmp_path / "notebooks" / "01_x.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (tmp_path / "README.md").write_text("<!-- results:start -->\n<!-- results:end -->\n")
    for module in ("kdlib.lab", "kdlib.paths", "kdlib.results.readme"):
        monkeypatch.setattr(f"{module}.repo_root", lambda: tmp_path, raising=False)
    return tmp_path


def test_working_copies_leave_the_committed_notebooks_alone(repo):
    copies = lab.working_copies()
    assert copies == repo / "build" / "lab" / "notebooks" and (copies / "01_x.ipynb").exists()
    (copies / "01_x.ipynb").write_text("edited by a reader")
    lab.working_copies()
    assert (copies / "01_x.ipynb").read_text() == "edited by a reader"  # a reader's copy is kept
    lab.working_copies(fresh=True)
    assert (copies / "01_x.ipynb").read_text() == (repo / "notebooks" / "01_x.ipynb").read_text()


def test_lab_outputs_go_to_the_lab_folder(repo, monkeypatch):
    env = lab.lab_environment(quick=True)
    assert env["KDLIB_PROFILE"] == "quick" and env["KDLIB_OUTPUT"] == str(repo / "build" / "lab" / "output")
    monkeypatch.setenv("KDLIB_OUTPUT", env["KDLIB_OUTPUT"])
    assert output_dir("results", "full") == repo / "build" / "lab" / "output" / "full" / "results"
    assert "--allow-root" in lab.lab_command(8888, repo, allow_root=True) and "--allow-root" not in lab.lab_command(8888, repo, allow_root=False)


def test_promote_needs_a_full_run_of_the_working_copy(repo):
    with pytest.raises(ValueError, match="no working copy"):
        lab.promote("1")
    lab.working_copies()
    with pytest.raises(ValueError, match="no full-profile run"):
        lab.promote("1")
    out = repo / "build" / "lab" / "output" / "full"
    (out / "results").mkdir(parents=True)
    (out / "figures").mkdir()
    (out / "results" / "01_x.json").write_text(json.dumps({"notebook": "01_x", "profile": "full", "claims": []}))
    shutil.copyfile(repo / "notebooks" / "01_x.ipynb", out / "figures" / "01_fig.png")
    promoted = lab.promote("1")
    assert {p.name for p in promoted} == {"01_x.ipynb", "01_x.json", "01_fig.png"} and (repo / "results" / "01_x.json").exists()
