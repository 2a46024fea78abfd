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

Within a run, a file that the series reader reads by its learnt layout and whose raw discovery elements
are byte-equal to the previous file's needs no :class:`~onconet.data.dicom.InstanceHeader` of its own:
:func:`~onconet.data.dicom.instance_header` is a function of those elements alone, so the file joins
the run as it would after the full comparison (about half of the per-file time went into making and
comparing the header). :func:`start_discovery` starts the processes and returns at once, so the caller
can set up other things (checkpoint, device) while the tree is read.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import fields
from operator import attrgetter
from pathlib import Path

from pydicom.tag import Tag

from onconet.data.dicom import (
    DISCOVERY_KEYWORDS,
    Discovery,
    InstanceHeader,
    SeriesRecord,
    Skipped,
    StudyRecord,
    discovery_reader,
    instance_header,
    iter_files,
    read_discovery_slice,
)
from onconet.data.slices import SliceHeader

#: A run: one file's header (or why it was skipped) and further files with equal discovery fields.
Run = tuple[InstanceHeader | Skipped, Sequence[str | os.PathLike]]
#: Subtrees per worker process at least, so that uneven subtrees still keep every process busy.
TASKS_PER_WORKER = 4


#: Everything of a header but its path (what makes two files belong to one run).
_fields = attrgetter(*(f.name for f in fields(InstanceHeader) if f.name != "path"))
#: The elements :func:`instance_header` reads of a series reader's slice: the discovery keywords, the
#: media storage SOP class (DICOMDIR) and the DICOMDIR's record sequence. Equal raw values (VR and bytes)
#: give equal headers but for the path (``tests/data/test_discovery.py`` checks that nothing else counts).
KEY_TAGS: tuple[int, ...] = (
    *(int(Tag(keyword)) for keyword in DISCOVERY_KEYWORDS),
    0x00020002,  # MediaStorageSOPClassUID
    0x00041220,  # DirectoryRecordSequence
)


def raw_key(header: SliceHeader) -> tuple:
    """The raw ``(VR, bytes)`` values of :data:`KEY_TAGS` of a slice (``None`` where absent)."""
    return tuple(map(header.values.get, KEY_TAGS))


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
    files, instead of one reader's layout drifting over every series (~30 % less time per file). A file
    whose raw discovery elements equal the previous file's in the run joins it without a header of its own.
    """
    runs: list[Run] = []
    last: tuple | None = None  # the fields of the current run
    last_raw: tuple | None = None  # the raw key of its latest file, when the series reader read it
    folder, reader = None, discovery_reader()
    for path in paths:
        if os.path.dirname(path) != folder:
            folder, reader = os.path.dirname(path), discovery_reader()
        slice_header = read_discovery_slice(path, reader)
        raw = raw_key(slice_header) if slice_header is not None else None
        if raw is not None and raw == last_raw:
            runs[-1][1].append(path)  # type: ignore[union-attr]
            continue
        header = instance_header(path, slice_header)
        key = _fields(header) if isinstance(header, InstanceHeader) else None
        last_raw = raw if key is not None else None
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
    with start_discovery(root, workers) as pending:
        return pending.result()


def available_cpus() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def rank_cpus(ranks: int = 1) -> int:
    """One rank's share of :func:`available_cpus` when ``ranks`` processes (DDP) share the machine."""
    return max(1, available_cpus() // max(1, ranks))


class PendingDiscovery:
    """Discovery of a tree that runs in worker processes while the caller does other things.

    The processes are started and every subtree is handed out when this is made; :meth:`result` waits for
    them and groups the runs. Use it as a context manager, so that the processes end if the caller fails
    before asking for the result. With one worker (or a single file) the reading happens in
    :meth:`result`, in this process.

    Raises:
        DicomError: ``root`` is neither a file nor a folder.
    """

    def __init__(self, root: str | os.PathLike, workers: int = 1) -> None:
        self.root = root
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[Future[list[Run]]] = []
        if workers <= 1 or Path(root).is_file():
            return
        if not Path(root).is_dir():
            iter_files(root)  # raises the named error
        tasks = split_tree(root, TASKS_PER_WORKER * workers)
        # no more processes than a quarter of the tasks: a small tree does not pay for idle processes
        processes = max(1, min(workers, -(-len(tasks) // TASKS_PER_WORKER)))
        if processes == 1:
            return
        self._pool = ProcessPoolExecutor(processes, initializer=gc.freeze)
        self._futures = [self._pool.submit(read_subtree, task) for task in tasks]

    def result(self) -> Discovery:
        """What the tree holds (waits for the processes)."""
        if self._pool is None:
            return group_runs(read_runs(iter_files(self.root)))
        try:
            return group_runs(run for future in self._futures for run in future.result())
        finally:
            self.close()

    def close(self) -> None:
        """End the processes (tasks not yet started are dropped)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> PendingDiscovery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_discovery(root: str | os.PathLike, workers: int = 1) -> PendingDiscovery:
    """Start discovering ``root`` in ``workers`` processes; ``.result()`` gives the :class:`Discovery`."""
    return PendingDiscovery(root, workers)


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
        files.extend(map(Path, more))
    for key, record in series.items():
        if key in reasons:
            result.skipped.append(Skipped(record.series_uid, reasons[key], f"{len(record.files)} file(s)"))
        else:
            result.studies[record.study_uid].series.append(record)
    for study in result.studies.values():
        pet = next((s for s in study.series if s.modality == "PT" and s.manufacturer), None)
        study.manufacturer = pet.manufacturer if pet else study.manufacturer
    return result
