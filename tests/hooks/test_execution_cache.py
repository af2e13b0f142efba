"""The execution cache (hooks/execution_cache.py): executes once, never shows a stale output.

Each test builds a miniature bilingual site that uses the real hooks. Its code blocks append a
line to a log outside the project every time they really run, so the tests count executions.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.support.pages import ROOT

pytestmark = pytest.mark.slow

spec = importlib.util.spec_from_file_location("execution_cache", ROOT / "hooks/execution_cache.py")
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)

CONFIG = """
site_name: cache test
strict: true
watch: [snippets]
theme: {name: material, language: ja}
plugins:
  - i18n:
      docs_structure: suffix
      languages:
        - {locale: ja, name: 日本語, default: true, build: true}
        - {locale: en, name: English, build: true}
  - markdown-exec
  - mkdocs-jupyter: {include: ["*.ipynb"], execute: true, allow_errors: false}
hooks: [hooks/execution_cache.py, hooks/notebook_i18n.py]
markdown_extensions:
  - pymdownx.superfences
  - pymdownx.snippets: {base_path: ["."], check_paths: true}
"""

PAGE = """# {title}

```python exec="on" session="demo"
--8<-- "snippets/demo.py"
```

```python exec="on" session="demo"
print("second block sees", GREETING)
```
"""

OTHER_PAGE = """# {title}

```python exec="on" session="other"
import sys
sys.path.insert(0, "snippets")
import helper
with open({log!r}, "a") as log:
    log.write("other\\n")
print("helper says", helper.VALUE, "and the table says", open("snippets/table.json").read())
```
"""

DEMO = """with open({log!r}, "a") as log:
    log.write("demo\\n")
GREETING = "hello"
print("demo prints", GREETING)
"""


def notebook(log, title):
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": f"# {title}"},
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": f"open({str(log)!r}, 'a').write('notebook\\n')\nprint('notebook ran')",
        },
    ]
    metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    return json.dumps({"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    log = tmp_path / "executions.log"
    (root / "hooks").mkdir(parents=True)
    for name in ("execution_cache.py", "notebook_i18n.py"):
        shutil.copy(ROOT / "hooks" / name, root / "hooks" / name)
    (root / "snippets").mkdir()
    (root / "snippets/demo.py").write_text(DEMO.format(log=str(log)), encoding="utf-8")
    (root / "snippets/helper.py").write_text("VALUE = 1\n", encoding="utf-8")
    (root / "snippets/table.json").write_text('{"rows": 1}', encoding="utf-8")
    docs = root / "docs"
    docs.mkdir()
    for suffix, title in ((".md", "ページ"), (".en.md", "Page")):
        (docs / f"index{suffix}").write_text(PAGE.format(title=title), encoding="utf-8")
        other = OTHER_PAGE.format(title=title, log=str(log))
        (docs / f"other{suffix}").write_text(other, encoding="utf-8")
    for suffix, title in ((".ipynb", "ノート"), (".en.ipynb", "Notebook")):
        (docs / f"notebook{suffix}").write_text(notebook(log, title), encoding="utf-8")
    (root / "mkdocs.yml").write_text(CONFIG, encoding="utf-8")
    return root, log


def build(root, log, cache=None, extra_path=None):
    """Build the miniature site; the pages' HTML and which blocks really ran."""
    log.write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("EXECUTION_CACHE", "PYTHONPATH")}
    if cache:
        env["EXECUTION_CACHE"] = cache
    if extra_path:
        env["PYTHONPATH"] = str(extra_path)
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(root / "site")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    pages = {
        name: (root / "site" / path).read_text(encoding="utf-8")
        for name, path in {
            "index": "index.html",
            "index.en": "en/index.html",
            "other": "other/index.html",
            "other.en": "en/other/index.html",
            "notebook": "notebook/index.html",
            "notebook.en": "en/notebook/index.html",
        }.items()
    }
    return pages, sorted(log.read_text(encoding="utf-8").split())


