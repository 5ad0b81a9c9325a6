"""The query normaliser: one spelling per question, so equal questions share one exact key.

Case, Unicode forms and whitespace are folded; air waybill numbers and order ids take
their canonical form (``wb 1234-567-890`` is ``wb1234567890``); dates written in an
unambiguous format become ISO (``3 Dec 2026``, ``December 3, 2026``, ``03.12.2026``,
``2026-12-3`` are all ``2026-12-03``). A slash date is rewritten only when one part
is above 12 (``25/12/2026``): ``03/04/2026`` means a different day to different
readers, so it keeps its own spelling and only matches itself. Trailing question
marks, full stops and exclamation marks are dropped.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from runtime.identifiers import AWB_PATTERN, ORDER_PATTERN

_SPACES = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s?!.]+$")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4})"
_ISO = re.compile(r"(?<!\d)(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})(?!\d)")
_DOTTED = re.compile(r"(?<![\d.])(?P<day>\d{1,2})\.(?P<month>\d{1,2})\.(?P<year>\d{4})(?!\d)")
_SLASHED = re.compile(r"(?<![\d/])(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<year>\d{4})(?!\d)")
_DAY_MONTH = re.compile(rf"(?<![\w]){_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}(?!\d)")
_MONTH_DAY = re.compile(rf"(?<![\w]){_MONTH}\s+{_DAY},?\s+{_YEAR}(?!\d)")


def _iso(year: str, month: int | str, day: str) -> str | None:
    try:
        return date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return None  # not a calendar date: keep the text as typed


def _numeric(match: re.Match[str]) -> str:
    return _iso(match["year"], match["month"], match["day"]) or match.group(0)


def _named(match: re.Match[str]) -> str:
    return _iso(match["year"], _MONTHS[match["month"]], match["day"]) or match.group(0)


def _slashed(match: re.Match[str]) -> str:
    a, b = int(match["a"]), int(match["b"])
    if a > 12 >= b:
        found = _iso(match["year"], b, match["a"])
    elif b > 12 >= a:
        found = _iso(match["year"], a, match["b"])
    else:
        found = None  # 03/04: March 4th or 3 April; both > 12: no date
    return found or match.group(0)


def normalise(text: str) -> str:
    """The canonical spelling of ``text`` (the exact key's input and the embedder's)."""
    out = unicodedata.normalize("NFKC", text).casefold()
    out = AWB_PATTERN.sub(lambda m: "wb" + re.sub(r"\D", "", m.group(1)), out)
    out = ORDER_PATTERN.sub(lambda m: "ord-" + m.group(1), out)
    out = _ISO.sub(_numeric, out)
    out = _DOTTED.sub(_numeric, out)
    out = _SLASHED.sub(_slashed, out)
    out = _DAY_MONTH.sub(_named, out)
    out = _MONTH_DAY.sub(_named, out)
    out = _SPACES.sub(" ", out).strip()
    return _TRAILING.sub("", out)
