"""Stop Material's language switcher from requesting a sitemap.xml next to every page.

mkdocs-static-i18n writes, in each page's <head>, <link rel="alternate" hreflang> tags that point
at the same page in each language. Material 9.7 takes every such tag for the root of an
alternate site and fetches "sitemap.xml" relative to it (mkdocs-material #6582), so every page
made two requests that failed with 404 (console errors). The tags are removed: the language
switcher's own links already point at the same page in the other language, and sitemap.xml
still declares every page's hreflang alternates for search engines.
"""

import re

from mkdocs.plugins import event_priority

ALTERNATE = re.compile(r'\s*<link rel="alternate" href="[^"]*" hreflang="[^"]*">')


@event_priority(-100)
def on_post_page(output, page, config):
    head, end, body = output.partition("</head>")
    return ALTERNATE.sub("", head) + end + body
