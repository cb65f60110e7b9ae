"""The `uiautomator dump` XML of a view tree, byte for byte as Android writes it.

AOSP's AccessibilityNodeInfoDumper serialises with kxml (docs/architecture.md#uiautomator-dump): one line, the
`standalone='yes'` declaration, a fixed attribute order, booleans as true/false, bounds as
`[x1,y1][x2,y2]` clipped to the display, leaves self-closed as `<node ... />`. Drivers parse
this with regexes as often as with XML parsers, so the exact bytes matter, not just the tree.
"""

from __future__ import annotations

from bubblescope.sim.android.layout import View

HEADER = "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>"

# Containers whose clickable-without-text children are not flagged NAF (AOSP nafExcludedClass).
_NAF_EXCLUDED = ("android.widget.GridView", "android.widget.GridLayout",
                 "android.widget.ListView", "android.widget.TableLayout")


def _invalid_for_dumper(code: int) -> bool:
    """AOSP stripInvalidXMLChars' ranges, plus what kxml would refuse (NUL, U+FFFE/F, lone
    surrogates): the device replaces these by '.' rather than writing unparsable XML."""
    return (code <= 0x8 or 0xB <= code <= 0xC or 0xE <= code <= 0x1F or 0x7F <= code <= 0x84
            or 0x86 <= code <= 0x9F or 0xFDD0 <= code <= 0xFDDF or code in (0xFFFE, 0xFFFF)
            or 0xD800 <= code <= 0xDFFF)


def safe_text(value: str) -> str:
    return "".join("." if _invalid_for_dumper(ord(c)) else c for c in value)


_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
            "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def escape_attribute(value: str) -> str:
    """kxml's writeEscaped for a double-quoted attribute in a UTF-8 document: markup characters
    as entities, newline/CR/tab as character references, characters beyond the BMP (written by
    Java as surrogate pairs) as one decimal character reference, everything else raw."""
    out = []
    for c in value:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif ord(c) > 0xFFFF:
            out.append(f"&#{ord(c)};")
        else:
            out.append(c)
    return "".join(out)


def _clip(view: View, width: int, height: int) -> tuple[int, int, int, int] | None:
    x1, y1, x2, y2 = view.bounds
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    return (x1, y1, x2, y2) if x1 < x2 and y1 < y2 else None


def _has_label_below(view: View) -> bool:
    return any(child.text or child.desc or _has_label_below(child) for child in view.children)


def _is_naf(view: View) -> bool:
    """Clickable and enabled, yet no text or description on it or anywhere below it."""
    if view.cls in _NAF_EXCLUDED or not (view.clickable and view.enabled):
        return False
    return not (view.text or view.desc) and not _has_label_below(view)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _attributes(view: View, index: int, bounds: tuple[int, int, int, int]) -> str:
    pairs = [("index", str(index)), ("text", view.text), ("resource-id", view.resource_id),
             ("class", view.cls), ("package", view.package), ("content-desc", view.desc),
             ("checkable", _flag(view.checkable)), ("checked", _flag(view.checked)),
             ("clickable", _flag(view.clickable)), ("enabled", _flag(view.enabled)),
             ("focusable", _flag(view.focusable)), ("focused", _flag(view.focused)),
             ("scrollable", _flag(view.scrollable)),
             ("long-clickable", _flag(view.long_clickable)),
             ("password", _flag(view.password)), ("selected", _flag(view.selected))]
    if _is_naf(view):
        pairs.insert(0, ("NAF", "true"))
    x1, y1, x2, y2 = bounds
    pairs.append(("bounds", f"[{x1},{y1}][{x2},{y2}]"))
    return " ".join(f'{key}="{escape_attribute(safe_text(value))}"' for key, value in pairs)


def _dump_node(view: View, index: int, width: int, height: int, out: list[str]) -> None:
    bounds = _clip(view, width, height)
    if bounds is None:  # not visible to the user: uiautomator leaves it out
        return
    # index counts every child, shown or not (AOSP passes the loop index through)
    visible = [(i, child) for i, child in enumerate(view.children)
               if _clip(child, width, height) is not None]
    attributes = _attributes(view, index, bounds)
    if not visible:
        out.append(f"<node {attributes} />")
        return
    out.append(f"<node {attributes}>")
    for child_index, child in visible:
        _dump_node(child, child_index, width, height, out)
    out.append("</node>")


def dump_hierarchy(root: View, width: int, height: int, rotation: int = 0) -> str:
    """The whole document, as one line with no trailing newline (kxml's endDocument)."""
    out = [HEADER, f'<hierarchy rotation="{rotation}">']
    _dump_node(root, 0, width, height, out)
    out.append("</hierarchy>")
    return "".join(out)
