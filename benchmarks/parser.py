"""Report parser speed and accuracy on a synthetic cohort, side by side with a plain-regex baseline.

    python benchmarks/parser.py --cohort DIR [--min-reports 2000] [--out benchmarks/results/parser.md]
    python benchmarks/parser.py --patients 24            # generates a cohort in a temporary folder

Pinned to one CPU core. Each row parses the cohort's reports (repeated up to ``--min-reports``) and
reports reports per second of CPU time (and wall time); the accuracy columns compare one pass with
lesions.csv / truth.csv. Rows:

* regex baseline: one regular expression reads the first number after each SUVmax cue; every value is
  a current lesion value; the pair's class is the PERCIST class of the two reports' hottest values.
* spaCy tokenizer only: the report tokenizer alone, the floor under any spaCy pipeline.
* parser: ``labeling.parse_reports`` (tokenizer, segmentation, SUV mentions, statements).
* parser + label: parser, labeling functions for every pair, Dawid–Skene label model fit and predict.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from labeling.evaluation import score_against_lesions, score_against_mentions
from labeling.functions import LABELING_FUNCTIONS
from labeling.label_model import DawidSkeneModel, majority_vote
from labeling.records import pairs_from_reports, read_reports, read_truth
from labeling.report import ParsedReport, parse_reports
from labeling.tokenizer import make_nlp
from labeling.weak_labels import label_pairs
from onconet.classes import RESPONSE_CLASSES, response_category, response_class

REGEX_BASELINE = re.compile(
    r"(?i)\b(?:SUV\s*[-_(]?\s*(?:max(?:imum)?|peak)\)?|(?:max(?:imum)?|peak)\s+SUV)"
    r"\s*(?:[:=]|of|is|was|measuring)?\s*(?:up to\s*)?(\d+(?:[.,]\d+)?)"
)


def regex_values(text: str) -> list[float]:
    """The baseline's reading of a report: the first number after each SUV cue."""
    return [float(m.group(1).replace(",", ".")) for m in REGEX_BASELINE.finditer(text)]


def cpu_and_wall(run, repeats: int, rounds: int = 3) -> tuple[float, float]:
    """Best (CPU seconds, wall seconds) over ``rounds`` of ``repeats`` calls of ``run``.

    As timeit does: the minimum is the round least disturbed by other processes on a shared machine.
    """
    best_cpu = best_wall = float("inf")
    for _ in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(repeats):
            run()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_cpu, best_wall


