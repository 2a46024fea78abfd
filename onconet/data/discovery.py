"""Discovery of a folder tree in worker processes, with little work left in the calling process.

:func:`onconet.data.dicom.discover` reads one header per file. With worker processes, what used to stay
serial in the caller outweighed the reading itself on many files: listing and sorting every path as a
``Path`` (~14 us per file), then unpickling one :class:`~onconet.data.dicom.InstanceHeader` per file (~27
us). Here each worker task takes a subtree, lists and sorts its files, reads their headers and returns
them as *runs*: consecutive files whose discovery fields are equal (a series' slices) travel as one
header plus the paths of the other files. The caller only splits the top of the tree into tasks and groups
the runs, which :func:`group_runs` does exactly as grouping the files one by one would.

The result equals reading ``iter_files(root)`` in order (Path order: part by part) one file at a time:
tasks are whole subtrees, taken in name order, and each lists its files in Path order.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields
from operator import attrgetter
from pathlib import Path

from onconet.data.dicom import (
    Discovery,
    InstanceHeader,
    SeriesRecord,
    Skipped,
    StudyRecord,
    discovery_reader,
    iter_files,
    read_instance_header,
)

#: A run: one file's header (or why it was skipped) and further files with equal discovery fields.
Run = tuple[InstanceHeader | Skipped, Sequence[str | os.PathLike]]
#: Subtrees per worker process at least, so that uneven subtrees still keep every process busy.
TASKS_PER_WORKER = 4


#: Everything of a header but its path (what makes two files belong to one run).
_fields = attrgetter(*(f.name for f in fields(InstanceHeader) if f.name != "path"))


def _subtree_entries(folder: str) -> list[tuple[str, bool]]:
    """``(path, is a folder to walk)`` of a folder's entries in name order, as :func:`os.walk` sees them.

    Like ``os.walk`` (used by ``iter_files``): a folder that cannot be listed has no entries, and links to
    folders are neither walked nor files.
    """
    try:
        with os.scandir(folder) as entries:
            found = []
            for entry in entries:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if is_dir and entry.is_symlink():
                    continue
                found.append((entry.path, is_dir))
    except OSError:
        return []
    return sorted(found, key=lambda item: os.path.basename(item[0]))


def split_tree(root: str | os.PathLike, tasks: int) -> list[tuple[str, bool]]:
    """The top of ``root`` as ``(path, is a folder)`` in Path order, split until there are ``tasks`` parts
    (or only files are left)."""
    parts = _subtree_entries(os.fspath(root))
    while len(parts) < tasks and any(is_dir for _path, is_dir in parts):
        parts = [
            child
            for path, is_dir in parts
            for child in (_subtree_entries(path) if is_dir else [(path, False)])
        ]
    return parts


def _sorted_files(folder: str) -> list[str]:
    """Every file under ``folder`` in Path order (part by part, as ``sorted(iter_files(folder))``)."""
    found: list[str] = []
    for where, _dirs, names in os.walk(folder):
        found.extend(os.path.join(where, name) for name in names)
    return sorted(found, key=lambda path: path.split(os.sep))


def read_runs(paths: Iterable[str | os.PathLike]) -> list[Run]:
    """The headers of ``paths`` (in this order) as runs of equal discovery fields.

    A folder's files are read with a reader of their own: one series' layout, learnt from its first
    files, instead of one reader's layout drifting over every series (~30 % less time per file).
    """
    runs: list[Run] = []
    last: tuple | None = None
    folder, reader = None, discovery_reader()
    for path in paths:
        if os.path.dirname(path) != folder:
            folder, reader = os.path.dirname(path), discovery_reader()
        header = read_instance_header(path, reader)
        key = _fields(header) if isinstance(header, InstanceHeader) else None
        if key is not None and key == last:
            runs[-1][1].append(path)  # type: ignore[union-attr]
            continue
        runs.append((header, []))
        last = key
    return runs


def read_subtree(task: tuple[str, bool]) -> list[Run]:
    """One worker task: a file, or every file of a folder in Path order, read as runs."""
    path, is_dir = task
    return read_runs(_sorted_files(path) if is_dir else [path])


def discover_tree(root: str | os.PathLike, workers: int = 1) -> Discovery:
    """:func:`onconet.data.dicom.discover`: the same result, read in ``workers`` processes (if > 1)."""
    if workers <= 1 or Path(root).is_file():
        return group_runs(read_runs(iter_files(root)))
    if not Path(root).is_dir():
        iter_files(root)  # raises the named error
    tasks = split_tree(root, TASKS_PER_WORKER * workers)
    with ProcessPoolExecutor(workers) as pool:
        return group_runs(run for runs in pool.map(read_subtree, tasks) for run in runs)


def group_runs(runs: Iterable[Run]) -> Discovery:
    """Instances grouped into studies and series; non-PET/CT series skipped with their reason.

    A run counts as its header followed by its further files with the same fields: the series and study
    records take the fields of the first file that creates them, exactly as grouping file by file.
    """
    result = Discovery()
    series: dict[tuple[str, str], SeriesRecord] = {}
    reasons: dict[tuple[str, str], str] = {}
    for header, more in runs:
        if isinstance(header, Skipped):
            result.skipped.append(header)
            continue
        key = (header.study_uid, header.series_uid)
        if key not in series:
            series[key] = SeriesRecord(
                series_uid=header.series_uid,
                study_uid=header.study_uid,
                modality=header.modality,
                frame_of_reference_uid=header.frame_of_reference_uid,
                description=header.series_description,
                image_type=header.image_type,
                units=header.units,
                manufacturer=header.manufacturer,
            )
            if header.skip_reason:
                reasons[key] = header.skip_reason
        if key not in reasons and header.study_uid not in result.studies:
            result.studies[header.study_uid] = StudyRecord(
                study_uid=header.study_uid,
                patient_id=header.patient_id,
                study_date=header.study_date,
                study_time=header.study_time,
                site=header.institution,
                manufacturer=header.manufacturer,
            )
        files = series[key].files
        files.append(header.path)
        files.extend(Path(path) for path in more)
    for key, record in series.items():
        if key in reasons:
            result.skipped.append(Skipped(record.series_uid, reasons[key], f"{len(record.files)} file(s)"))
        else:
            result.studies[record.study_uid].series.append(record)
    for study in result.studies.values():
        pet = next((s for s in study.series if s.modality == "PT" and s.manufacturer), None)
        study.manufacturer = pet.manufacturer if pet else study.manufacturer
    return result
