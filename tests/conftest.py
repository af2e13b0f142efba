import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.pages import ROOT


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The whole site, both languages, built once per test run with every example executed."""
    site = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed:\n{result.stderr[-6000:]}", pytrace=False)
    return site
