"""Message text as HTML: the Markdown people type anyway, rendered by markdown-it-py.

Raw HTML is text, never markup. What comes out is held to an allow-list (``ALLOWED``): a
handful of formatting tags, and links to http(s) and mailto only, each opening in a new tab
that cannot reach back. Bare links are found by linkify-it-py: ``https://...`` and ``www....``,
not every word that happens to end in a country code ("app.py").

``@username`` (a word of 3 to 32 letters, digits, "_" or "-" after a space, a line start or a
punctuation mark, not inside code or a link) becomes ``<span class="mention"
data-mention="username">``: the same for every viewer; the page marks the viewer's own.
:func:`mentions` lists the names a text mentions, by the same parser.
"""

import functools
import logging
import re

from linkify_it import LinkifyIt
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml as escape_html
from markupsafe import Markup

log = logging.getLogger(__name__)

# The longest text rendered. Messages are at most this long; a longer row (written around the
# app) is refused, because rendering time grows with length and a worker renders while every
# socket it holds waits.
LONGEST = 2000

# Tag -> the attributes it may carry: everything the renderer may produce, checked per token.
ALLOWED: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        ("p", "br", "strong", "em", "s", "code", "pre", "blockquote", "ul", "li"), frozenset()
    ),
    "ol": frozenset({"start"}),
    "a": frozenset({"href", "rel", "target"}),
    "span": frozenset({"class", "data-mention"}),
}
LINK_ATTRS = {"rel": "noopener noreferrer nofollow", "target": "_blank"}
SAFE_LINK = re.compile(r"(?:https?|mailto):", re.IGNORECASE)
MENTION = re.compile(r"@([A-Za-z0-9_-]{3,32})(?![A-Za-z0-9_-])")
# What may come just before "@": an e-mail address ("bob@example.com") is no mention.
MENTION_AFTER = re.compile(r"[A-Za-z0-9_\-.@/]")


class Unrenderable(ValueError):
    """This text cannot be shown."""


class _Links(LinkifyIt):
    """Links with a scheme, e-mail addresses, and ``www.`` hosts without a scheme.

    linkify-it's fuzzy links take any name ending in a known top-level domain, and so many
    file names ("app.py", "main.rs"): of those, only the ones starting with www. are links.
    """

    def match(self, text):
        found = super().match(text) or []
        kept = [m for m in found if m.schema or m.raw.lower().startswith("www.")]
        return kept or None


def _walk(tokens):
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)


def _without_unsafe_links(children: list) -> list:
    """Inline tokens without the links whose target is not http(s) or mailto, text kept.

    markdown-it turns a link whose target fails ``validateLink`` (``[x](javascript:...)``,
    ``[]()``) into a link with an empty href instead of text.
    """
    kept, dropped = [], []
    for token in children:
        if token.type == "link_open":
            dropped.append(not SAFE_LINK.match(token.attrs.get("href", "")))
            if dropped[-1]:
                continue
        elif token.type == "link_close" and dropped and dropped.pop():
            continue
        kept.append(token)
    return kept


def _allow_list(state) -> None:
    """The last core rule: links get their rel and target; anything not allowed is refused."""
    for token in state.tokens:
        if token.type == "inline" and token.children:
            token.children = _without_unsafe_links(token.children)
    for token in _walk(state.tokens):
        if token.type == "link_open":
            # The title of [text](url "title") is dropped: links carry what ALLOWED lists.
            token.attrs = {"href": token.attrs.get("href", ""), **LINK_ATTRS}
        elif token.type == "fence":
            token.info = ""  # no class="language-..." from the info string
        if token.tag and (token.tag not in ALLOWED or not set(token.attrs) <= ALLOWED[token.tag]):
            raise Unrenderable(f"<{token.tag}> with {sorted(token.attrs)} is not allowed")


def _mention(state, silent: bool) -> bool:
    """The inline rule of ``@username``."""
    pos = state.pos
    if state.linkLevel > 0:  # a link's text: it already goes somewhere
        return False
    if state.src[pos] != "@" or (pos > 0 and MENTION_AFTER.match(state.src[pos - 1])):
        return False
    found = MENTION.match(state.src, pos, state.posMax)
    if found is None:
        return False
    if not silent:
        token = state.push("mention", "span", 0)
        token.attrs = {"class": "mention", "data-mention": found.group(1)}
        token.content = found.group(0)
    state.pos = found.end()
    return True


def _render_mention(renderer, tokens, idx, options, env) -> str:
    token = tokens[idx]
    return f"<span{renderer.renderAttrs(token)}>{escape_html(token.content)}</span>"


def _markdown() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark",
        {"html": False, "linkify": True, "breaks": True, "xhtmlOut": False, "typographer": False},
    )
    md.enable(["linkify", "strikethrough"])
    # Chat is not a document: "# word", "---" and indented lines stay as typed; no images
    # (a message must not load anything), no link references, and "&amp;" shows as typed.
    md.disable(
        ["heading", "lheading", "hr", "code", "reference", "html_block"]
        + ["html_inline", "image", "entity"]
    )
    md.inline.ruler.before("linkify", "mention", _mention)
    md.add_render_rule("mention", _render_mention)
    md.linkify = _Links()
    md.validateLink = lambda url: bool(SAFE_LINK.match(url))
    md.core.ruler.push("allow_list", _allow_list)
    return md


_md = _markdown()


@functools.lru_cache(maxsize=1024)
def render(text: str) -> Markup:
    """``text`` as safe HTML; Unrenderable when it cannot be shown.

    Cached: a message is rendered before it is stored, again for its broadcast, and again for
    every page that shows it.
    """
    if not isinstance(text, str) or len(text) > LONGEST:
        raise Unrenderable(f"not text of at most {LONGEST} characters")
    try:
        html = _md.render(text)
    except Unrenderable:
        raise
    except Exception as error:  # a fault of the renderer: this text is refused, not the page
        raise Unrenderable(f"{type(error).__name__}: {error}") from error
    return Markup(html.rstrip("\n"))


@functools.lru_cache(maxsize=1024)
def mentions(text: str) -> frozenset[str]:
    """The lower-case usernames ``text`` mentions as ``@username`` (as rendered: not in code)."""
    if not isinstance(text, str) or "@" not in text or len(text) > LONGEST:
        return frozenset()
    try:
        tokens = _md.parse(text)
    except Unrenderable:  # refused before it is stored: it never reaches here from a message
        return frozenset()
    return frozenset(
        token.attrs["data-mention"].lower() for token in _walk(tokens) if token.type == "mention"
    )


# Messages already logged as unrenderable; one line each (per process) is enough to find them.
_unshown: set[int] = set()


def message_html(message) -> Markup | None:
    """A stored message's body as HTML, or None (logged once) when it cannot be shown.

    One message that cannot be rendered must not stop a page, a fragment list or a catch-up
    from showing the others: the template shows a placeholder in its place.
    """
    try:
        return render(message.body)
    except Exception:
        if message.id not in _unshown:
            if len(_unshown) >= 10_000:
                _unshown.clear()
            _unshown.add(message.id)
            log.exception("message %s cannot be shown", message.id)
        return None