def test_each_block_runs_once_per_build_and_both_languages_show_its_output(project):
    root, log = project
    pages, executed = build(root, log)
    assert executed == ["demo", "notebook", "other"]
    for name in ("index", "index.en"):
        assert "demo prints hello" in pages[name]
        assert "second block sees hello" in pages[name]
    for name in ("other", "other.en"):
        assert "helper says 1" in pages[name]
    for name in ("notebook", "notebook.en"):
        assert "notebook ran" in pages[name]
    assert not any("execution-cache" in html for html in pages.values())


def test_mkdocs_build_starts_cold_every_time(project):
    root, log = project
    build(root, log)
    _, executed = build(root, log)
    assert executed == ["demo", "notebook", "other"]


def test_off_executes_every_block_of_both_languages(project):
    root, log = project
    _, executed = build(root, log, cache="off")
    assert executed == ["demo", "demo", "notebook", "notebook", "other", "other"]


def test_an_unchanged_site_renders_from_the_cache_and_says_so(project):
    root, log = project
    build(root, log, cache="disk")
    pages, executed = build(root, log, cache="disk")
    assert executed == []
    assert "demo prints hello" in pages["index.en"]
    assert "notebook ran" in pages["notebook"]
    assert "以前の実行" in pages["index"] and "earlier run" in pages["index.en"]


def test_a_changed_snippet_line_reruns_and_changes_every_page_that_includes_it(project):
    root, log = project
    build(root, log, cache="disk")
    demo = root / "snippets/demo.py"
    demo.write_text(demo.read_text().replace('"hello"', '"changed"'), encoding="utf-8")
    pages, executed = build(root, log, cache="disk")
    assert executed == ["demo"]  # the page that does not include it is not executed again
    for name in ("index", "index.en"):
        assert "demo prints changed" in pages[name]
        assert "second block sees changed" in pages[name]
        assert "hello" not in pages[name]


def test_a_changed_imported_module_or_data_file_reruns_the_page_that_read_it(project):
    root, log = project
    build(root, log, cache="disk")
    (root / "snippets/helper.py").write_text("VALUE = 2\n", encoding="utf-8")
    pages, executed = build(root, log, cache="disk")
    assert executed == ["other"]
    assert "helper says 2" in pages["other"] and "helper says 2" in pages["other.en"]
    (root / "snippets/table.json").write_text('{"rows": 3}', encoding="utf-8")
    pages, executed = build(root, log, cache="disk")
    assert executed == ["other"]
    assert "rows&quot;: 3" in pages["other.en"] or '"rows": 3' in pages["other.en"]


def test_a_cached_output_never_crosses_a_change_of_a_package_version(project, tmp_path):
    root, log = project
    packages = tmp_path / "packages"

    def install_fake_torch(version):
        shutil.rmtree(packages, ignore_errors=True)
        info = packages / f"torch-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Name: torch\nVersion: {version}\n", encoding="utf-8")

    install_fake_torch("0.0.1")
    build(root, log, cache="disk", extra_path=packages)
    _, executed = build(root, log, cache="disk", extra_path=packages)
    assert executed == []
    install_fake_torch("0.0.2")
    _, executed = build(root, log, cache="disk", extra_path=packages)
    assert executed == ["demo", "notebook", "other"]


def test_the_environment_names_python_and_the_installed_torch():
    import torch

    environment = json.loads(hook.environment())
    assert environment[0] == sys.version
    assert f"torch=={torch.__version__.split('+')[0]}" in " ".join(environment[2]).replace(
        "+cpu", ""
    )


def test_imported_snippets_follows_imports_between_snippet_files():
    found = hook.imported_snippets("import train_digits\n%matplotlib inline\n")
    assert found == {ROOT / "snippets/training/train_digits.py"}
    code = textwrap.dedent("""
        from distributed.ddp_check import main
    """)
    assert hook.imported_snippets(code) >= {
        ROOT / "snippets/distributed/ddp_check.py",
        ROOT / "snippets/distributed/global_loss.py",
    }
