"""The report as Markdown and as one self-contained HTML page: machine, summary by kind and by paper, the verdicts
that hang on an assumption, notebooks, problems, then each paper's claims with their sweeps and figures."""

from __future__ import annotations

import base64
import html
import os
import platform

from mlsys_core import claims
from mlsys_core.report import tornado
from mlsys_core.report.record import STATUSES, table, verdict_text


def summary(rows: list[dict], key: str = "paper") -> dict[str, dict[str, int]]:
    """Verdict counts per value of `key` ("paper" or "kind"), in order of appearance, every status present."""
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        counts.setdefault(r[key] or "undeclared", dict.fromkeys(STATUSES, 0))[r["verdict"]] += 1
    return counts


def by_kind(rows: list[dict]) -> dict[str, dict[str, int]]:
    """Verdict counts per kind of claim, in the order of `claims.KINDS`."""
    counts = summary(rows, "kind")
    return {k: counts[k] for k in (*claims.KINDS, "undeclared") if k in counts}


def dependent(rows: list[dict]) -> list[dict]:
    """The checked claims whose verdict changes somewhere in a declared assumption's range."""
    return [r for r in rows if r["depends_on"]]


def machine() -> str:
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _counts_md(title: str, counts: dict[str, dict[str, int]]) -> list[str]:
    lines = [f"| {title} | " + " | ".join(STATUSES) + " |", "|---" * (len(STATUSES) + 1) + "|"]
    return lines + [f"| {k} | " + " | ".join(str(c[s]) for s in STATUSES) + " |" for k, c in counts.items()]


def _point(p: dict, unit: str) -> str:
    iv = f" [{p['interval'][0]:.3g}, {p['interval'][1]:.3g}]" if p["interval"] else ""
    return f"{p['measured']:.3g}{iv} {unit}".rstrip()


def _parameters_md(r: dict) -> list[str]:
    out = []
    for a in r["parameters"]:
        unit = f" {a['unit']}" if a["unit"] else ""
        out.append(f"  - *{a['label']}*: default {a['default']:g}{unit}, range "
                   f"{a['values'][0]:g}-{a['values'][-1]:g}{unit} ({a['source']})")
    for s in r["sweeps"]:
        unit = f" {s['unit']}" if s["unit"] else ""
        points = "; ".join(f"{p['value']:g}{unit}: {_point(p, r['unit'])} → {p['verdict']}" for p in s["points"])
        out.append(f"  - over {s['label']} (by the {s['by']}): {points}")
    return out


def render_markdown(rows: list[dict], backend: str, problems: list[str], notebooks: dict[str, str]) -> str:
    """The report as Markdown: machine, summaries, notebooks, problems, then each paper's claims.

    Args:
        rows: one per declared claim (`record.collect`, then the report's sweeps).
        backend: the backend the notebooks ran on, in words.
        problems: claims checked by no cell or by several, ids the registry does not declare, failed sweeps.
        notebooks: each notebook's status ("ok (97 s)" or "FAILED: ..."), and the sweeps'.
    """
    counts = summary(rows)
    lines = ["# Reproduction report", "", f"Machine: {machine()}", "", f"Backend: {backend}", "", "## Summary", ""]
    lines += ["Reproductions of a paper's figure, tests of the survey's assertions and sanity checks (true by",
              "construction) are counted apart; a sanity check is never a reproduction.", ""]
    lines += _counts_md("kind", by_kind(rows)) + [""] + _counts_md("paper", counts)
    hanging = dependent(rows)
    lines += ["", "## Verdicts that depend on an assumption", ""]
    lines += [f"- `{r['id']}` ({verdict_text(r)}): {r['flip']}" for r in hanging] or ["- none"]
    lines += ["", "## Notebooks", ""] + [f"- `{name}`: {status}" for name, status in notebooks.items()]
    if problems:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in problems]
    for paper in counts:
        mine = [r for r in rows if r["paper"] == paper]
        lines += ["", f"## {paper}", "", table(mine)]
        if any(tornado.swings(r) for r in mine):
            lines += ["", f"![Sensitivity of {paper}]({tornado.slug(paper)})"]
        for r in mine:
            where = f"{r['notebook']}, cell [{r['cell']}]" if r["notebook"] else "not checked"
            assumes = "; ".join(r["assumptions"]) or "nothing chosen"
            lines.append(f"\n- `{r['id']}` ({r['kind'] or 'kind undeclared'}; {where}). Assumes: {assumes}."
                         + (f" {r['details']}" if r["details"] else ""))
            lines += _parameters_md(r)
            if r["flip"]:
                lines.append(f"  - **What changes the verdict:** {r['flip']}")
    return "\n".join(lines) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top}
