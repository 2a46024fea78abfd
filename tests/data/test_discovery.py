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
from dicom_factory import pet_header, ramp, write_series
from pydicom.uid import generate_uid

from onconet.data.dicom import Discovery, discover, group_headers, iter_files, read_instance_header
from onconet.data.discovery import _sorted_files, read_subtree, split_tree


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
