"""Discovery in worker processes (onconet/data/discovery.py) finds exactly what reading file by file does.

The tree mixes what changes the order or the grouping: files at several depths (also beside folders),
names that sort differently as strings than part by part (``a-b`` vs ``a/b``), a series split over two
folders, hidden and non-DICOM files, a skipped (RTSTRUCT) series first in its study, and links to a folder
(not walked) and to a file (read).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pydicom
import pytest
from dicom_factory import pet_header, ramp, write_series
from pydicom.uid import generate_uid

from onconet.data.dicom import (
    DicomError,
    Discovery,
    Skipped,
    discover,
    discovery_reader,
    group_headers,
    instance_header,
    iter_files,
    read_instance_header,
)
from onconet.data.discovery import (
    KEY_TAGS,
    _fields,
    _sorted_files,
    read_runs,
    read_subtree,
    split_tree,
    start_discovery,
)
from onconet.data.slices import SliceHeader


def as_plain(found: Discovery) -> tuple:
    """Everything a Discovery holds, in its order (study and series order, file order, skipped order)."""
    studies = [
        (uid, {k: v for k, v in vars(s).items() if k != "series"}, [vars(r) for r in s.series])
        for uid, s in found.studies.items()
    ]
    return studies, found.skipped


def odd_tree(root: Path) -> Path:
    study = generate_uid()
    write_series(root / "a" / "pet", ramp((3, 3, 5)), header=pet_header(), study_uid=study)
    write_series(root / "a-b" / "ct", ramp((4, 4, 5)), modality="CT", study_uid=study, patient_id="P2")
    split = write_series(root / "a" / "b" / "c" / "ct", ramp((4, 4, 6)), modality="CT", study_uid=study)
    (root / "a" / "b" / "d").mkdir()
    for path in split[3:]:  # one series in two folders: one record, files in Path order
        shutil.move(path, root / "a" / "b" / "d" / path.name)
    rt = pydicom.dcmread(split[0])
    rt.Modality, rt.SeriesInstanceUID = "RTSTRUCT", generate_uid()
    rt.save_as(root / "a" / "0rt.dcm")  # a skipped series, read before the PET of the same study
    for n in range(3):
        write_series(root / f"p{n}", ramp((3, 3, 4)), header=pet_header(), patient_id=f"P{n}")
    shutil.copy(split[0].parent / os.listdir(split[0].parent)[0], root / "top.dcm")
    (root / "notes.txt").write_text("export notes")
    (root / ".hidden").write_bytes(b"\x00" * 200)
    (root / "linked").symlink_to(root / "p0", target_is_directory=True)  # os.walk does not follow it
    (root / "p1" / "link.dcm").symlink_to(root / "top.dcm")
    return root


def test_worker_discovery_equals_reading_file_by_file(tmp_path: Path) -> None:
    root = odd_tree(tmp_path / "export")
    reference = as_plain(group_headers(read_instance_header(p) for p in iter_files(root)))
    assert reference[0] and reference[1]  # studies found and things skipped
    for workers in (1, 2, 3):
        assert as_plain(discover(root, workers=workers)) == reference
    assert as_plain(discover(str(root) + "/", workers=2)) == reference
    assert as_plain(discover(root / "a", workers=2)) == as_plain(
        group_headers(read_instance_header(p) for p in iter_files(root / "a"))
    )


def test_tasks_cover_the_tree_in_path_order(tmp_path: Path) -> None:
    root = odd_tree(tmp_path / "export")
    for tasks in (1, 4, 100):
        parts = split_tree(root, tasks)
        listed = [f for path, is_dir in parts for f in (_sorted_files(path) if is_dir else [path])]
        assert listed == [str(p) for p in iter_files(root)]
    assert len(split_tree(root, 100)) > len(split_tree(root, 1))


def test_a_series_folder_travels_as_one_run(tmp_path: Path) -> None:
    files = write_series(tmp_path / "pet", ramp((3, 3, 7)), header=pet_header())
    runs = read_subtree((str(tmp_path / "pet"), True))
    assert len(runs) == 1
    header, more = runs[0]
    assert [header.path, *map(Path, more)] == sorted(files)


def test_instance_header_depends_only_on_the_key_elements(tmp_path: Path) -> None:
    """The fast path's premise: with the key elements unchanged, no other element changes the header."""
    path = write_series(tmp_path / "pet", ramp((3, 3, 2)), header=pet_header(), study_date="20250314")[0]
    original = discovery_reader().read(path)
    assert original is not None
    fields = _fields(instance_header(path, original))
    others = [tag for tag in original.values if tag not in KEY_TAGS]
    assert len(others) > 20  # geometry, rescale, SUV fields, pixels...
    for tag in others:
        for value in (b"", b"2\\3 ", b"OTHER\x00", b"\x01\x02\x03\x04"):
            values = {**original.values, tag: (original.values[tag][0], value)}
            changed = SliceHeader(str(path), values, b"", original.transfer_syntax, frozenset())
            assert _fields(instance_header(path, changed)) == fields, hex(tag)
    # and every key element that holds a discovery field does count
    for keyword in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "Modality", "Units", "StudyDate"):
        tag = int(pydicom.tag.Tag(keyword))
        vr, value = original.values[tag]
        values = {**original.values, tag: (vr, b"19991231" if keyword == "StudyDate" else value + b".9 ")}
        changed = SliceHeader(str(path), values, b"", original.transfer_syntax, frozenset())
        assert _fields(instance_header(path, changed)) != fields, keyword


