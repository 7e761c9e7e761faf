"""The notebook cleaner removes only run noise, and the committed notebooks carry none."""

import json
import re

import nbformat
import pytest

from kdlib import runner
from kdlib.clean import WIDGET, clean_file, clean_notebook

NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
ABSOLUTE = re.compile(r"(?<![\w.])/(?:root|home|work|tmp|usr|opt|Users)/|\.venv/|site-packages|[A-Z]:\\\\")


def _executed_notebook(injected: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell('profile = "full"\nseeds = 3')
    parameters.metadata["tags"] = ["parameters"]
    injected_cell = nbformat.v4.new_code_cell(f"# Parameters\n{injected}\n")
    injected_cell.metadata["tags"] = ["injected-parameters"]
    work = nbformat.v4.new_code_cell("run()")
    work.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="accuracy 91.79 (n=3)\n"),
        nbformat.v4.new_output("stream", name="stderr", text="/work/main/.venv/lib/python3.11/site-packages/tqdm/auto.py:21: TqdmWarning\n"),
        nbformat.v4.new_output("display_data", data={WIDGET: {"model_id": "abc"}, "text/plain": "grid:  40%|####      | 4/10 [00:01<00:02]"}),
        nbformat.v4.new_output("execute_result", data={"text/plain": "   a     b\n0  1.5  -0.25", "text/html": "<td>1.5</td>"}, execution_count=3),
    ]
    nb.cells = [parameters, injected_cell, work]
    return nb


def _kept_text(nb) -> str:
    return json.dumps([o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                       if not (o.get("name") == "stderr" or WIDGET in o.get("data", {}))], sort_keys=True)


def test_removes_stderr_progress_widgets_and_a_default_parameter_cell_and_nothing_else():
    before = _executed_notebook('profile = "full"')
    kept_before = _kept_text(before)
    after = clean_notebook(nbformat.from_dict(json.loads(json.dumps(before))))
    assert [c.metadata.get("tags", []) for c in after.cells] == [["parameters"], []]  # the injected cell equal to the defaults went
    outputs = after.cells[1].outputs
    assert [o.output_type for o in outputs] == ["stream", "execute_result"] and outputs[0].name == "stdout"
    assert _kept_text(after) == kept_before
    assert NUMBER.findall(_kept_text(after)) == NUMBER.findall(kept_before)  # no number changes


def test_keeps_an_injected_cell_that_changes_a_parameter(tmp_path):
    nb = clean_notebook(_executed_notebook('profile = "quick"'))
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    path = tmp_path / "n.ipynb"
    nbformat.write(_executed_notebook('profile = "full"'), path)
    assert clean_file(path, check=True) and clean_file(path) and not clean_file(path)  # needed cleaning, cleaned, now clean


@pytest.mark.parametrize("path", runner.notebooks(), ids=lambda p: p.stem)
def test_committed_notebooks_are_clean_and_carry_no_machine(path):
    assert not clean_file(path, check=True), f"{path.name} holds run noise: run python -m kdlib.clean {path}"
    nb = nbformat.read(path, as_version=4)
    assert not ABSOLUTE.search(json.dumps(nb.metadata)), f"{path.name}: an absolute path in the notebook's metadata"
    assert sum("parameters" in c.metadata.get("tags", []) or "injected-parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            text = json.dumps({k: v for k, v in output.items() if k != "data"}) + json.dumps(
                {k: v for k, v in output.get("data", {}).items() if not k.startswith("image/")})
            assert not ABSOLUTE.search(text), f"{path.name}, cell {index}: an absolute path in the outputs: {ABSOLUTE.search(text).group(0)}"
            assert "Warning" not in text and output.get("output_type") != "error", f"{path.name}, cell {index}: a warning or error in the outputs"
