"""The report as Markdown and as one self-contained HTML page: machine, summary, notebooks, problems, then each
paper's claims with their sweeps and figures."""

from __future__ import annotations

import html
import os
import platform

from mlsys_core.report.record import STATUSES, table


def summary(rows: list[dict]) -> dict[str, dict[str, int]]:
    """Verdict counts per paper (papers in registry order, every status present)."""
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        counts.setdefault(r["paper"], dict.fromkeys(STATUSES, 0))[r["verdict"]] += 1
    return counts


def machine() -> str:
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _sensitivity(r: dict) -> list[str]:
    s = r["sweep"]
    unit = f" {s['unit']}" if s["unit"] else ""
    out = [f"- **{r['id']}** ({r['statement']}), over {s['assumption']} (suite's default {s['default']:g}{unit}):"]
    for p in s["points"]:
        iv = f" [{p['interval'][0]:.3g}, {p['interval'][1]:.3g}]" if p["interval"] else ""
        out.append(f"  - {p['value']:g}{unit}: {p['measured']:.3g}{iv} {r['unit']} → {p['verdict']}")
    return out


def render_markdown(rows: list[dict], backend: str, problems: list[str], notebooks: dict[str, str]) -> str:
    """The report as Markdown: machine, summary, notebooks, problems, then each paper's claims.

    Args:
        rows: one per declared claim (`record.collect`).
        backend: the backend the notebooks ran on, in words.
        problems: claims checked by no cell or by several, ids the registry does not declare.
        notebooks: each notebook's status ("ok (97 s)" or "FAILED: ...").
    """
    counts = summary(rows)
    lines = ["# Reproduction report", "", f"Machine: {machine()}", "", f"Backend: {backend}", "", "## Summary", ""]
    lines += ["| paper | " + " | ".join(STATUSES) + " |", "|---" * (len(STATUSES) + 1) + "|"]
    lines += [f"| {p} | " + " | ".join(str(c[s]) for s in STATUSES) + " |" for p, c in counts.items()]
    lines += ["", "## Notebooks", ""] + [f"- `{name}`: {status}" for name, status in notebooks.items()]
    if problems:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in problems]
    for paper in counts:
        mine = [r for r in rows if r["paper"] == paper]
        lines += ["", f"## {paper}", "", table(mine)]
        for r in mine:
            where = f"{r['notebook']}, cell [{r['cell']}]" if r["notebook"] else "not checked"
            extra = "; ".join(x for x in (r["holds_over"], r["details"]) if x)
            lines.append(f"\n- `{r['id']}` ({where}). Assumes: {'; '.join(r['assumptions']) or 'nothing chosen'}."
                         + (f" {extra}" if extra else ""))
        sweeps = [r for r in mine if r["sweep"]]
        if sweeps:
            lines += ["", "### Sensitivity", ""] + [line for r in sweeps for line in _sensitivity(r)]
    return "\n".join(lines) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top}
th{background:#f3f3f3}.v-reproduced{background:#d9f2d9}.v-exceeds{background:#fff2c2}.v-partly{background:#ffe3c2}
.v-not{background:#f7d4d4}.v-comparable,.v-checked{background:#e6e6e6}img{max-width:36rem;display:block}
small{color:#555}td:first-child{width:46%}table.sweep td{width:auto;font-size:.85em;padding:.1rem .4rem}"""


_VCLASS = dict(zip(STATUSES, ("v-reproduced", "v-exceeds", "v-partly", "v-not", "v-comparable", "v-checked")))


def _sweep_html(r: dict) -> str:
    """A claim's sweep as a small table: assumption value, measured, verdict."""
    e, s = html.escape, r["sweep"]
    head = f"{e(s['assumption'])} ({e(s['unit'])})" if s["unit"] else e(s["assumption"])
    rows = [f"<table class='sweep'><tr><th>{head}</th><th>measured</th><th>verdict</th></tr>"]
    for p in s["points"]:
        iv = f" [{p['interval'][0]:.3g}, {p['interval'][1]:.3g}]" if p["interval"] else ""
        mark = " (default)" if p["value"] == s["default"] else ""
        rows.append(f"<tr><td>{p['value']:g}{mark}</td><td>{p['measured']:.3g}{iv}</td>"
                    f"<td class='{_VCLASS[p['verdict']]}'>{e(p['verdict'])}</td></tr>")
    return "".join(rows) + "</table>"


def render_html(rows: list[dict], backend: str, problems: list[str], notebooks: dict[str, str]) -> str:
    """The same report as one self-contained HTML page (figures inline as data URIs); arguments as for
    `render_markdown`."""
    e = html.escape
    counts = summary(rows)
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>Reproduction report</title><style>{_CSS}</style>",
           "</head><body><h1>Reproduction report</h1>",
           f"<p>Machine: {e(machine())}<br>Backend: {e(backend)}</p><h2>Summary</h2><table><tr><th>paper</th>"]
    out += [f"<th>{e(s)}</th>" for s in STATUSES] + ["</tr>"]
    for paper, c in counts.items():
        out.append(f"<tr><td>{e(paper)}</td>" + "".join(f"<td>{c[s]}</td>" for s in STATUSES) + "</tr>")
    out.append("</table><h2>Notebooks</h2><ul>")
    out += [f"<li><code>{e(n)}</code>: {e(s)}</li>" for n, s in notebooks.items()] + ["</ul>"]
    if problems:
        out += ["<h2>Problems</h2><ul>"] + [f"<li>{e(p)}</li>" for p in problems] + ["</ul>"]
    for paper in counts:
        out.append(f"<h2>{e(paper)}</h2><table><tr><th>claim</th><th>paper reports</th><th>we measure</th>"
                   "<th>rule</th><th>verdict</th></tr>")
        for r in (r for r in rows if r["paper"] == paper):
            notes = [r["holds_over"], r["details"], "Assumes: " + ("; ".join(r["assumptions"]) or "nothing chosen")]
            if r["notebook"]:
                notes.append(f"{r['notebook']}, cell [{r['cell']}]")
            sweep = _sweep_html(r) if r["sweep"] else ""
            png = r["figure_png"]
            figure = f"<img alt='{e(r['id'])}' src='data:image/png;base64,{png}'>" if png else ""
            out.append(
                f"<tr><td><b>{e(r['statement'])}</b><br><small>{e(r['id'])}<br>"
                + "<br>".join(e(n) for n in notes if n) + f"</small>{sweep}{figure}</td>"
                f"<td>{e(r['paper_value'])}<br><small>{e(r['source'])}</small></td>"
                f"<td>{e(r['measured_text'])}</td><td>{e(r['rule'])}</td>"
                f"<td class='{_VCLASS[r['verdict']]}'>{e(r['verdict'])}</td></tr>"
            )
        out.append("</table>")
    return "\n".join(out) + "\n</body></html>\n"