def mixed_folder(root: Path) -> Path:
    """One folder where the discovery fields change between neighbouring files: two series interleaved by
    name, a slice with another patient ID, a slice whose Units only differ in padding (same fields,
    other bytes), a slice with another study date, a corrupt file and a DICOMDIR-like stray."""
    study = generate_uid()
    folder = root / "mixed"
    names = {"pet": lambda k: f"{2 * k:03d}.dcm", "ct": lambda k: f"{2 * k + 1:03d}.dcm"}
    write_series(folder, ramp((3, 3, 6)), header=pet_header(), study_uid=study, names=names["pet"])
    write_series(folder, ramp((4, 4, 6)), modality="CT", study_uid=study, names=names["ct"])

    def edit(k: int, ds: pydicom.Dataset) -> None:
        if k == 2:
            ds.PatientID = "OTHER"
        if k == 4:
            ds.Units = "BQML"  # written with a padding byte: other raw bytes than "BQML " elsewhere
        if k == 5:
            ds.StudyDate = "20250315"
        if k >= 3:
            ds.Units = "BQML" if k == 4 else "BQML "

    write_series(root / "edited", ramp((3, 3, 7)), header=pet_header(), study_uid=study, edit=edit)
    raw = (root / "edited" / sorted(os.listdir(root / "edited"))[1]).read_bytes()
    (root / "edited" / "zz_truncated.dcm").write_bytes(raw[: len(raw) // 2])
    return root


def reference_runs(paths: list[str]) -> list[tuple]:
    """Runs as grouping file by file makes them: a new run whenever the header fields change."""
    runs: list[tuple] = []
    last = None
    for path in paths:
        header = read_instance_header(path)
        key = _fields(header) if not isinstance(header, Skipped) else None
        if key is not None and key == last:
            runs[-1][1].append(path)
            continue
        runs.append((header, []))
        last = key
    return runs


def test_runs_by_raw_elements_equal_runs_by_header_fields(tmp_path: Path) -> None:
    root = mixed_folder(tmp_path / "export")
    paths = _sorted_files(str(root))
    runs = read_runs(paths)
    assert runs == reference_runs(paths)
    assert len(runs) > 12  # the interleaved series alone make a run per file
    assert as_plain(discover(root, workers=2)) == as_plain(
        group_headers(read_instance_header(p) for p in iter_files(root))
    )


def test_pending_discovery_returns_while_the_processes_read(tmp_path: Path) -> None:
    root = odd_tree(tmp_path / "export")
    reference = as_plain(discover(root, workers=1))
    with start_discovery(root, workers=2) as pending:
        assert pending._pool is not None  # the processes run while the caller goes on
        assert as_plain(pending.result()) == reference
        assert pending._pool is None  # the result ends them
    with pytest.raises(RuntimeError), start_discovery(root, workers=2) as pending:
        raise RuntimeError("the caller failed before asking for the result")
    assert pending._pool is None
    with pytest.raises(DicomError, match="no such folder"):
        start_discovery(tmp_path / "missing", workers=2)
