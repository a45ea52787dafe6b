"""The one boundary where student-controlled text becomes output: CSV, Markdown/HTML, terminal.

Everything a student controls — file names, exception class names and messages, returned
values — passes through one of these functions before it is written anywhere a person or a
program reads it. Each function also caps the text, so no field can grow without bound.

- :func:`csv_cell`: OWASP's CSV-injection guard. A cell starting with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return is prefixed with ``'`` so a spreadsheet shows it as text;
  quoting of commas, quotes and newlines is left to :mod:`csv`.
- :func:`markdown_text`: one line of inline Markdown that renders as literal text: HTML is
  escaped (``html.escape``), Markdown punctuation is backslash-escaped and line breaks become
  spaces, so student text can never add a row, a heading, a ``</details>``, a link or a
  score line to feedback.md.
- :func:`html_text`: HTML element content (the similarity report): ``html.escape`` with quotes,
  control characters shown as escapes (newlines and tabs kept, for ``<pre>``), capped.
- :func:`terminal_text`: control characters (ANSI escapes, carriage returns, bidi overrides)
  are shown as ``\\x1b``-style escapes instead of being sent to the instructor's terminal.
"""

from __future__ import annotations

import html
import re
import unicodedata

DEFAULT_CAP = 300
_CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Markdown punctuation that can start emphasis, code, links, tables, headings, lists or HTML.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:<>])")


def cap(text: str, limit: int = DEFAULT_CAP) -> str:
    """``text`` cut to ``limit`` characters, saying it was cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def visible(text: str) -> str:
    """Control, format and unassigned characters (C* categories) shown as escapes."""
    return "".join(
        _escape_char(char) if unicodedata.category(char).startswith("C") else char for char in text
    )


def _escape_char(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def terminal_text(text: str, limit: int = DEFAULT_CAP) -> str:
    """Safe to print on a terminal: capped, no control characters (so no ANSI escapes)."""
    return cap(visible(text), limit)


def markdown_text(text: str, limit: int = DEFAULT_CAP) -> str:
    """One line of Markdown that renders exactly as the (capped) text, and nothing more."""
    # HTML first (quote=False: no entities with '#'), then Markdown punctuation.
    flat = cap(visible(" ".join(text.split())), limit)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def csv_cell(text: str, limit: int = DEFAULT_CAP) -> str:
    """A CSV cell a spreadsheet cannot evaluate (OWASP CSV injection), capped."""
    text = cap(visible(text), limit)
    return "'" + text if text.startswith(_CSV_TRIGGERS) else text


def html_text(text: str, limit: int = DEFAULT_CAP) -> str:
    """HTML content or attribute text that renders as the (capped) text and adds no markup."""
    kept = "".join(
        char
        if char in "\n\t" or not unicodedata.category(char).startswith("C")
        else _escape_char(char)
        for char in text
    )
    return html.escape(cap(kept, limit))
