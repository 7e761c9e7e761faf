import nbformat
import pytest

from kdlib import runner


def _notebook(path, parameter_cells):
    nb = nbformat.v4.new_notebook()
    for source in parameter_cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def test_parameters_cell_rules(tmp_path):
    assert runner.parameter_defaults(_notebook(tmp_path / "ok.ipynb", ['profile = "full"\nseeds = 3'])) == {"profile": "full", "seeds": 3}
    with pytest.raises(ValueError, match="exactly one cell tagged 'parameters', found 0"):
        runner.parameter_defaults(_notebook(tmp_path / "none.ipynb", []))
    with pytest.raises(ValueError, match="found 2"):
        runner.parameter_defaults(_notebook(tmp_path / "two.ipynb", ['profile = "full"', "seeds = 3"]))
    with pytest.raises(ValueError, match="`profile` among them"):
        runner.parameter_defaults(_notebook(tmp_path / "noprofile.ipynb", ["seeds = 3"]))
    with pytest.raises(ValueError, match="literals only"):
        runner.parameter_defaults(_notebook(tmp_path / "code.ipynb", ['profile = "full"\nseeds = list(range(3))']))


def test_notebook_selection():
    names = [p.name for p in runner.notebooks(["0"])]
    assert names == ["00_data_and_teachers.ipynb"]
    with pytest.raises(ValueError, match="no notebook numbered"):
        runner.notebooks(["42"])


def test_every_committed_notebook_is_well_formed():
    for path in runner.notebooks():
        runner.parameter_defaults(path)
        assert nbformat.read(path, as_version=4).metadata["kernelspec"]["name"] == "python3"
