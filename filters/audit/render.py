"""Render the section blocks as one self-contained HTML page (plots inlined) and as Markdown.

Every string from the run (ids, terms, snippets, paths, reasons) is escaped here, at the last step.
No dates, no absolute paths the run did not record: the same audit gives the same bytes.
"""
from __future__ import annotations

import base64
import html
import re

from filters.audit.sections import Bad, Snip

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1200px;
padding:0 1em;color:#222}
h1{font-size:1.6em;border-bottom:2px solid #333}h2{margin-top:2em;border-bottom:1px solid #aaa}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f0f0f0}td{overflow-wrap:anywhere}td.nw{white-space:nowrap}
code,.snip{font:12px ui-monospace,Menlo,Consolas,monospace}
.snip{display:block;color:#333;background:#f7f7f2;margin:1px 0 3px 1em;padding:1px 4px}
mark{background:#fd8}
.bad{background:#fdd;border:2px solid #c00;padding:.6em 1em;font-weight:bold;color:#900}
.ok{background:#dfd;border:1px solid #080;padding:.6em 1em}
.flag{color:#c00;font-weight:bold}
img{max-width:100%;display:block;margin:.6em 0}
details{margin:.4em 0}summary{cursor:pointer;color:#236}
"""
_BRACKET = re.compile(r"\[[^\[\]]{1,60}\]")


def _e(s) -> str:
    return html.escape(str(s), quote=True)


def _snip_html(s: str) -> str:
    parts, last = [], 0
    for m in _BRACKET.finditer(s):   # highlight bracketed matches; every piece escaped on its own
        parts += [_e(s[last:m.start()]), "<mark>", _e(m.group(0)), "</mark>"]
        last = m.end()
    return f'<span class="snip">{"".join(parts)}{_e(s[last:])}</span>'


def _cell_html(c) -> str:
    if isinstance(c, list):
        return "".join(_snip_html(x) if isinstance(x, Snip) else f"<div>{_e(x)}</div>" for x in c)
    return f'<span class="flag">{_e(c)}</span>' if isinstance(c, Bad) else _e(c)


def _td(c) -> str:
    short = not isinstance(c, list) and len(str(c)) <= 32   # ids, reasons, scores: keep on one line
    return f'<td class="nw">{_cell_html(c)}</td>' if short else f"<td>{_cell_html(c)}</td>"


def _html_blocks(blocks: list, images: dict[str, bytes]) -> list[str]:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out.append(f"<h{b[1]}>{_e(b[2])}</h{b[1]}>")
        elif kind == "p":
            out.append(f"<p>{_e(b[1])}</p>")
        elif kind == "ok":
            out.append(f'<div class="ok">{_e(b[1])}</div>')
        elif kind == "bad":
            items = "".join(f"<li>{_e(x)}</li>" for x in b[1])
            out.append(f'<div class="bad">CHECKS FAILED<ul>{items}</ul></div>')
        elif kind == "table":
            head = "".join(f"<th>{_e(h)}</th>" for h in b[1])
            rows = "".join("<tr>" + "".join(_td(c) for c in r) + "</tr>" for r in b[2])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            if b[1] in images:
                data = base64.b64encode(images[b[1]]).decode("ascii")
                out.append(f'<img alt="{_e(b[2])}" src="data:image/png;base64,{data}">')
        elif kind == "details":
            out.append(f"<details><summary>{_e(b[1])}</summary>{''.join(_html_blocks(b[2], images))}</details>")
    return out


def render_html(blocks: list, images: dict[str, bytes], title: str) -> str:
    body = "\n".join(_html_blocks(blocks, images))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n<title>{_e(title)}</title>\n'
            f"<style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


# ---------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~<>&])")


def _m(s) -> str:
    """Escape for a Markdown table cell or paragraph: no markup, no raw HTML, one line."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(s).split()))


def _code_md(s: str) -> str:
    # in a code span nothing is markup, but a GFM table still splits on '|' unless it is escaped
    return "`" + " ".join(s.split()).replace("`", "'").replace("|", "\\|") + "`"


def _cell_md(c) -> str:
    if isinstance(c, list):
        return " · ".join(_code_md(x) if isinstance(x, Snip) else _m(x) for x in c)
    return f"**{_m(c)}**" if isinstance(c, Bad) else _m(c)


def _md_blocks(blocks: list, images: dict) -> list[str]:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out.append(f"{'#' * b[1]} {_m(b[2])}")
        elif kind in ("p", "ok"):
            out.append(_m(b[1]))
        elif kind == "bad":
            out.append("**CHECKS FAILED**\n\n" + "\n".join(f"- {_m(x)}" for x in b[1]))
        elif kind == "table":
            lines = ["| " + " | ".join(_m(h) for h in b[1]) + " |", "|" + "---|" * len(b[1])]
            lines += ["| " + " | ".join(_cell_md(c) for c in r) + " |" for r in b[2]]
            out.append("\n".join(lines))
        elif kind == "img":
            if b[1] in images:
                out.append(f"![{_m(b[2])}]({images[b[1]]})")
        elif kind == "details":
            out.append(f"**{_m(b[1])}**")
            out += _md_blocks(b[2], images)
    return out


def render_md(blocks: list, image_files: dict[str, str]) -> str:
    return "\n\n".join(_md_blocks(blocks, image_files)) + "\n"
