"""The reader of the benchmark results' Markdown tables (benchmarks/results_tables.py)."""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import pandas as pd
import pytest
from benchmark_scripts import load_benchmark_script

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


rt = load_benchmark_script("results_tables")

TEXT = """# Title

Some words | with a bar but no table.

## Sizes

### N = 1,024 (B=1)

| op | forward ms | peak MiB | note |
| --- | ---: | ---: | --- |
| **ours** | **0.25** | 1,536 | |
| `other` | 2.5× | — | skipped: too slow |

Floors: bytes 1 MB fwd / 3 MB fwd+bwd -> 0.0010 / 0.0030 ms at the measured copy bandwidth; more.

## Other

| a | b |
|:--|--:|
| x | 3.65x / 2.96x |
"""


def test_tables_keep_their_headings_rows_and_numbers():
    first, second = rt.parse_tables(TEXT)
    assert first.headings == ("Title", "Sizes", "N = 1,024 (B=1)") and first.tokens == 1024
    assert first.line == 9 and first.columns == ("op", "forward ms", "peak MiB", "note")
    frame = first.frame()
    assert frame["op"].tolist() == ["ours", "other"]  # emphasis and code marks gone
    assert frame["forward ms"].tolist() == [0.25, 2.5]
    assert frame["peak MiB"][0] == 1536.0 and math.isnan(frame["peak MiB"][1])
    assert frame["note"].tolist() == ["", "skipped: too slow"]  # no number in it: stays text
    assert second.headings == ("Title", "Other") and second.tokens is None
    assert second.frame()["b"].tolist() == ["3.65x / 2.96x"]  # two numbers are not one


def test_a_row_of_the_wrong_width_names_file_and_line():
    broken = "| a | b |\n| --- | --- |\n| 1 | 2 | 3 |\n"
    with pytest.raises(rt.ResultsTableError, match=r"kernels\.md:3: table row has 3 cells, its header 2"):
        rt.parse_tables(broken, source="kernels.md")


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(rt.ResultsTableError, match=r"nope\.md: cannot read"):
        rt.read_tables(tmp_path / "nope.md")


def test_kernel_floors(tmp_path):
    path = tmp_path / "kernels.md"
    path.write_text(TEXT)
    floors = rt.kernel_floors(path)
    assert floors[["tokens", "forward_ms", "fwd_bwd_ms"]].values.tolist() == [[1024, 0.001, 0.003]]


def _kernel_tables(section: str) -> dict[int, pd.DataFrame]:
    """The ``op`` tables of kernels.md under the heading ``section``, by sequence length."""
    tables = rt.read_tables(RESULTS / "kernels.md")
    return {
        t.tokens: t.frame().set_index("op")
        for t in tables
        if t.columns[:2] == ("op", "forward ms") and section in t.headings
    }


def test_the_stored_h200_results_read_as_written():
    # the final run (session 4, commit 102e119) is what notebook 03 draws
    final = _kernel_tables("Full tables (final run)")
    assert sorted(final) == [4096, 32768, 262144]
    ours = final[32768].loc["Taylor linear attention, Triton (ours)"]
    assert (ours["forward ms"], ours["fwd+bwd ms"], ours["peak MiB (fwd+bwd)"]) == (0.238, 1.064, 236.0)
    assert final[262144].loc["SDPA softmax attention, cuDNN", "forward ms"] == 635.253
    floors = rt.kernel_floors(RESULTS / "kernels.md")
    in_final = floors[floors["headings"].str.split(" / ").map(lambda h: "Full tables (final run)" in h)]
    assert in_final[["tokens", "forward_ms", "fwd_bwd_ms"]].values.tolist() == [
        [4096, 0.0049, 0.0148],
        [32768, 0.0395, 0.1186],
        [262144, 0.3162, 0.9485],
    ]
    # the session-3 tables stay in the file under their own heading, with their floors
    earlier = _kernel_tables("Session 3 final run: full tables (earlier run)")
    assert sorted(earlier) == [4096, 32768, 262144]
    assert earlier[32768].loc["Taylor linear attention, Triton (ours)", "forward ms"] == 0.283
    assert list(floors["tokens"]) == [4096, 32768, 262144] * 2
    backbones = rt.read_tables(RESULTS / "backbones.md")[0]
    assert backbones.headings[-1].startswith("H200")
    frame = backbones.frame().set_index(["size", "backbone"])
    assert frame.loc[("192³", "vit_sdpa"), "step (ms)"] == 1439.1


def test_docstring_examples():
    result = doctest.testmod(rt, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
