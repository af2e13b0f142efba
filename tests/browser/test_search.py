"""Search, in the browser with Material's real search worker: a query finds the pages of the
reader's language that contain it, ranked before any page of the other language.

Japanese is written without spaces: the index and the query must be split into the same tokens
(mkdocs.yml's search separator) for a Japanese query to find anything. The query is typed into
the search box, and a key press stands for the confirmation of the input method, on which
Material runs the search.
"""

import re

import pytest

pytestmark = pytest.mark.browser

CODE_BLOCK = re.compile(r"<pre\b.*?</pre>", re.DOTALL)

QUERIES = [
    ("ja", "交差エントロピー"),
    ("ja", "負の対数尤度"),
    ("ja", "ラベル平滑化"),
    ("en", "cross-entropy"),
    ("en", "negative log-likelihood"),
    ("en", "label smoothing"),
]


def _language(path: str) -> str:
    return "en" if path.startswith("/en/") else "ja"


def _prose(doc: dict) -> str:
    """A search index entry's title and text without code blocks (an identifier or a comment
    in code is not what a reader searches for)."""
    return doc["title"] + " " + CODE_BLOCK.sub(" ", doc["text"])


def _page_path(location: str) -> str:
    return "/" + location.split("#")[0]


@pytest.mark.parametrize(("language", "query"), QUERIES, ids=[q for _, q in QUERIES])
def test_search_returns_pages_in_the_query_language_first(site, search_index, language, query):
    root = "/en/" if language == "en" else "/"
    results, meta, network = site.search(root, query)
    where = f"searching {query!r} on {root}"
    if not results:
        pytest.fail(f"{where} found nothing ({meta!r})", pytrace=False)
    problems = network.console_errors + network.failed + network.external
    if problems:
        pytest.fail(f"{where} logged: {problems}", pytrace=False)
    if _language(results[0]) != language:
        pytest.fail(
            f"{where}: the first result is {results[0]}, not a {language} page:\n{results}",
            pytrace=False,
        )
    # Every page of that language that contains the phrase is found, before any page of the
    # other language.
    containing = {
        _page_path(doc["location"])
        for doc in search_index
        if query.lower() in _prose(doc).lower()
        and _language(_page_path(doc["location"])) == language
    }
    missing = sorted(containing - set(results))
    if missing:
        pytest.fail(
            f"{where} misses pages that contain it: {missing}\nresults: {results}", pytrace=False
        )
    other = [i for i, path in enumerate(results) if _language(path) != language]
    late = [path for path in containing if other and results.index(path) > other[0]]
    if late:
        pytest.fail(
            f"{where} ranks {sorted(late)} after a page in the other language:\n{results}",
            pytrace=False,
        )
