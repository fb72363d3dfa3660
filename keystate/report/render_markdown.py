"""``--format markdown``: the review as an issue or pull-request comment.

The hidden marker ``<!-- keystate-report -->`` first (a scheduled job finds and updates
its one issue by it), then the summary, the tripped gates, the findings, and one folded
table of keys per account. The same size guard as plans keeps it under GitHub's
65,536-character limit: the per-account key tables go first (largest first), then the
findings table is cut to its first rows; a note says what was left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from keystate import kinds
from keystate.render.markdown import BUDGET, GITHUB_LIMIT, escape
from keystate.report.gates import GateResult
from keystate.report.model import KeyRow, Report

MARKER = "<!-- keystate-report -->"


def _date(moment: datetime | None) -> str:
    return "—" if moment is None else kinds.format_timestamp(moment)[:10]


def findings(row: KeyRow, report: Report) -> list[str]:
    """Everything a reviewer should look at for this key, one phrase each."""
    now = report.generated_at
    out: list[str] = []
    if row.exposed:
        out.append(f"exposed ({row.exposure})" if row.exposure else "exposed")
    if row.declared is False:
        out.append("managed but no longer declared")
    if row.drift:
        out.append(f"drift: {', '.join(row.drift)}")
    unused = row.days_unused(now)
    if row.active and unused is not None and unused >= report.unused_days:
        out.append(f"unused for {unused} days")
    out += [f"{f.message} [{f.rule}]" for f in row.lint]
    return out


def _summary(report: Report) -> list[str]:
    s = report.summary
    n = len(report.accounts)
    lines = [
        f"{s.keys} live key{'s' if s.keys != 1 else ''} in {n} account{'s' if n != 1 else ''} "
        f"(generated {kinds.format_timestamp(report.generated_at)}).",
        "",
        "| managed | unmanaged | foreign | credential | write/admin | no expiry "
        f"| unused ≥{report.unused_days}d | exposed | inactive | with findings | drifted |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {s.managed} | {s.unmanaged} | {s.foreign} | {s.credential} | {s.write_or_admin} "
        f"| {s.no_expiry} | {s.unused} | {s.exposed} | {s.inactive} | {s.with_findings} "
        f"| {s.drifted} |",
    ]
    return lines


def _gates(gates: Sequence[GateResult]) -> list[str]:
    tripped = [g for g in gates if g.tripped]
    if not tripped:
        return ["", "Every `--fail-on` gate passed."] if gates else []
    lines = ["", "> [!CAUTION]", "> Policy gates tripped:"]
    for g in tripped:
        shown = ", ".join(f"`{escape(k)}`" for k in g.keys[:10])
        more = f" and {len(g.keys) - 10} more" if len(g.keys) > 10 else ""
        lines.append(f"> - `{escape(g.rule)}`: {shown}{more}")
    return lines


def _finding_rows(report: Report) -> list[str]:
    rows = []
    for row in report.rows:
        for finding in findings(row, report):
            rows.append(f"| {_key(row)} | {row.manager.value} | {escape(finding)} |")
    return rows


def _key(row: KeyRow) -> str:
    """A key's name, with its ref when keystate does not manage it (labels repeat)."""
    name = f"`{escape(row.account)}/{escape(row.name)}`"
    if row.address.endswith(row.ref):
        name += f" <sub>{escape(row.ref)}</sub>"
    return name


def _key_table(report: Report, account: str) -> tuple[str, list[str]]:
    now = report.generated_at
    rows = [r for r in report.rows if r.account == account]
    lines = [
        "| key | manager | permissions | expires | last used | status |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        perms = ", ".join(f"{p.grant}[{p.target}]" if p.target else p.grant for p in r.permissions)
        used = _date(r.last_used_at) if r.usage_known else "n/a"
        if r.usage_known and r.last_used_at is None:
            used = "never"
        age = r.age_days(now)
        name = f"`{escape(r.name)}`" + (f" ({age}d old)" if age is not None else "")
        lines.append(
            f"| {name} | {r.manager.value} | {escape(perms) or '—'} | {_date(r.expires_at)} "
            f"| {used} | {escape(r.status)} |"
        )
    return f"{len(rows)} key{'s' if len(rows) != 1 else ''}", lines


def render(report: Report, gates: Sequence[GateResult] = (), budget: int = BUDGET) -> str:
    finding_rows = _finding_rows(report)
    tables = {a.name: _key_table(report, a.name) for a in report.accounts}
    titles = {a.name: a.title for a in report.accounts}
    dropped: list[str] = []
    limit: int | None = None
    while True:
        text = _assemble(report, gates, finding_rows, tables, titles, dropped, limit)
        if len(text) <= budget:
            return text
        kept = [n for n in tables if n not in dropped]
        if kept:
            dropped.append(max(kept, key=lambda n: sum(len(x) for x in tables[n][1])))
            continue
        limit = len(finding_rows) // 2 if limit is None else limit // 2
        if limit == 0:
            return text[: budget - 200] + "\n\n*(cut to fit)*\n"


def _assemble(
    report: Report,
    gates: Sequence[GateResult],
    finding_rows: list[str],
    tables: dict[str, tuple[str, list[str]]],
    titles: dict[str, str],
    dropped: list[str],
    limit: int | None,
) -> str:
    lines = [MARKER, "### keystate access review", "", *_summary(report)]
    cut = len(finding_rows) - limit if limit is not None else 0
    if dropped or cut:
        parts = []
        if dropped:
            parts.append(f"the key tables of {len(dropped)} account(s)")
        if cut:
            parts.append(f"{cut} finding(s)")
        lines += [
            "",
            "> [!NOTE]",
            f"> Shortened to fit GitHub's {GITHUB_LIMIT:,}-character limit: "
            f"{' and '.join(parts)} left out. The HTML, JSON and CSV reports have everything.",
        ]
    lines += _gates(gates)
    lines += ["", "#### Findings", ""]
    if finding_rows:
        shown = finding_rows if limit is None else finding_rows[:limit]
        lines += ["| key | manager | finding |", "|---|---|---|", *shown]
        if cut:
            lines.append(f"| … | | *and {cut} more* |")
    else:
        lines.append("No findings.")
    for name, (count, table) in tables.items():
        lines.append("")
        if name in dropped:
            lines.append(
                f"<sub>The keys of `{escape(name)}` ({count}) were left out to fit: run "
                f"`keystate report --account {escape(name)}`.</sub>"
            )
            continue
        lines += [
            f"<details><summary><code>{escape(name)}</code> ({escape(titles[name])}): "
            f"{count}</summary>",
            "",
            *table,
            "",
            "</details>",
        ]
    return "\n".join(lines) + "\n"
