"""Every page says at its foot what its outputs were produced with.

The versions are read from the build itself (never typed): the torch and Python that execute
the pages' code, the operating system and machine, and whether torch saw a GPU. The theme
(hooks/theme/partials/build_versions.html) prints them in the page's language; a page with no
executed code says that it has none and names the build's versions all the same.
"""

import platform
import re
from functools import cache

# markdown-exec runs a fence whose exec option is one of these; notebooks are always executed.
_EXECUTED_FENCE = re.compile(r"""^\s*(?:`{3,}|~{3,}).*\bexec=["']?(?:on|1|true|yes)\b""", re.M)


@cache
def build_versions() -> dict:
    import torch

    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    elif torch.backends.mps.is_available():
        device = "MPS"
    else:
        device = "CPU"
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "system": platform.system(),
        "machine": platform.machine(),
        "device": device,
    }


def executes_code(page) -> bool:
    if getattr(page, "nb_url", None):
        return True
    return bool(_EXECUTED_FENCE.search(page.markdown or ""))


def on_page_context(context, page, config, nav):
    context["build_versions"] = build_versions()
    context["page_executes_code"] = executes_code(page)
    return context