th{background:#f3f3f3}.v-reproduced{background:#d9f2d9}.v-exceeds{background:#fff2c2}.v-partly{background:#ffe3c2}
.v-not{background:#f7d4d4}.v-inconclusive{background:#dde7f7}.v-comparable,.v-checked{background:#e6e6e6}
img{max-width:40rem;display:block}small{color:#555}td:first-child{width:46%}
table.sweep td{width:auto;font-size:.85em;padding:.1rem .4rem}"""


_VCLASS = dict(zip(STATUSES, ("v-reproduced", "v-exceeds", "v-partly", "v-not", "v-inconclusive", "v-comparable",
                              "v-checked"), strict=True))


def _sweep_html(r: dict, s: dict) -> str:
    """One sweep as a small table: assumption value, measured, verdict."""
    e = html.escape
    head = f"{e(s['label'])} ({e(s['unit'])})" if s["unit"] else e(s["label"])
    out = [f"<table class='sweep'><tr><th>{head}</th><th>measured</th><th>verdict</th></tr>"]
    for p in s["points"]:
        mark = " (default)" if p["value"] == s["default"] else ""
        out.append(f"<tr><td>{p['value']:g}{mark}</td><td>{e(_point(p, ''))}</td>"
                   f"<td class='{_VCLASS[p['verdict']]}'>{e(p['verdict'])}</td></tr>")
    return "".join(out) + f"</table><small>range from: {e(s['source'])}; measured by the {e(s['by'])}</small>"


def _counts_html(title: str, counts: dict[str, dict[str, int]]) -> list[str]:
    e = html.escape
    out = [f"<table><tr><th>{e(title)}</th>"] + [f"<th>{e(s)}</th>" for s in STATUSES] + ["</tr>"]
    out += [f"<tr><td>{e(k)}</td>" + "".join(f"<td>{c[s]}</td>" for s in STATUSES) + "</tr>" for k, c in counts.items()]
    return out + ["</table>"]


def render_html(rows: list[dict], backend: str, problems: list[str], notebooks: dict[str, str],
                figures: dict[str, bytes | None] | None = None) -> str:
    """The same report as one self-contained HTML page (figures inline as data URIs); arguments as for
    `render_markdown`, and `figures`: each paper's tornado PNG (`tornado.png`), drawn here when not given."""
    e = html.escape
    counts = summary(rows)
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>Reproduction report</title><style>{_CSS}</style>",
           "</head><body><h1>Reproduction report</h1>",
           f"<p>Machine: {e(machine())}<br>Backend: {e(backend)}</p><h2>Summary</h2>",
           "<p>Reproductions, survey tests and sanity checks are counted apart.</p>"]
    out += _counts_html("kind", by_kind(rows)) + _counts_html("paper", counts)
    out.append("<h2>Verdicts that depend on an assumption</h2><ul>")
    out += [f"<li><code>{e(r['id'])}</code> ({e(verdict_text(r))}): {e(r['flip'])}</li>" for r in dependent(rows)]
    out.append("</ul><h2>Notebooks</h2><ul>")
    out += [f"<li><code>{e(n)}</code>: {e(s)}</li>" for n, s in notebooks.items()] + ["</ul>"]
    if problems:
        out += ["<h2>Problems</h2><ul>"] + [f"<li>{e(p)}</li>" for p in problems] + ["</ul>"]
    for paper in counts:
        out.append(f"<h2>{e(paper)}</h2>")
        picture = figures[paper] if figures is not None else tornado.png(rows, paper)
        if picture:
            data = base64.b64encode(picture).decode("ascii")
            out.append(f"<img alt='sensitivity of {e(paper)}' src='data:image/png;base64,{data}'>")
        out.append("<table><tr><th>claim</th><th>paper reports</th><th>we measure</th><th>rule</th>"
                   "<th>verdict</th></tr>")
        for r in (r for r in rows if r["paper"] == paper):
            notes = [r["kind"], r["details"], "Assumes: " + ("; ".join(r["assumptions"]) or "nothing chosen")]
            if r["notebook"]:
                notes.append(f"{r['notebook']}, cell [{r['cell']}]")
            if r["flip"]:
                notes.append(f"What changes the verdict: {r['flip']}")
            sweeps = "".join(_sweep_html(r, s) for s in r["sweeps"])
            png = r["figure_png"]
            figure = f"<img alt='{e(r['id'])}' src='data:image/png;base64,{png}'>" if png else ""
            out.append(
                f"<tr><td><b>{e(r['statement'])}</b><br><small>{e(r['id'])}<br>"
                + "<br>".join(e(n) for n in notes if n) + f"</small>{sweeps}{figure}</td>"
                f"<td>{e(r['paper_value'])}<br><small>{e(r['source'])}</small></td>"
                f"<td>{e(r['measured_text'])}</td><td>{e(r['rule'])}</td>"
                f"<td class='{_VCLASS[r['verdict']]}'>{e(verdict_text(r))}</td></tr>"
            )
        out.append("</table>")
    return "\n".join(out) + "\n</body></html>\n"
