"""The English pages, the README and the snippets have no misspellings (codespell).

codespell's configuration is [tool.codespell] in pyproject.toml. Run by hand:
    .venv/bin/codespell docs/index.en.md snippets
"""

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from site_pages import ROOT, SNIPPETS, english_pages, relative

CODESPELL = Path(sys.executable).with_name("codespell")
FILES = [*english_pages(), ROOT / "README.md", *sorted(SNIPPETS.rglob("*.py"))]
FINDING = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): (?P<message>.+)$")


@cache
def codespell_findings() -> dict[Path, list[str]]:
    """Run codespell once over every file; map each file to its findings."""
    result = subprocess.run(
        [str(CODESPELL), *(relative(path) for path in FILES)],
        cwd=ROOT,  # codespell reads [tool.codespell] from ./pyproject.toml
        capture_output=True,
        text=True,
        timeout=300,
    )
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
