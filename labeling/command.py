"""``onconet label``: weak labels for exam pairs from radiology reports.

    onconet label --reports DIR/reports.jsonl [--pairs CACHE/pairs.csv] [--truth DIR/truth.csv]
                  [--agreement agreement.csv] --out labels.csv

Without ``--pairs`` the pairs are each patient's consecutive exams by study date. With ``--truth`` it
prints each labeling function's coverage and accuracy and the label model's accuracy and kappa against
gold, next to majority vote; ``--agreement`` writes the same table as CSV (one row per source, with the
label model's gold-free accuracy estimate for each function). Report text never reaches the log.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from labeling.functions import ABSTAIN, LABELING_FUNCTIONS
from labeling.label_model import majority_vote
from labeling.metrics import accuracy, cohen_kappa, coverage
from labeling.records import pairs_from_reports, read_pairs, read_reports, read_truth, write_csv_atomic
from labeling.report import parse_reports
from labeling.weak_labels import LABEL_COLUMNS, label_pairs
from onconet.classes import RESPONSE_CLASSES
from onconet.errors import ReportError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``onconet label``."""
    parser.add_argument("--reports", type=Path, required=True, help="reports.jsonl (one exam per line)")
    parser.add_argument("--pairs", type=Path, help="pairs.csv; default: consecutive exams per patient")
    parser.add_argument("--truth", type=Path, help="truth.csv with gold labels, to print agreement")
    parser.add_argument("--out", type=Path, required=True, help="labels.csv to write")
    parser.add_argument(
        "--agreement", type=Path, help="with --truth: write the agreement table (one row per source) as CSV"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="reports per spaCy batch")


#: Columns of the agreement table (``--agreement``); ``estimated_accuracy`` is empty for the aggregates.
AGREEMENT_COLUMNS: tuple[str, ...] = (
    "source",
    "kind",
    "coverage",
    "accuracy_voted",
    "accuracy_all",
    "kappa",
    "estimated_accuracy",
)


def agreement_rows(
    votes: np.ndarray, predicted: np.ndarray, gold: np.ndarray, estimated: np.ndarray | None = None
) -> list[dict[str, object]]:
    """Coverage / accuracy / kappa against gold of each function, majority vote and the label model.

    Args:
        votes: (n, m) class indices of the m labeling functions, -1 = abstain.
        predicted: (n,) the label model's classes, -1 = no label.
        gold: (n,) true class indices.
        estimated: (m,) the label model's own accuracy estimate per function (no gold used), if known.
    """
    sources = [(f"lf_{name}", "labeling function", votes[:, j]) for j, name in enumerate(LABELING_FUNCTIONS)]
    sources += [("majority vote", "aggregate", majority_vote(votes)), ("label model", "aggregate", predicted)]
    rows = []
    for i, (name, kind, labels) in enumerate(sources):
        rows.append(
            {
                "source": name,
                "kind": kind,
                "coverage": coverage(labels),
                "accuracy_voted": accuracy(labels, gold, covered_only=True),
                "accuracy_all": accuracy(labels, gold),
                "kappa": cohen_kappa(labels, gold),
                "estimated_accuracy": (
                    float(estimated[i]) if estimated is not None and kind == "labeling function" else None
                ),
            }
        )
    return rows


def evaluation_table(votes: np.ndarray, predicted: np.ndarray, gold: np.ndarray) -> str:
    """Coverage / accuracy / kappa of each function, majority vote and the label model, as a text table."""
    lines = [f"{'source':<22}{'coverage':>9}{'acc(voted)':>12}{'acc(all)':>10}{'kappa':>8}"]
    for row in agreement_rows(votes, predicted, gold):
        lines.append(
            f"{row['source']:<22}{row['coverage']:>9.3f}{row['accuracy_voted']:>12.3f}"
            f"{row['accuracy_all']:>10.3f}{row['kappa']:>8.3f}"
        )
    return "\n".join(lines)


def _agreement_cell(value: object) -> object:
    # Full precision in the CSV (the printed table rounds to 3 places); empty for "not applicable".
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else value


def run(args: argparse.Namespace) -> int:
    """Parse the reports, vote, aggregate, write labels.csv; print agreement with gold when given."""
    if args.agreement and not args.truth:
        raise ReportError(f"{args.agreement}: the agreement table needs --truth (gold labels)")
    records = read_reports(args.reports)
    pairs = read_pairs(args.pairs) if args.pairs else pairs_from_reports(records)
    texts = [record.text for record in records]
    parsed = list(
        tqdm(
            parse_reports(texts, batch_size=args.batch_size),
            total=len(texts),
            desc="parse",
            unit="report",
            disable=None,
        )
    )
    reports = {record.study_uid: report for record, report in zip(records, parsed, strict=True)}
    missing = sum(pair.followup_study_uid not in reports for pair in pairs)
    if missing:
        log.warning("%d of %d pairs have no follow-up report; they get no label", missing, len(pairs))
    labels, votes, model = label_pairs(pairs, reports)
    write_csv_atomic(args.out, LABEL_COLUMNS, (label.as_row() for label in labels))
    labelled = sum(label.label is not None for label in labels)
    log.info("wrote %d pairs (%d labelled) to %s", len(labels), labelled, args.out)

    if args.truth:
        truth = read_truth(args.truth)
        keys = [(p.baseline_study_uid, p.followup_study_uid) for p in pairs]
        known = [i for i, key in enumerate(keys) if key in truth]
        if not known:
            raise ReportError(
                f"{args.truth}: no pair of the labels matches a (baseline, follow-up) row of truth"
            )
        unknown_labels = {truth[keys[i]] for i in known} - set(RESPONSE_CLASSES)
        if unknown_labels:
            raise ReportError(f"{args.truth}: column 'label' has values outside {RESPONSE_CLASSES}")
        gold = np.array([RESPONSE_CLASSES.index(truth[keys[i]]) for i in known])
        predicted = np.array(
            [RESPONSE_CLASSES.index(labels[i].label) if labels[i].label else ABSTAIN for i in known]
        )
        print(f"agreement with gold on {len(known)} pairs ({args.truth.name}):")
        print(evaluation_table(votes[known], predicted, gold))
        estimated = ", ".join(
            f"{n}={a:.2f}" for n, a in zip(LABELING_FUNCTIONS, model.accuracies, strict=True)
        )
        print(f"label model's estimated accuracies (no gold used): {estimated}")
        if args.agreement:
            rows = agreement_rows(votes[known], predicted, gold, model.accuracies)
            write_csv_atomic(
                args.agreement,
                AGREEMENT_COLUMNS,
                ({key: _agreement_cell(value) for key, value in row.items()} for row in rows),
            )
            log.info("wrote the agreement table of %d pairs to %s", len(known), args.agreement)
    return 0
