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

CONFIG = re.compile(r'(<script id="__config" type="application/json">)(.*?)(</script>)', re.S)
OTHER_LANGUAGES: list[str] = []  # the non-default languages of mkdocs.yml, built into <locale>/


def on_config(config):
    languages = config.plugins["i18n"].config.languages
    OTHER_LANGUAGES[:] = [language.locale for language in languages if not language.default]


def _language_of(location: str) -> str | None:
    return next((lang for lang in OTHER_LANGUAGES if location.startswith(f"{lang}/")), None)


@event_priority(-100)
def on_post_page(output, page, config):
    language = _language_of(page.file.dest_uri)
    if language is None:
        return output

    def rebase(match):
        app = json.loads(match[2])
        app["base"] = f"{app['base'].rstrip('/')}/{language}/"
        return match[1] + json.dumps(app, ensure_ascii=False) + match[3]

    return CONFIG.sub(rebase, output, count=1)


@event_priority(-200)  # after mkdocs-static-i18n (-100) has written the merged index
def on_post_build(config):
    root = Path(config.site_dir) / "search" / "search_index.json"
    if not root.is_file():
        return
    index = json.loads(root.read_text(encoding="utf-8"))
    by_language = {}
    for doc in index["docs"]:
        by_language.setdefault(_language_of(doc["location"]), []).append(doc)
    if set(by_language) <= {None}:
        return  # already split (the i18n plugin runs this for each language's build)
    for language, docs in by_language.items():
        if language is None:
            continue
        for doc in docs:
            doc["location"] = doc["location"].removeprefix(f"{language}/")
        other = Path(config.site_dir) / language / "search" / "search_index.json"
        other.parent.mkdir(parents=True, exist_ok=True)
        other.write_text(json.dumps({**index, "docs": docs}, ensure_ascii=False), encoding="utf-8")
    default = by_language.get(None, [])
    root.write_text(json.dumps({**index, "docs": default}, ensure_ascii=False), encoding="utf-8")
