"""``onconet ingest``: DICOM folders -> SUV + CT NIfTI cache, manifest.csv and pairs.csv.

    onconet ingest --dicom DIR --cache CACHE [--suv-kind bw] [--pairs consecutive|first-last] [--workers N]

Discovery reads every header once; each study's PET becomes SUV (QIBA rules) and its CT is resampled onto
the PET grid; both are written to ``CACHE/nifti/`` keyed by the PET series UID. A bad study is logged with
its reason and the batch goes on; a re-run skips studies whose sources and settings are unchanged. Logs
name folders and reasons, never patient names or IDs.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from onconet.data.cache import MANIFEST_COLUMNS, write_csv
from onconet.data.dicom import Discovery, Skipped, discover
from onconet.data.pairs import PAIR_MODES, form_pairs, write_pairs
from onconet.data.study import StudyOutcome, process_study
from onconet.data.suv import SUV_KINDS
from onconet.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class IngestSummary:
    """What one ingest run did."""

    outcomes: list[StudyOutcome] = field(default_factory=list)
    pairs: list[dict] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> list[StudyOutcome]:
        """Studies converted or found cached."""
        return [o for o in self.outcomes if o.ok]

    @property
    def failures(self) -> Counter:
        """Failed studies counted by error class."""
        return Counter(o.reason for o in self.outcomes if not o.ok)

    def lines(self) -> list[str]:
        """The human-readable summary."""
        cached = sum(o.from_cache for o in self.outcomes)
        lines = [
            f"studies read: {len(self.outcomes)} ({len(self.ok)} ok, {cached} of them unchanged in the "
            f"cache; {len(self.outcomes) - len(self.ok)} failed) in {self.seconds:.1f} s",
            f"pairs formed: {len(self.pairs)}",
        ]
        if self.failures:
            lines.append(
                "failures by reason: " + "; ".join(f"{r}: {n}" for r, n in self.failures.most_common())
            )
        if self.skipped:
            reasons = Counter(s.reason for s in self.skipped)
            lines.append("skipped: " + "; ".join(f"{r}: {n}" for r, n in reasons.most_common()))
        return lines


def ingest(
    dicom_dir: str | os.PathLike,
    cache_dir: str | os.PathLike,
    *,
    suv_kind: str = "bw",
    pairs_mode: str = "consecutive",
    workers: int = 1,
    progress: bool = True,
) -> IngestSummary:
    """Ingest every PET/CT study under ``dicom_dir`` into ``cache_dir`` (see the module docstring)."""
    if suv_kind not in SUV_KINDS:
        raise ConfigError(f"--suv-kind {suv_kind!r}: use one of {', '.join(SUV_KINDS)}")
    if pairs_mode not in PAIR_MODES:
        raise ConfigError(f"--pairs {pairs_mode!r}: use one of {', '.join(PAIR_MODES)}")
    if workers < 1:
        raise ConfigError(f"--workers {workers}: use 1 or more")
    started = time.perf_counter()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    found: Discovery = discover(dicom_dir, workers=workers)
    for item in found.skipped:
        log.info("skipped %s: %s", item.path, item.reason)
    studies = sorted(found.studies.values(), key=lambda s: (s.patient_id, s.study_date, s.study_uid))
    summary = IngestSummary(skipped=found.skipped)
    if workers == 1 or len(studies) < 2:
        with tqdm(total=len(studies), desc="ingest", unit="study", disable=not progress) as bar:
            for study in studies:
                summary.outcomes.append(process_study(study, cache_dir, suv_kind))
                bar.update()
    else:
        # The workers are forked before the progress bar starts its monitor thread.
        with ProcessPoolExecutor(workers) as pool:
            futures = [pool.submit(process_study, study, cache_dir, suv_kind) for study in studies]
            with tqdm(total=len(studies), desc="ingest", unit="study", disable=not progress) as bar:
                for future in as_completed(futures):
                    summary.outcomes.append(future.result())
                    bar.update()
    rows = sorted(
        (o.row for o in summary.outcomes), key=lambda r: (r["patient_id"], r["study_date"], r["study_uid"])
    )
    write_csv(cache_dir / "manifest.csv", rows, MANIFEST_COLUMNS)
    summary.pairs = form_pairs(rows, mode=pairs_mode)
    write_pairs(cache_dir / "pairs.csv", summary.pairs)
    summary.seconds = time.perf_counter() - started
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``onconet ingest`` options."""
    parser.add_argument(
        "--dicom", required=True, type=Path, help="folder tree of DICOM files (a PACS export)"
    )
    parser.add_argument(
        "--cache", required=True, type=Path, help="cache folder (nifti/, manifest.csv, pairs.csv)"
    )
    parser.add_argument("--suv-kind", default="bw", choices=SUV_KINDS, help="SUV normalisation (default: bw)")
    parser.add_argument(
        "--pairs", default="consecutive", choices=PAIR_MODES, help="how to pair a patient's studies"
    )
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the ingest; exit code 0 when at least one study came through, 1 otherwise."""
    summary = ingest(
        args.dicom,
        args.cache,
        suv_kind=args.suv_kind,
        pairs_mode=args.pairs,
        workers=args.workers,
        progress=not args.no_progress,
    )
    for line in summary.lines():
        print(line)
    print(f"manifest: {args.cache / 'manifest.csv'}; pairs: {args.cache / 'pairs.csv'}")
    return 0 if summary.ok else 1
