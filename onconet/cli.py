"""The ``onconet`` console script.

Each subcommand lives in its own module, imported only when it runs, so ``onconet synth`` does not pay
for importing torch. A module registered here exposes ``add_arguments(parser)`` and ``run(args) -> int``.
The Lightning subcommands (fit, validate, test, predict) hand the rest of the command line to
LightningCLI unchanged.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from onconet import __version__
from onconet.errors import OncoNetError

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("onconet.data.synthetic.command", "write a synthetic FDG PET/CT cohort as DICOM + reports"),
    "ingest": ("onconet.data.ingest", "read DICOM folders, convert PET to SUV, cache NIfTI, form pairs"),
    "label": ("labeling.command", "weak labels for exam pairs from radiology reports"),
    "infer": ("onconet.inference.command", "batch inference over DICOM folders with a checkpoint"),
    "evaluate": ("onconet.evaluation.command", "metrics and plots of predictions against truth"),
    "heuristic": ("onconet.evaluation.heuristic", "no-learning baseline: ratio of the exams' hottest voxels"),
}

#: subcommands handled by LightningCLI (onconet.models.lightning_cli)
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per registered command (arguments added lazily)."""
    parser = argparse.ArgumentParser(prog="onconet", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"onconet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    for name in LIGHTNING_COMMANDS:
        sub.add_parser(name, help=f"LightningCLI {name} (--config configs/<name>.yaml)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    top, rest = parser.parse_known_args(argv[:1] if argv and not argv[0].startswith("-") else argv)
    logging.basicConfig(
        level=logging.DEBUG if top.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if top.command is None:
        parser.print_help()
        return 2
    rest = argv[1:]
    try:
        if top.command in LIGHTNING_COMMANDS:
            from onconet.models.lightning_cli import run_lightning_cli

            return run_lightning_cli([top.command, *rest])
        module = importlib.import_module(COMMANDS[top.command][0])
        sub = argparse.ArgumentParser(prog=f"onconet {top.command}", description=COMMANDS[top.command][1])
        module.add_arguments(sub)
        return int(module.run(sub.parse_args(rest)) or 0)
    except OncoNetError as err:
        print(f"onconet {top.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
