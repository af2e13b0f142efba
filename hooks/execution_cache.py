"""Execute each page's code once and render its outputs into both languages.

The code of a page is identical in both languages (tests/test_translation_parity.py), so the
outputs of the Japanese page can be reused for the English one. Each markdown-exec block's output
is keyed by everything that can change it:

- the environment: Python, the platform and the version of every installed distribution;
- the page's session and the exact sequence of code that ran before the block in that session
  on the page (each page starts every session afresh), the working directory and COLUMNS;
- every project file the code read while it ran (included snippets are part of the code; imported
  snippet modules, committed result files and scripts started as subprocesses are recorded as it
  runs), checked by content hash before an output is reused.

Notebooks are keyed the same way by their code cells and the project files they import.

``mkdocs build`` reuses outputs only within the build (each language's twin). ``mkdocs serve``
also keeps them in ``.cache/execution/`` across rebuilds, so a prose edit renders without
executing anything, and a snippet edit re-executes only the pages whose code read that file; a
page that shows outputs from an earlier run says so. ``EXECUTION_CACHE=off`` executes every
block of both languages; ``EXECUTION_CACHE=disk`` makes ``mkdocs build`` use the disk cache too.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import sys
import threading
import time
import types
from importlib import metadata
from pathlib import Path

from markdown_exec._internal.formatters import python as markdown_exec_python
from mkdocs.plugins import event_priority, get_plugin_logger
from nbconvert.preprocessors import ExecutePreprocessor

ROOT = Path(__file__).resolve().parent.parent
SNIPPETS = ROOT / "snippets"
CACHE_DIR = ROOT / ".cache" / "execution"
NOT_PROJECT_FILES = [ROOT / name for name in (".venv", ".cache", ".git", "site", "hooks")]

log = get_plugin_logger("execution_cache")


def _process_state() -> types.ModuleType:
    """State that outlives a reload of this hook (mkdocs serve loads hooks again on rebuilds)."""
    name = "_site_execution_cache_state"
    if name not in sys.modules:
        state = types.ModuleType(name)
        state.mode = None  # "build" or "serve", from on_startup of the first configuration
        state.memory = {}  # key -> entry, for the life of the process
        state.recording = None  # the set of files read by the code running now, or None
        state.pending = {}  # key -> threading.Event, for notebooks executing in the background
        state.original_run_python = markdown_exec_python._run_python
        state.original_preprocess = ExecutePreprocessor.preprocess
        sys.addaudithook(_make_audit_hook(state))
        sys.modules[name] = state
    return sys.modules[name]


def _make_audit_hook(state):
    def audit(event, args):
        if state.recording is None:
            return
        if event == "open" and isinstance(args[0], str | bytes | os.PathLike):
            path = _project_file(args[0])
            if path is not None:
                state.recording.add(path)
        elif event == "subprocess.Popen":
            state.recording.update(_files_in_command(args[1]))

    return audit


def _project_file(name) -> Path | None:
    path = Path(os.fsdecode(name))
    path = (path if path.is_absolute() else Path.cwd() / path).resolve()
    if path.parent.name == "__pycache__" and path.suffix == ".pyc":
        path = path.parent.parent / f"{path.name.split('.')[0]}.py"
    if not path.is_relative_to(ROOT) or any(path.is_relative_to(p) for p in NOT_PROJECT_FILES):
        return None
    return path if path.is_file() else None


def _files_in_command(arguments) -> set[Path]:
    """The project scripts a subprocess runs, with the snippet modules they import."""
    found = set()
    for argument in arguments if isinstance(arguments, list | tuple) else [arguments]:
        argument = os.fsdecode(argument) if isinstance(argument, bytes | os.PathLike) else argument
        if not isinstance(argument, str):
            continue
        path = _project_file(argument) if len(argument) < 4096 else None
        if path is not None:
            found |= {path} | imported_snippets(path.read_text(encoding="utf-8", errors="replace"))
        elif "import" in argument:
            found |= imported_snippets(argument)
    return found


def imported_snippets(code: str, seen: set[Path] | None = None) -> set[Path]:
    """The files under snippets/ that ``code`` imports, directly or through each other."""
    seen = set() if seen is None else seen
    names = set()
    tree = _parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    for name in names:
        relative = Path(*name.split("."))
        for path in (*SNIPPETS.rglob(f"{relative}.py"), *SNIPPETS.rglob(f"{relative}/__init__.py")):
            if path not in seen:
                seen.add(path)
                imported_snippets(path.read_text(encoding="utf-8"), seen)
    return seen


def _parse(code: str) -> ast.Module:
    """The syntax tree of ``code`` without IPython's magics and shell lines; empty if invalid."""
    lines = [line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return ast.Module(body=[], type_ignores=[])


def environment() -> str:
    """Python, the platform and every installed distribution's version."""
    packages = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    return json.dumps([sys.version, platform.platform(), packages])


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class Cache:
    """Outputs keyed by code and environment, valid while the files they read are unchanged."""

    def __init__(self, state, use_disk: bool):
        self.state, self.use_disk = state, use_disk
        self.environment = environment()
        self.build_started = time.time()
        self.restored_pages: dict[str, float] = {}  # page -> when its oldest reused output ran

    def key(self, *parts: str) -> str:
        return _digest(self.environment, *parts)

    def get(self, key: str, page: str) -> dict | None:
        entry = self.state.memory.get(key)
        if entry is None and self.use_disk:
            try:
                entry = json.loads((CACHE_DIR / f"{key}.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                entry = None
        if entry is None or any(
            _file_hash(ROOT / name) != digest for name, digest in entry["files"].items()
        ):
            return None
        self.state.memory[key] = entry
        if entry["created"] < self.build_started:
            self.restored_pages[page] = min(entry["created"], self.restored_pages.get(page, 1e18))
        return entry

    def put(self, key: str, value, files: set[Path]) -> dict:
        entry = {
            "value": value,
            "files": {str(p.relative_to(ROOT)): _file_hash(p) for p in sorted(files)},
            "created": time.time(),
        }
        self.state.memory[key] = entry
        if self.use_disk:
            CACHE_DIR.mkdir(parents=True, exist_ok=True)
            temporary = CACHE_DIR / f"{key}.json.tmp{os.getpid()}"
            temporary.write_text(json.dumps(entry), encoding="utf-8")
            os.replace(temporary, CACHE_DIR / f"{key}.json")
        return entry


class PageSessions:
    """The markdown-exec sessions of the page being rendered: code run so far, files it read."""

    def __init__(self, page: str):
        self.page = page
        self.code: dict[str | None, list[str]] = {}
        self.executed: dict[str | None, int] = {}  # how many blocks have really run in the globals
        self.files: dict[str | None, set[Path]] = {}
        self.seconds = 0.0  # spent executing code for this page
        for snippet_module in [
            name
            for name, module in list(sys.modules.items())
            if Path(getattr(module, "__file__", None) or "/").resolve().is_relative_to(SNIPPETS)
        ]:
            del sys.modules[snippet_module]  # imported again, so that the import is recorded
        markdown_exec_python._sessions_globals.clear()
        markdown_exec_python._sessions_counter.clear()


_state = _process_state()
_cache: Cache | None = None
_page: PageSessions | None = None


def _run(run, code, *args, files: set[Path], **kwargs):
    _state.recording, started = files, time.perf_counter()
    try:
        return run(code, *args, **kwargs)
    finally:
        _state.recording = None
        if _page is not None:
            _page.seconds += time.perf_counter() - started


def cached_run_python(code: str, returncode=None, session=None, id=None, **extra):
    run = _state.original_run_python
    if _cache is None or _page is None:
        return run(code, returncode, session, id, **extra)
    if session is None:  # a block without a session runs alone, in fresh globals
        history, files = [code], set()
    else:
        history = _page.code.setdefault(session, [])
        history.append(code)
        files = _page.files.setdefault(session, set())
    context = json.dumps([session, os.getcwd(), os.environ.get("COLUMNS"), history])
    key = _cache.key("markdown-exec", context)
    entry = _cache.get(key, _page.page)
    if entry is not None:
        files |= {ROOT / name for name in entry["files"]}
        return entry["value"]
    if session is not None:  # restore the session's state from the blocks that were reused
        for earlier in history[_page.executed.get(session, 0) : -1]:
            _run(run, earlier, None, session, id, files=files, **extra)
    output = _run(run, code, returncode, session, id, files=files, **extra)
    _page.executed[session] = len(history)
    _cache.put(key, output, files)
    return output


def cached_preprocess(self, nb, resources=None, km=None):
    if _cache is None:
        return _state.original_preprocess(self, nb, resources, km)
    key, cells = _notebook_key(self, nb, resources)
    if key in _state.pending:  # executing in the background since the build started
        _state.pending[key].wait()
    folder = resources["metadata"]["path"]
    entry = _cache.get(key, _page.page if _page else folder)
    if entry is None:
        entry = _execute_notebook(self, nb, resources, km, key)
    for cell, (count, outputs) in zip(cells, entry["value"], strict=True):
        cell.execution_count, cell.outputs = count, _as_nodes(outputs)
    return nb, resources


def _notebook_key(preprocessor, nb, resources):
    cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    folder = str(resources["metadata"]["path"])
    code = [cell.source for cell in cells]
    return _cache.key("notebook", json.dumps([preprocessor.kernel_name, folder, code])), cells


def _execute_notebook(preprocessor, nb, resources, km, key) -> dict:
    preprocessor.kernel_manager_class = _IpcKernelManager
    folder = str(resources["metadata"]["path"])
    started = time.perf_counter()
    nb, resources = _state.original_preprocess(preprocessor, nb, resources, km)
    log.debug("%s: %.1f s executing the notebook", folder, time.perf_counter() - started)
    cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    code = [cell.source for cell in cells]
    files = imported_snippets("\n".join(code))
    files |= {_project_file(Path(folder) / literal) for literal in _path_literals(code)} - {None}
    value = [[cell.get("execution_count"), cell.get("outputs", [])] for cell in cells]
    value = json.loads(json.dumps(value))  # a copy that later preprocessors cannot change
    return _cache.put(key, value, {p.resolve() for p in files})


def _execute_in_background(notebooks: list[Path], settings: dict) -> None:
    """Run the notebooks in a thread while the pages build: their kernels use the other core."""
    import nbformat

    jobs = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        preprocessor = ExecutePreprocessor(**settings)
        resources = {"metadata": {"path": str(path.parent)}}
        key, _ = _notebook_key(preprocessor, nb, resources)
        if key not in _state.pending and _cache.get(key, str(path)) is None:
            _state.pending[key] = threading.Event()
            jobs.append((key, preprocessor, nb, resources))

    def run():
        for key, preprocessor, nb, resources in jobs:
            try:
                _execute_notebook(preprocessor, nb, resources, None, key)
            except Exception:  # the page executes it again and reports the error
                pass
            finally:
                _state.pending.pop(key).set()

    threading.Thread(target=run, name="notebooks", daemon=True).start()


def _path_literals(code: list[str]) -> set[str]:
    """String constants in the notebook's code that name files (data it may read)."""
    found = set()
    for source in code:
        tree = _parse(source)
        constants = (n.value for n in ast.walk(tree) if isinstance(n, ast.Constant))
        found |= {c for c in constants if isinstance(c, str) and "/" in c and len(c) < 300}
    return found


def _as_nodes(outputs):
    import nbformat

    return [nbformat.from_dict(output) for output in outputs]


def _ipc_manager_class():
    from jupyter_client.manager import KernelManager

    class IpcKernelManager(KernelManager):
        """Local kernels over Unix sockets: ipykernel warns on every start over plain TCP."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = str(
                Path(os.environ.get("TMPDIR", "/tmp")) / f"site-kernel-{os.getpid()}-{id(self)}"
            )

    return IpcKernelManager


_IpcKernelManager = _ipc_manager_class()


def on_startup(command, dirty):
    _state.mode = command


def on_config(config):
    global _cache
    setting = os.environ.get("EXECUTION_CACHE", "").lower()
    if setting not in {"", "on", "off", "disk"}:
        raise SystemExit(f"EXECUTION_CACHE must be on, off or disk, not {setting!r}")
    markdown_exec_python._run_python = cached_run_python
    ExecutePreprocessor.preprocess = cached_preprocess
    if getattr(config.plugins.get("i18n"), "building", False):
        return config  # mkdocs-static-i18n builds the other languages within the same build
    use_disk = setting == "disk" or _state.mode == "serve"
    _cache = None if setting == "off" else Cache(_state, use_disk)
    return config


@event_priority(-300)  # after hooks/notebook_i18n.py has wrapped the notebooks of each language
def on_files(files, config):
    jupyter = config.plugins.get("mkdocs-jupyter")
    if _cache is None or jupyter is None or not jupyter.config["execute"]:
        return files
    notebooks = [Path(f.abs_src_path) for f in files if jupyter.should_include(f)]
    settings = {
        "kernel_name": jupyter.config["kernel_name"],
        "allow_errors": jupyter.config["allow_errors"],
        "store_widget_state": True,
    }
    _execute_in_background(notebooks, settings)
    return files


def on_pre_page(page, config, files):
    global _page
    _page = PageSessions(page.file.src_uri)
    return page


CACHE_NOTE = {  # one per language of mkdocs.yml (tests/hooks/test_languages.py)
    "ja": "このページの出力の一部は、以前の実行（{when}）のキャッシュです。"
    "キャッシュを使わずに実行するには <code>.cache/execution/</code> を削除してください。",
    "en": "Some outputs on this page come from the execution cache of an earlier run ({when}). "
    "Delete <code>.cache/execution/</code> to execute everything again.",
}


def on_page_content(html, page, config, files):
    if _page is not None and _page.seconds:
        log.debug("%s: %.1f s executing code", page.file.src_uri, _page.seconds)
    ran = _cache.restored_pages.get(page.file.src_uri) if _cache else None
    if ran is None:
        return html
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ran))
    text = CACHE_NOTE[config.theme["language"]].format(when=when)  # one per language of mkdocs.yml
    return f'<div class="admonition note execution-cache"><p>{text}</p></div>\n{html}'
