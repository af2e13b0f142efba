"""The English pages, the README and the snippets have no misspellings (codespell), and use
American spelling (behavior, neighbor, color, normalize, labeled, favor, gray, modeling).

codespell's configuration is [tool.codespell] in pyproject.toml: its built-in en-GB_to_en-US
list rejects British forms; tests/prose/american_spelling.txt adds a few that list lacks.
Run by hand:
    .venv/bin/codespell -D - -D tests/prose/american_spelling.txt docs/index.en.md snippets
"""

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from tests.support.pages import ROOT, SNIPPETS, english_pages, relative

CODESPELL = Path(sys.executable).with_name("codespell")
FILES = [*english_pages(), ROOT / "README.md", *sorted(SNIPPETS.rglob("*.py"))]
EXTRA = ROOT / "tests" / "prose" / "american_spelling.txt"
DICTIONARIES = ["-D", "-", "-D", relative(EXTRA)]  # "-" = codespell's own lists
FINDING = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): (?P<message>.+)$")


def run_codespell(*paths: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CODESPELL), *DICTIONARIES, *paths],
        cwd=ROOT,  # codespell reads [tool.codespell] from ./pyproject.toml
        capture_output=True,
        text=True,
        timeout=300,
    )


@cache
def codespell_findings() -> dict[Path, list[str]]:
    """Run codespell once over every file; map each file to its findings."""
    result = run_codespell(*(relative(path) for path in FILES))
    findings = {path: [] for path in FILES}
    for line in result.stdout.splitlines():
        match = FINDING.match(line)
        if match:
            findings.setdefault((ROOT / match["path"]).resolve(), []).append(
                f"{match['path']}:{match['line']}: {match['message']}"
            )
    if result.returncode not in (0, 65) or (result.returncode and not any(findings.values())):
        pytest.fail(f"codespell did not run:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return findings


@pytest.mark.parametrize("path", FILES, ids=relative)
def test_no_misspelling(path):
    findings = codespell_findings()[path.resolve()]
    if findings:
        pytest.fail("codespell:\n" + "\n".join(findings), pytrace=False)


BRITISH = ["behaviour", "neighbourhood", "neighbour", "grey", "colour", "normalise", "labelled",
           "favour", "modelling", "centre", "optimiser", "analyse"]  # fmt: skip


def test_the_check_rejects_british_spelling(tmp_path):
    page = tmp_path / "page.en.md"
    page.write_text(" ".join(BRITISH) + "\nbehavior neighbor gray normalize labeled\n", "utf-8")
    result = run_codespell(str(page))
    flagged = {line.split(": ")[1].split(" ==>")[0] for line in result.stdout.splitlines()}
    assert flagged == set(BRITISH), result.stdout
