"""Small HTML building blocks of report.html: escaping, number formats, tables, sections.

Every piece of text that reaches the page goes through `esc`, so run ids, persona narratives
and category names from any source cannot break the markup.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterable, Sequence

log = logging.getLogger(__name__)

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d232b;
 margin:0 auto;max-width:1200px;padding:16px 28px 60px;background:#fff}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:19px;margin:0 0 10px;padding-top:6px}
h3{font-size:15px;margin:14px 0 6px}
section{border-top:2px solid #e3e7ec;margin-top:26px;padding-top:10px}
nav a{margin-right:14px;color:#2a5db0;text-decoration:none}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border-bottom:1px solid #e3e7ec;padding:3px 9px;text-align:left;vertical-align:top}
th{background:#f3f5f8;font-weight:600}td.num,th.num{text-align:right;
 font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:9px;font-weight:600;font-size:12px}
.ok,.pass{background:#dff3e4;color:#17602c}.partial,.fail{background:#fbe3e3;color:#9a1c1c}
.mark-new{color:#fff;background:#2a5db0;border-radius:4px;padding:0 4px;font-size:11px;
 font-weight:700}.mark-up{color:#17802f;font-weight:700}.mark-down{color:#b42318;font-weight:700}
.mark-same{color:#8a94a3}.prev{color:#8a94a3;font-size:11px}
.muted{color:#66707d}.empty{color:#66707d;font-style:italic}
.error{color:#9a1c1c;background:#fdf0f0;padding:6px 10px;border-radius:4px}
.warning{color:#7a4b00;background:#fdf5e3;padding:6px 10px;border-radius:4px}
.narrative{white-space:pre-wrap;margin:4px 0 6px}
.side{display:flex;flex-wrap:wrap;gap:22px;align-items:flex-start}
.cell{border:1px solid #e3e7ec;border-radius:6px;padding:6px 12px;margin:10px 0}
img.plot{max-width:100%;height:auto;display:block;margin:6px 0}
dl.kv{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:6px 0}
dl.kv dt{color:#66707d}dl.kv dd{margin:0}
#platform-profiles td:first-child{color:#66707d}#platform-profiles td{max-width:220px}
.scroll{overflow-x:auto}
#runs-table td:first-child{white-space:nowrap;font-family:ui-monospace,monospace;font-size:12px}
"""


def esc(value: object) -> str:
    """Any value as escaped text; None shows as an en dash so empty cells stay visible."""
    return "\u2013" if value is None else html.escape(str(value))


def fmt(value: float | None, digits: int = 3) -> str:
    """A number with fixed digits, or an en dash when it is missing."""
    return "\u2013" if value is None else f"{value:.{digits}f}"


def pct(value: float | None, digits: int = 1) -> str:
    """A fraction as a signed-free percentage (shares)."""
    return "\u2013" if value is None else f"{100 * value:.{digits}f}%"


def signed_pct(value: float | None, digits: int = 1) -> str:
    """A relative change as a signed percentage."""
    return "\u2013" if value is None else f"{100 * value:+.{digits}f}%"


def with_ci(value: float | None, ci: Sequence[float | None] | None,
            show: Callable[[float | None], str] = fmt) -> str:
    """`value [low, high]`, formatted by `show`; the interval is left out when unknown."""
    if value is None:
        return "\u2013"
    if not ci or ci[0] is None or ci[1] is None:
        return show(value)
    return f"{show(value)} <span class='muted'>[{show(ci[0])}, {show(ci[1])}]</span>"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]],
          numeric: Sequence[int] = (), attrs: str = "") -> str:
    """A table from already-escaped cells; columns in `numeric` are right-aligned."""
    def cell(tag: str, index: int, content: str) -> str:
        cls = " class='num'" if index in numeric else ""
        return f"<{tag}{cls}>{content}</{tag}>"

    head = "".join(cell("th", i, esc(h)) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>"
                   for row in rows)
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def empty(message: str) -> str:
    """The note a section shows instead of data it does not have."""
    return f"<p class='empty'>{esc(message)}</p>"


def guarded(label: str, build: Callable[[], str]) -> str:
    """`build()`, or a note saying why it failed.

    A failure inside one part (a plot, an odd summary) becomes a note in that part, so the
    rest of the report is still written: a report is most needed when something went wrong.
    """
    try:
        return build()
    except Exception as exc:  # one broken part must not lose the page
        log.exception("report part %r failed", label)
        return (f"<p class='error'>Could not draw {esc(label)}: {esc(type(exc).__name__)}: "
                f"{esc(exc)}</p>")


def section(section_id: str, title: str, build: Callable[[], str]) -> str:
    """A titled section whose body comes from `build`, guarded (see `guarded`)."""
    body = guarded(f"section {title}", build)
    return f"<section id='{esc(section_id)}'><h2>{esc(title)}</h2>{body}</section>"


def page(title: str, nav: Sequence[tuple[str, str]], body: str) -> str:
    """The whole document: one file, its only style inline, nothing fetched from elsewhere."""
    links = "".join(f"<a href='#{esc(i)}'>{esc(t)}</a>" for i, t in nav)
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{esc(title)}</title><style>{CSS}</style></head>"
            f"<body><nav>{links}</nav>{body}</body></html>")
