"""Message text for HTML: escaped, with http(s) links made clickable, never raw user HTML."""

import re
from urllib.parse import urlsplit

from markupsafe import Markup, escape

# A link runs to the next space or quote; '<' and '>' end it too (they are text, not markup).
LINK = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
TRAILING = ".,;:!?)]}"
ANCHOR = Markup('<a href="{0}" rel="noopener noreferrer nofollow" target="_blank">{0}</a>')


def linkify(text: str) -> Markup:
    """Escape ``text`` and turn each http:// or https:// URL in it into a safe link."""
    parts: list[str] = []
    position = 0
    for match in LINK.finditer(text):
        url = match.group(0)
        # "see https://example.com." ends the sentence, not the link; keep balanced parens.
        while (
            url
            and url[-1] in TRAILING
            and not (url[-1] == ")" and url.count("(") >= url.count(")"))
        ):
            url = url[:-1]
        if not urlsplit(url).hostname:
            continue
        parts.append(escape(text[position : match.start()]))
        parts.append(ANCHOR.format(url))
        position = match.start() + len(url)
    parts.append(escape(text[position:]))
    return Markup("").join(parts)
