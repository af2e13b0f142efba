"""Give each language its own search index: a search on the English site lists English pages,
a search on the Japanese site Japanese pages.

mkdocs-static-i18n writes one search/search_index.json holding both languages, and Material
ranks the pages of both together: on the English site "label smoothing" listed Japanese pages
(which contain the identifier label_smoothing) above English pages about label smoothing.
After the build, this hook moves the English entries to en/search/search_index.json (their
locations made relative to en/) and points the English pages' Material configuration at en/,
where Material then looks for the index and resolves result links.
"""

import json
import re
from pathlib import Path

from mkdocs.plugins import event_priority

LANGUAGE = "en"  # the non-default language, built into en/
CONFIG = re.compile(r'(<script id="__config" type="application/json">)(.*?)(</script>)', re.S)


@event_priority(-100)
def on_post_page(output, page, config):
    if not page.file.dest_uri.startswith(f"{LANGUAGE}/"):
        return output

    def rebase(match):
        app = json.loads(match[2])
        app["base"] = f"{app['base'].rstrip('/')}/{LANGUAGE}/"
        return match[1] + json.dumps(app, ensure_ascii=False) + match[3]

    return CONFIG.sub(rebase, output, count=1)


@event_priority(-200)  # after mkdocs-static-i18n (-100) has written the merged index
def on_post_build(config):
    root = Path(config.site_dir) / "search" / "search_index.json"
    if not root.is_file():
        return
    index = json.loads(root.read_text(encoding="utf-8"))
    prefix = f"{LANGUAGE}/"
    own = [doc for doc in index["docs"] if doc["location"].startswith(prefix)]
    if not own:
        return  # already split (the i18n plugin runs this for each language's build)
    default = [doc for doc in index["docs"] if not doc["location"].startswith(prefix)]
    for doc in own:
        doc["location"] = doc["location"].removeprefix(prefix)
    other = Path(config.site_dir) / LANGUAGE / "search" / "search_index.json"
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text(json.dumps({**index, "docs": own}, ensure_ascii=False), encoding="utf-8")
    root.write_text(json.dumps({**index, "docs": default}, ensure_ascii=False), encoding="utf-8")