def machine_line() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        model = found.group(1).strip() if found else model
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{model}, {os.cpu_count()} logical CPUs (benchmark pinned to one), "
        f"load average {load:.1f} at start; "
        f"Python {platform.python_version()}, spaCy {__import__('spacy').__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cohort", type=Path, help="an existing synthetic cohort folder (onconet synth --out)"
    )
    parser.add_argument("--patients", type=int, default=24, help="patients to generate when no --cohort")
    parser.add_argument("--seed", type=int, default=3, help="seed of the generated cohort")
    parser.add_argument(
        "--min-reports", type=int, default=2000, help="reports parsed per timed row (repeats)"
    )
    parser.add_argument("--out", type=Path, help="write the markdown table here")
    args = parser.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    machine = machine_line()
    tmp = None
    cohort = args.cohort
    if cohort is None:
        from onconet.data.synthetic import generate_cohort

        tmp = tempfile.TemporaryDirectory(prefix="parser_bench_")
        cohort = Path(tmp.name) / "cohort"
        generate_cohort(cohort, patients=args.patients, seed=args.seed, sites=("internal", "external"))

    records = read_reports(cohort / "reports.jsonl")
    texts = [r.text for r in records]
    pairs = pairs_from_reports(records)
    truth = read_truth(cohort / "truth.csv")
    gold = np.array(
        [RESPONSE_CLASSES.index(truth[(p.baseline_study_uid, p.followup_study_uid)]) for p in pairs]
    )
    repeats = max(1, -(-args.min_reports // len(texts)))
    n_reports = repeats * len(texts)

    # warm both paths (spaCy's tokenizer cache, lazy imports) before timing
    warm = list(parse_reports(texts))
    reports: dict[str, ParsedReport] = {r.study_uid: p for r, p in zip(records, warm, strict=True)}
    nlp = make_nlp()

    def regex_only():
        return [regex_values(t) for t in texts]

    def regex_labels():
        hottest = {r.study_uid: max(v) if (v := regex_values(r.text)) else None for r in records}
        out = []
        for p in pairs:
            b, f = hottest[p.baseline_study_uid], hottest[p.followup_study_uid]
            out.append(
                -1
                if b is None or f is None
                else RESPONSE_CLASSES.index(response_class(response_category(b, f)))
            )
        return np.array(out)

    def tokenizer_only():
        return [nlp.make_doc(t) for t in texts]

    def parse_only():
        return list(parse_reports(texts))

    def parse_and_label():
        parsed = dict(zip([r.study_uid for r in records], parse_reports(texts), strict=True))
        return label_pairs(pairs, parsed)

    rows = []
    for name, run in (
        ("regex baseline (values only)", regex_only),
        ("regex baseline + PERCIST pair class", regex_labels),
        ("spaCy report tokenizer only", tokenizer_only),
        ("parser (labeling.parse_reports)", parse_only),
        ("parser + labeling functions + label model", parse_and_label),
    ):
        cpu, wall = cpu_and_wall(run, repeats)
        rows.append((name, n_reports / cpu, n_reports / wall))
        print(
            f"{name:<45} {n_reports / cpu:>9.0f} reports/s CPU  {n_reports / wall:>9.0f} reports/s wall",
            file=sys.stderr,
        )

    # accuracy of one pass
    regex_reports = defaultdict(list)
    for r in records:
        regex_reports[r.study_uid] = regex_values(r.text)
    regex_parsed = {uid: _RegexReport(values) for uid, values in regex_reports.items()}
    regex_mentions = score_against_lesions(regex_parsed, cohort / "lesions.csv")
    parser_mentions = score_against_lesions(reports, cohort / "lesions.csv")
    full = (
        score_against_mentions(reports, cohort / "mentions.jsonl")
        if (cohort / "mentions.jsonl").is_file()
        else None
    )
    labels, votes, _ = label_pairs(pairs, reports)
    predicted = np.array([RESPONSE_CLASSES.index(x.label) if x.label else -1 for x in labels])
    regex_pred = regex_labels()
    mv = majority_vote(votes)
    # The same label model without the impression's stated class: what the values and wording alone give.
    keep = [j for j, name in enumerate(LABELING_FUNCTIONS) if name != "impression"]
    without = DawidSkeneModel(n_classes=len(RESPONSE_CLASSES))
    without.fit(votes[:, keep])
    acc = {
        "regex": float((regex_pred == gold).mean()),
        "mv": float((mv == gold).mean()),
        "model": float((predicted == gold).mean()),
        "model_wo": float((without.predict(votes[:, keep]) == gold).mean()),
        "mv_wo": float((majority_vote(votes[:, keep]) == gold).mean()),
    }

    command = "python benchmarks/parser.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# Report parser benchmark",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine}  ",
        f"Cohort: `{cohort.name}`, {len(texts)} reports, {len(pairs)} pairs; each timed row parses "
        f"{n_reports} reports ({repeats} passes), one process pinned to one core, best of 3 rounds.",
        "",
        "| pipeline | reports/s (CPU time, one core) | reports/s (wall) |",
        "|---|---:|---:|",
        *(f"| {name} | {cpu:,.0f} | {wall:,.0f} |" for name, cpu, wall in rows),
        "",
        "| accuracy (one pass) | regex baseline | parser |",
        "|---|---:|---:|",
        f"| current lesion values vs lesions.csv: precision | {regex_mentions.precision:.3f} | "
        f"{parser_mentions.precision:.3f} |",
        f"| current lesion values vs lesions.csv: recall | {regex_mentions.recall:.3f} | "
        f"{parser_mentions.recall:.3f} |",
    ]
    if full is not None:
        lines.append(
            f"| every mention (span, value, role, timepoint) vs mentions.jsonl: precision / recall | – | "
            f"{full.precision:.3f} / {full.recall:.3f} |"
        )
    lines += [
        f"| pair class accuracy vs truth.csv | {acc['regex']:.3f} | label model {acc['model']:.3f} "
        f"(majority vote {acc['mv']:.3f}) |",
        f"| pair class accuracy vs truth.csv, without lf_impression | – | label model {acc['model_wo']:.3f} "
        f"(majority vote {acc['mv_wo']:.3f}) |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    if tmp is not None:
        tmp.cleanup()
    return 0


class _RegexReport:
    """The baseline's reading in the shape the scorer wants: every value a current lesion value."""

    def __init__(self, values: list[float]) -> None:
        self.values = values

    def lesion_values(self, timepoint: str) -> list[float]:
        return self.values if timepoint == "current" else []


if __name__ == "__main__":
    raise SystemExit(main())
