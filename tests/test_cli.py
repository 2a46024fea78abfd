"""The console script's dispatch."""

import subprocess
import sys

import pytest

from onconet import __version__
from onconet.cli import COMMANDS, LIGHTNING_COMMANDS, main


def test_help_lists_every_command():
    result = subprocess.run(
        [sys.executable, "-m", "onconet", "--help"], capture_output=True, text=True, check=True
    )
    for name in [*COMMANDS, *LIGHTNING_COMMANDS]:
        assert name in result.stdout


def test_version():
    result = subprocess.run([sys.executable, "-m", "onconet", "--version"], capture_output=True, text=True)
    assert result.stdout.strip() == f"onconet {__version__}"


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_subcommand_help_is_its_own(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", "--help"])
    assert stop.value.code == 0
    assert "--predictions" in capsys.readouterr().out
