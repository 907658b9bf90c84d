"""Slack Block Kit shown as HTML, for the formatting preview: what a channel would display,
built only from escaped text and a fixed set of tags (no attribute comes from the message
except an https link's address, itself escaped), so an event value such as
``<script>`` or ``<!channel>`` shows as text and never runs or pages anyone.

Slack's mrkdwn as rendered here: ``*bold*``, ``_italic_``, ``~strike~``, ```code```,
``<https://url|label>`` links, ``<!here>``-style mentions; Slack's own escapes (``&amp;``,
``&lt;``, ``&gt;``, which render.py writes) turn back into the characters they stand for.
Block types this does not draw (images, actions, ...) are listed by type; the preview's
JSON view shows them whole.
"""

from __future__ import annotations

import json
import re
from typing import Any

from markupsafe import Markup, escape

__all__ = ["blocks_html", "mrkdwn_html", "pretty_json"]

_SPECIAL = re.compile(r"<([^<>]+)>")
_STYLES = (
    (re.compile(r"`([^`\n]+)`"), "code"),
    (re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])"), "strong"),
    (re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])"), "em"),
    (re.compile(r"(?<![\w~])~([^~\n]+)~(?![\w~])"), "s"),
)


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _styled(text: str) -> str:
    """Literal text: Slack's escapes undone, HTML-escaped, then the mrkdwn styles as tags."""
    out = str(escape(_unescape(text)))
    for pattern, tag in _STYLES:
        out = pattern.sub(lambda m, tag=tag: f"<{tag}>{m.group(1)}</{tag}>", out)
    return out.replace("\n", "<br>")


def _special(inner: str) -> str:
    target, _, label = inner.partition("|")
    if target.startswith(("https://", "http://")):
        return f'<a href="{escape(target)}" rel="noopener noreferrer">{escape(_unescape(label or target))}</a>'
    if target.startswith("!"):
        return f'<span class="mention">@{escape(target[1:].split("^")[0])}</span>'
    if target.startswith(("@", "#")):
        return f'<span class="mention">{escape(target[0] + (label or target[1:]))}</span>'
    return str(escape(_unescape(f"<{inner}>")))


def mrkdwn_html(text: str, markdown: bool = True) -> Markup:
    """One Slack text object's text as HTML."""
    if not markdown:
        return Markup(str(escape(_unescape(text))).replace("\n", "<br>"))
    parts, last = [], 0
    for match in _SPECIAL.finditer(text):
        parts.append(_styled(text[last:match.start()]))
        parts.append(_special(match.group(1)))
        last = match.end()
    parts.append(_styled(text[last:]))
    return Markup("".join(parts))


def _text(obj: Any) -> Markup:
    if not isinstance(obj, dict):
        return Markup("")
    return mrkdwn_html(str(obj.get("text") or ""), obj.get("type") != "plain_text")


def _block(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "header":
        return f'<div class="bk-header">{_text(block.get("text"))}</div>'
    if kind == "section":
        inner = f'<div class="bk-text">{_text(block.get("text"))}</div>' if block.get("text") else ""
        fields = block.get("fields") or []
        if fields:
            inner += '<div class="bk-fields">' + "".join(f'<div>{_text(f)}</div>' for f in fields) + "</div>"
        return f'<div class="bk-section">{inner}</div>'
    if kind == "context":
        items = [str(_text(e)) for e in block.get("elements") or [] if isinstance(e, dict) and "text" in e]
        return f'<div class="bk-context">{" ".join(items)}</div>'
    if kind == "divider":
        return '<hr class="bk-divider">'
    return f'<div class="bk-other">[{escape(str(kind))} block]</div>'


def blocks_html(blocks: list[dict[str, Any]]) -> Markup:
    """The blocks as a channel shows them, top to bottom."""
    return Markup("".join(_block(b) for b in blocks if isinstance(b, dict)))


def pretty_json(value: Any) -> str:
    """The payload as posted (for the preview's "as JSON" view; Jinja escapes it)."""
    return json.dumps(value, indent=2, ensure_ascii=False)

