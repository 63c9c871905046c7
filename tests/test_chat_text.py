"""Message text as HTML: any text renders, and only allowed tags, attributes and links come out."""

import re
from html.parser import HTMLParser

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from webapp.chat.text import LONGEST, Unrenderable, mentions, render

from .fuzzing import examples

# What a message may contain, stated here and not read from the code under test.
ALLOWED_TAGS = {
    "p": set(),
    "br": set(),
    "strong": set(),
    "em": set(),
    "s": set(),
    "code": set(),
    "pre": set(),
    "blockquote": set(),
    "ul": set(),
    "ol": {"start"},
    "li": set(),
    "a": {"href", "rel", "target"},
    "span": {"class", "data-mention"},  # @username, and nothing else
}
LINK_SCHEMES = ("http://", "https://", "mailto:")


class Elements(HTMLParser):
    """Every element of an HTML fragment as (tag, {attribute: value})."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def assert_allowed(html: str) -> list[tuple[str, dict]]:
    elements = Elements(html).found
    for tag, attrs in elements:
        assert tag in ALLOWED_TAGS, (tag, html)
        assert set(attrs) <= ALLOWED_TAGS[tag], (tag, attrs, html)
        if tag == "a":
            assert attrs["href"].lower().startswith(LINK_SCHEMES), html
            assert attrs["rel"] == "noopener noreferrer nofollow"
            assert attrs["target"] == "_blank"
        if tag == "span":
            assert attrs.get("class") == "mention", html
            assert re.fullmatch(r"[A-Za-z0-9_-]{3,32}", attrs.get("data-mention", "")), html
        if tag == "ol" and "start" in attrs:
            assert attrs["start"].isdigit(), html
    return elements


# Pieces of Markdown, HTML, URLs and escapes, so that generated text often means something.
PIECES = [
    "http://",
    "https://",
    "www.",
    "mailto:",
    "javascript:",
    "data:",
    "vbscript:",
    "//",
    "[",
    "]",
    "(",
    ")",
    "<",
    ">",
    "</",
    "<a href=",
    "<script>",
    "<img src=x onerror=",
    '"',
    "'",
    "`",
    "```",
    "~~",
    "*",
    "**",
    "_",
    "__",
    "> ",
    "- ",
    "* ",
    "1. ",
    "3) ",
    "#",
    "\n",
    "\n\n",
    "    ",
    "\t",
    "&",
    "&amp;",
    "&#",
    "&lt;",
    "\\",
    "!",
    "@",
    ".",
    ":",
    "[",
    "[x](",
    "](http://a.b)",
    "<http://",
    "example.com",
    "a@b.com",
    "＃",
    "[abc]",
    "%",
    "%22",
    "\u202e",
    "\u0000",
    "\ufffd",
    "é",
    "𝕏",
]
markdownish = st.lists(st.sampled_from(PIECES) | st.text(max_size=8), max_size=80).map("".join)


@settings(max_examples=examples(1500))
@given(st.one_of(st.text(max_size=LONGEST), markdownish))
@example("look http://[x")
@example("http://[abc]")
@example("http://a＃b")
@example("[]()")
@example("[click](javascript:alert(1)) and [ok](https://example.com)")
def test_any_text_renders_without_raising_and_only_into_allowed_html(text):
    text = text[:LONGEST]
    assert_allowed(str(render(text)))


XSS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '"><svg onload="alert(1)">',
    '<a href="javascript:alert(1)">click me</a>',
    "[click me](javascript:alert(1))",
    "[click me](JaVaScRiPt:alert(1))",
    "[click me](java\tscript:alert(1))",
    "[click me](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click me](vbscript:msgbox(1))",
    "<javascript:alert(1)>",
    "![x](https://evil.test/pixel.png)",
    '[x](https://ok.test/ "title onmouseover=alert(1)")',
    'https://example.com/"onmouseover="alert(1)" x="',
    "http://evil.test/?q=<img src=x onerror=alert(1)>",
    "www.evil.test/<script>alert(1)</script>",
    '```"><script>alert(1)</script>\nx\n```',
    "```js onload=alert(1)\nx\n```",
    "<details open ontoggle=alert(1)>x</details>",
    "&lt;script&gt;alert(1)&lt;/script&gt; &#60;img src=x onerror=alert(1)&#62;",
    '<div hx-get="/table/rows" hx-trigger="load">htmx</div>',
    "[x](//evil.test) [y](/logout) [z](#top)",
]


@pytest.mark.parametrize("payload", XSS)
def test_hostile_payloads_are_text_and_links_only_go_to_http_and_mailto(payload):
    html = str(render(payload))
    elements = assert_allowed(html)
    assert {tag for tag, _ in elements} <= {"p", "a", "br", "pre", "code", "em", "strong"}
    assert "<script" not in html
    for tag, attrs in elements:
        if tag == "a":
            assert attrs["href"].startswith(("http://", "https://")), attrs
            assert "<" not in attrs["href"] and '"' not in attrs["href"]


@pytest.mark.parametrize(
    "text, html",
    [
        (
            "**bold** _italic_ `code`",
            "<p><strong>bold</strong> <em>italic</em> <code>code</code></p>",
        ),
        ("~~gone~~", "<p><s>gone</s></p>"),
        ("```\nx < y\n```", "<pre><code>x &lt; y\n</code></pre>"),
        ("> quoted\n\nreply", "<blockquote>\n<p>quoted</p>\n</blockquote>\n<p>reply</p>"),
        ("- one\n- two", "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"),
        ("3. three\n4. four", '<ol start="3">\n<li>three</li>\n<li>four</li>\n</ol>'),
        ("one\ntwo", "<p>one<br>\ntwo</p>"),
        ("# not a heading\n---", "<p># not a heading<br>\n---</p>"),
        ("&amp; stays as typed", "<p>&amp;amp; stays as typed</p>"),
        ("<b>not bold</b>", "<p>&lt;b&gt;not bold&lt;/b&gt;</p>"),
        ("see app.py and main.rs", "<p>see app.py and main.rs</p>"),
    ],
)
def test_the_formatting_people_type_is_rendered(text, html):
    assert str(render(text)) == html


LINK = '<a href="{}" rel="noopener noreferrer nofollow" target="_blank">{}</a>'


@pytest.mark.parametrize(
    "text, html",
    [
        (
            "see https://example.com/a?b=1&c=2.",
            "<p>see "
            + LINK.format("https://example.com/a?b=1&amp;c=2", "https://example.com/a?b=1&amp;c=2")
            + ".</p>",
        ),
        (
            "www.example.com",
            "<p>" + LINK.format("http://www.example.com", "www.example.com") + "</p>",
        ),
        (
            "[docs](https://example.com/d)",
            "<p>" + LINK.format("https://example.com/d", "docs") + "</p>",
        ),
        (
            "mail a@example.com",
            "<p>mail " + LINK.format("mailto:a@example.com", "a@example.com") + "</p>",
        ),
        ("look http://[x", "<p>look http://[x</p>"),
        ("http://[abc]", "<p>http://[abc]</p>"),
        ("ftp://example.com", "<p>ftp://example.com</p>"),
    ],
)
def test_links_are_made_for_http_www_and_mailto_only(text, html):
    assert str(render(text)) == html


def test_text_longer_than_a_message_is_refused_not_rendered():
    render("x" * LONGEST)
    with pytest.raises(Unrenderable):
        render("x" * (LONGEST + 1))


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("hi @alice and @Bob-x.", {"alice", "bob-x"}),
        ("(@alice) **@carol**", {"alice", "carol"}),
        ("mail bob@example.com", set()),
        ("`@alice` and\n```\n@dave\n```", set()),
        ("[@dave](https://example.com)", set()),
        ("@al is too short, x/@eve is a path", set()),
    ],
)
def test_mentions_are_the_names_rendered_as_mentions(text, names):
    assert mentions(text) == names
    shown = {
        attrs["data-mention"].lower()
        for tag, attrs in assert_allowed(str(render(text)))
        if tag == "span"
    }
    assert shown == names


def test_a_mention_is_highlighted_safely():
    html = str(render('@alice"><script> @bob<img>'))
    assert '<span class="mention" data-mention="alice">@alice</span>' in html
    assert "<script>" not in html and "<img" not in html
