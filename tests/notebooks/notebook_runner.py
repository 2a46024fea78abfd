"""Execute a notebook of ``notebooks/`` the way the tests do, and read its outputs back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@dataclass
class NotebookOutputs:
    """The outputs of a notebook's code cells, by kind."""

    outputs: list[dict]

    @classmethod
    def of(cls, notebook: nbformat.NotebookNode) -> NotebookOutputs:
        code = (cell for cell in notebook.cells if cell.cell_type == "code")
        return cls([out for cell in code for out in cell.get("outputs", [])])

    @property
    def text(self) -> str:
        """Everything printed (stdout and stderr streams)."""
        return "".join(out.get("text", "") for out in self.outputs if out.get("output_type") == "stream")

    @property
    def images(self) -> list[dict]:
        return [out for out in self.outputs if "image/png" in out.get("data", {})]

    @property
    def html(self) -> str:
        return "".join(out.get("data", {}).get("text/html", "") for out in self.outputs)

    @property
    def plain(self) -> str:
        return "".join(out.get("data", {}).get("text/plain", "") for out in self.outputs)


def stored_outputs(name: str) -> NotebookOutputs:
    """The outputs stored in ``notebooks/<name>`` (its last full run)."""
    return NotebookOutputs.of(nbformat.read(NOTEBOOKS / name, as_version=4))


def execute_small_profile(
    monkeypatch: pytest.MonkeyPatch, name: str, timeout: int = 240, out: Path | None = None
) -> NotebookOutputs:
    """Execute ``notebooks/<name>`` with ``ONCONET_PROFILE=small`` (and ``ONCONET_NOTEBOOK_OUT=out``).

    The kernel inherits this process's environment; ``monkeypatch`` sets the variables for this test only.
    """
    monkeypatch.setenv("ONCONET_PROFILE", "small")
    if out is not None:
        monkeypatch.setenv("ONCONET_NOTEBOOK_OUT", str(out))
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    return NotebookOutputs.of(notebook)
