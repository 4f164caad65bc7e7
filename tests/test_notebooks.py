"""The analysts' notebooks run end to end on the small trained project, and are committed without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
NAMES = ("01-where-we-win.ipynb", "02-why-this-deal.ipynb", "03-model-health.ipynb")


def _parameters_cell(book: nbformat.NotebookNode) -> nbformat.NotebookNode:
    tagged = [
        cell for cell in book.cells if "parameters" in cell.get("metadata", {}).get("tags", [])
    ]
    assert len(tagged) == 1, "a notebook has exactly one cell tagged 'parameters'"
    return tagged[0]


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_have_no_outputs_and_one_parameters_cell(name):
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(book)
    code = [cell for cell in book.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code), (
        f"{name} has outputs: clear them before committing (Kernel > Restart & Clear Output)"
    )
    assert _parameters_cell(book).source.lstrip().startswith("# Parameters")
    assert any("models:/winmodel@" in cell.source for cell in code), (
        "the notebook reads the champion"
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_on_the_small_project(name, trained_project, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    _parameters_cell(book).source = "\n".join(
        [
            f"DATA = {str(trained_project.data)!r}",
            f"CONFIG = {str(trained_project.config)!r}",
            "SINCE = None",
            "DEAL_ID = None",
            "REPLAY_PERIODS = 1",
            "SHIFT_WARMUP = 4",
        ]
    )
    # The kernel inherits this process's environment: the champion comes from the project's store.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_project.tracking_uri)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError naming the cell when one fails
    outputs = [output for cell in book.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert images, f"{name} rendered no figure"
    if name.startswith("03"):  # the slow section says what it is doing while it runs
        printed = "".join(output.get("text", "") for output in outputs)
        assert "refit 1 of about 5" in printed, printed[:500]
