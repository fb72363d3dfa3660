"""``--format html``: the review as one self-contained page.

Inline CSS, JavaScript and SVG only; a Content-Security-Policy forbids every request,
so the page works from a CI artifact or an e-mail and cannot call anywhere. Sections:
summary, policy gates, permission matrix (keys x permissions per account, coloured by
breadth), age and expiry charts (SVG histograms, which stay small at any key count), and
a table of every key that sorts (click a column) and filters (text, manager, "with
findings"). Without JavaScript the table is simply complete. Dark mode follows the
system; printing shows every row. Everything that comes from a key is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache, lru_cache
from html import escape
from importlib.resources import files

from keystate import kinds
from keystate._version import __version__
from keystate.contract import Breadth
from keystate.report.gates import GateResult
from keystate.report.model import KeyRow, Report, Setting
from keystate.report.render_markdown import findings

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
AGE_BUCKETS = ((30, "< 30 d"), (90, "30–90 d"), (180, "90–180 d"), (365, "180 d–1 y"))
LEFT_BUCKETS = ((14, "< 14 d"), (90, "14–90 d"), (365, "90 d–1 y"))


@cache
def _asset(name: str) -> str:
    """The page's stylesheet or script (keystate/report/assets/), inlined in the page."""
    return files("keystate.report").joinpath("assets", name).read_text(encoding="utf-8")


def _e(text: object) -> str:
    return _escaped(str(text))


@lru_cache(maxsize=1 << 16)
def _escaped(text: str) -> str:
    """HTML-escaped text; remembered, as a page repeats the same grants, accounts,
    statuses and dates thousands of times."""
    return escape(text, quote=True)


def _date(moment: datetime | None) -> str:
    return "" if moment is None else kinds.format_timestamp(moment)[:10]


