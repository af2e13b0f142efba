"""Name the page when an executed code block fails.

markdown-exec reports a failing block as "Execution of python code block exited with
errors" without saying which page it is on. Pages are rendered one at a time, so this
hook remembers the page being rendered and adds its source path to that warning (which
`strict: true` turns into a failed build).
"""

import logging

from mkdocs.plugins import event_priority

_current_page = {"src": "?"}


class _AddPagePath(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        page = f"exited with errors on page docs/{_current_page['src']}"
        record.msg = str(record.msg).replace("exited with errors", page, 1)
        return True


logging.getLogger("mkdocs.plugins.markdown_exec._internal.formatters.base").addFilter(
    _AddPagePath()
)


@event_priority(-1000)  # the last thing before the page's Markdown is converted and executed
def on_page_markdown(markdown, page, **kwargs):
    _current_page["src"] = page.file.src_uri
    return markdown
