"""Snippets, tests and hooks follow one ruff configuration (pyproject.toml)."""

import subprocess
import sys

import pytest

from tests.support.pages import ROOT

CODE = ["snippets", "tests", "hooks"]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=" ".join)
def test_ruff(command):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *CODE], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