def render(report: Report, gates: Sequence[GateResult] = ()) -> str:
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="color-scheme" content="light dark">',
        f"<title>keystate access review — {_e(_date(report.generated_at))}</title>",
        f"<style>{_asset('report.css')}</style></head><body>",
        '<a class="skip" href="#keys">Skip to the key table</a>',
        "<header><h1>Access review</h1>",
        f"<p>{len(report.rows)} live keys in {len(report.accounts)} account(s), read "
        f"{_e(kinds.format_timestamp(report.generated_at))} by keystate {_e(__version__)}"
        + (f", owner <code>{_e(report.owner)}</code>" if report.owner else "")
        + ". Key values are never shown: keys are named by fingerprint or id.</p></header>",
        "<main>",
        _summary(report),
        _gates(gates),
        _matrix(report),
        _charts(report),
        _table(report),
        "</main>",
        f"<script>{_asset('report.js')}</script></body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _summary(report: Report) -> str:
    s = report.summary
    cards = [
        ("keys", s.keys, ""),
        ("managed", s.managed, ""),
        ("unmanaged", s.unmanaged, "warn" if s.unmanaged else ""),
        ("foreign owner", s.foreign, ""),
        ("write or admin rights", s.write_or_admin, "warn" if s.write_or_admin else ""),
        ("without expiry", s.no_expiry, "warn" if s.no_expiry else ""),
        (f"unused ≥ {report.unused_days} d", s.unused, "warn" if s.unused else ""),
        ("exposed", s.exposed, "bad" if s.exposed else ""),
        ("with lint findings", s.with_findings, "warn" if s.with_findings else ""),
        ("drifted", s.drifted, "warn" if s.drifted else ""),
    ]
    dl = "".join(
        f'<div class="card {cls}"><dt>{_e(label)}</dt><dd>{value}</dd></div>'
        for label, value, cls in cards
    )
    managers = ("managed", "unmanaged", "foreign", "credential")
    rows = "".join(
        f"<tr><th scope='row'>{_e(a.name)}</th><td>{_e(a.title)}</td>"
        + "".join(
            f"<td class='num'>{s.by_account.get(a.name, {}).get(m, 0)}</td>" for m in managers
        )
        + "</tr>"
        for a in report.accounts
    )
    head = "".join(f"<th scope='col' class='num'>{m}</th>" for m in managers)
    return (
        '<section id="summary" aria-labelledby="h-summary"><h2 id="h-summary">Summary</h2>'
        f'<dl class="cards">{dl}</dl>'
        "<table class='compact'><caption>Keys per account</caption><thead><tr>"
        f"<th scope='col'>account</th><th scope='col'>provider</th>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _gates(gates: Sequence[GateResult]) -> str:
    if not gates:
        return ""
    items = []
    for g in gates:
        if g.tripped:
            keys = ", ".join(f"<code>{_e(k)}</code>" for k in g.keys[:20])
            more = f" and {len(g.keys) - 20} more" if len(g.keys) > 20 else ""
            items.append(
                f"<li class='bad'><strong>{_e(g.rule)}</strong> tripped: {keys}{more}</li>"
            )
        else:
            items.append(f"<li class='ok'><strong>{_e(g.rule)}</strong> passed</li>")
    return (
        '<section id="gates" aria-labelledby="h-gates"><h2 id="h-gates">Policy gates</h2>'
        f"<ul>{''.join(items)}</ul></section>"
    )


def _matrix(report: Report) -> str:
    blocks = []
    for account in report.accounts:
        grants = report.grants(account.name)
        rows = [r for r in report.rows if r.account == account.name]
        if not rows:
            continue
        head = "".join(f"<th scope='col'><span>{_e(g)}</span></th>" for g in grants)
        body = "".join(_matrix_row(r, grants) for r in rows)
        blocks.append(
            f"<div class='scroll'><table class='matrix'><caption>{_e(account.name)} "
            f"({_e(account.title)})</caption><thead><tr><th scope='col'>key</th>{head}</tr>"
            f"</thead><tbody>{body}</tbody></table></div>"
        )
    legend = (
        "<p class='legend'>Each cell is a permission the key holds, with its target "
        "(<em>all</em>: every index or resource). "
        "<span class='b-read'>read</span> <span class='b-write'>write</span> "
        "<span class='b-admin'>admin-like</span></p>"
    )
    return (
        '<section id="matrix" aria-labelledby="h-matrix"><h2 id="h-matrix">Permission matrix'
        f"</h2>{legend}{''.join(blocks)}</section>"
    )


def _matrix_row(row: KeyRow, grants: list[str]) -> str:
    held: dict[str, list[tuple[str, Breadth]]] = {}
    for p in row.permissions:
        held.setdefault(p.grant, []).append((p.target or "all", p.breadth))
    cells = []
    for grant in grants:
        found = held.get(grant)
        if not found:
            cells.append("<td></td>")
            continue
        breadth = max((b for _, b in found), key=lambda b: b.rank)
        targets = ", ".join(t for t, _ in found)
        cells.append(
            f"<td class='b-{breadth.value}' title='{_e(grant)}: {_e(breadth.value)}'>"
            f"{_e(targets)}<span class='sr'> ({_e(breadth.value)})</span></td>"
        )
    label = f"{_e(row.name)} <small>{_e(row.manager.value)}</small>"
    return f"<tr><th scope='row'>{label}</th>{''.join(cells)}</tr>"


def _histogram(title: str, bars: list[tuple[str, int, str]]) -> str:
    """A horizontal bar chart in SVG: (label, count, css class) per bar."""
    width, label_w, bar_h, gap = 460, 110, 22, 8
    top = max((c for _, c, _ in bars), default=0) or 1
    height = len(bars) * (bar_h + gap) + gap
    items = []
    for i, (label, count, cls) in enumerate(bars):
        y = gap + i * (bar_h + gap)
        w = round((width - label_w - 50) * count / top)
        items.append(
            f"<g><text x='{label_w - 8}' y='{y + bar_h * 0.7:.0f}' text-anchor='end'>"
            f"{_e(label)}</text><rect class='{cls}' x='{label_w}' y='{y}' width='{max(w, 1)}' "
            f"height='{bar_h}' rx='3'><title>{_e(label)}: {count}</title></rect>"
            f"<text x='{label_w + max(w, 1) + 6}' y='{y + bar_h * 0.7:.0f}'>{count}</text></g>"
        )
    return (
        f"<figure><svg role='img' aria-label='{_e(title)}' viewBox='0 0 {width} {height}' "
        f"width='{width}' height='{height}'>{''.join(items)}</svg>"
        f"<figcaption>{_e(title)}</figcaption></figure>"
    )


def _charts(report: Report) -> str:
    now = report.generated_at
    active = [r for r in report.rows if r.active]
    ages = [r.age_days(now) for r in active]
    age_bars = []
    low = 0
    for high, label in AGE_BUCKETS:
        count = sum(1 for a in ages if a is not None and low <= a < high)
        age_bars.append((label, count, "c-ok" if high <= 180 else "c-warn"))
        low = high
    age_bars.append(("> 1 y", sum(1 for a in ages if a is not None and a >= 365), "c-bad"))
    age_bars.append(("unknown", sum(1 for a in ages if a is None), "c-muted"))
    lefts = [r.days_left(now) for r in report.rows]
    left_bars = [("expired", sum(1 for r in report.rows if r.expired), "c-muted")]
    low = 0
    for high, label in LEFT_BUCKETS:
        count = sum(
            1
            for r, d in zip(report.rows, lefts, strict=True)
            if not r.expired and d is not None and low <= d < high
        )
        left_bars.append((label, count, "c-warn" if high <= 14 else "c-ok"))
        low = high
    left_bars.append(
        (
            "> 1 y",
            sum(
                1
                for r, d in zip(report.rows, lefts, strict=True)
                if not r.expired and d is not None and d >= 365
            ),
            "c-ok",
        )
    )
    left_bars.append(("never", sum(1 for r in report.rows if r.expires_at is None), "c-bad"))
    return (
        '<section id="charts" aria-labelledby="h-charts"><h2 id="h-charts">Age and expiry'
        "</h2><div class='charts'>"
        + _histogram("Age of active keys", age_bars)
        + _histogram("Lifetime left of every key", left_bars)
        + "</div></section>"
    )


_COLUMNS = (
    ("account", "text"),
    ("key", "text"),
    ("manager", "text"),
    ("ref", "text"),
    ("permissions", "text"),
    ("scope", "text"),
    ("restrictions", "text"),
    ("age (d)", "num"),
    ("expires", "text"),
    ("days left", "num"),
    ("last used", "text"),
    ("status", "text"),
    ("rotation due", "text"),
    ("findings", "num"),
)


def _table(report: Report) -> str:
    head = "".join(
        f"<th scope='col' data-kind='{kind}'><button type='button'>{_e(label)}</button></th>"
        for label, kind in _COLUMNS
    )
    body = "".join(_table_row(r, report) for r in report.rows)
    managers = "".join(
        f"<option>{m}</option>" for m in ("managed", "unmanaged", "foreign", "credential")
    )
    return (
        '<section id="keys" aria-labelledby="h-keys"><h2 id="h-keys">Every key</h2>'
        "<form class='filters' role='search' onsubmit='return false'>"
        "<label>Filter <input id='q' type='search' placeholder='name, permission, ref…'></label>"
        "<label>Manager <select id='manager'><option value=''>any</option>"
        f"{managers}</select></label>"
        "<label><input id='flagged' type='checkbox'> only keys with findings</label>"
        "<output id='shown' aria-live='polite'></output></form>"
        "<div class='scroll'><table id='key-table' class='keys'>"
        "<caption>Every live key; select a column heading to sort</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div></section>"
    )


def _table_row(row: KeyRow, report: Report) -> str:
    now = report.generated_at
    found = findings(row, report)
    perms = "<br>".join(
        f"<span class='b-{p.breadth.value}'>{_e(p.grant)}</span>"
        + (f" <small>[{_e(p.target)}]</small>" if p.target else "")
        for p in row.permissions
    )
    age = row.age_days(now)
    left = row.days_left(now)
    used = (_date(row.last_used_at) or "never") if row.usage_known else "n/a"
    status = _e(row.status) + (f"<br><small>{_e(row.exposure)}</small>" if row.exposure else "")
    ref = _e(row.ref) + (f"<br><small>{_e(row.description)}</small>" if row.description else "")
    cells = [
        (_e(row.account) + f"<br><small>{_e(row.provider_title)}</small>", row.account),
        (f"<strong>{_e(row.name)}</strong>", row.name),
        (
            _e(row.manager.value) + (f"<br><small>{_e(row.owner)}</small>" if row.owner else ""),
            row.manager.value,
        ),
        (ref, row.ref),
        (perms, " ".join(p.grant for p in row.permissions)),
        (_settings(row.scope), ""),
        (_settings(row.restrictions), ""),
        ("" if age is None else str(age), "" if age is None else str(age)),
        (_date(row.expires_at) or "never", _date(row.expires_at) or "9999"),
        ("" if left is None else str(left), "" if left is None else str(left)),
        (used, used),
        (status, row.status),
        (_date(row.rotation_due), _date(row.rotation_due)),
        (
            "<ul>" + "".join(f"<li>{_e(f)}</li>" for f in found) + "</ul>" if found else "",
            str(len(found)),
        ),
    ]
    classes = " ".join(
        c
        for c, on in (
            ("exposed", row.exposed),
            ("inactive", not row.active),
            ("flagged", bool(found)),
        )
        if on
    )
    tds = "".join(f"<td data-sort='{_e(sort)}'>{html}</td>" for html, sort in cells)
    return (
        f"<tr class='{classes}' data-manager='{_e(row.manager.value)}' "
        f"data-findings='{len(found)}'>{tds}</tr>"
    )


def _settings(items: Sequence[Setting]) -> str:
    return "<br>".join(f"<small>{_e(s.field)}</small> {_e(s.text)}" for s in items)
