"""``--format markdown``: a plan as a pull-request comment.

Layout: the hidden marker ``<!-- keystate-plan -->`` (CI finds and updates its one
comment by it), the summary line first, warnings (the plan's own, replacements) and
refusals, one
table per account with changes, then per account a folded ``<details>`` block with the
Terraform-style text in a ``diff`` code block (symbols moved to the first column so
GitHub colours them: ``+`` green, ``-`` red, ``!`` orange for in-place changes).

Size guard: GitHub rejects comments over 65,536 characters. The comment is kept under
:data:`BUDGET` by folding, in this order, until it fits: the ``<details>`` of the
largest accounts are replaced by a pointer to the full plan, then the largest tables are
cut to their first rows ("… and N more"). The marker and the summary are never cut, and
a note at the top says what was left out.

Everything that comes from a configuration or a live key is escaped for Markdown tables
and HTML; code fences are longer than any backtick run they enclose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from keystate.durations import format_left
from keystate.model import LIFECYCLE, Action
from keystate.plan import AccountDiff, Change, Plan
from keystate.render import RenderOptions, counts_text
from keystate.render import text as text_renderer

MARKER = "<!-- keystate-plan -->"
GITHUB_LIMIT = 65_536
BUDGET = 60_000
_WORDS = {
    Action.CREATE: "create",
    Action.ADOPT: "adopt",
    Action.UPDATE: "update",
    Action.REPLACE: "replace",
    Action.DELETE: "delete",
    Action.DISABLE: "disable",
    Action.ROTATE: "rotate",
    Action.RETIRE: "retire",
    Action.RENAME: "rename",
    Action.FORGET: "forget",
}
_DEFAULT_NOTES = {
    Action.ADOPT: "brought under management; its value does not change",
    Action.REPLACE: "new key value; the old one stops working",
    Action.RENAME: "its value does not change",
    Action.FORGET: "marker removed; the key stays live, unmanaged",
}
_DIFF_SYMBOL = {"+": "+", "-": "-", "~": "!", "+/-": "!", "-/": "-"}
_LEADING_SYMBOL = re.compile(r"^(\s*)(\+/-|-/|[+~-])(\s)")


def escape(text: str) -> str:
    """Plain text safe inside a Markdown table cell (and HTML)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("|", "\\|").replace("`", "\\`").replace("*", "\\*").replace("_", "\\_")
    return " ".join(text.split())


def fence_for(content: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", content)), default=0)
    return "`" * max(3, longest + 1)


@dataclass
class _Section:
    account: AccountDiff
    rows: list[str]
    details: str
    row_limit: int | None = None
    details_omitted: bool = False

    @property
    def name(self) -> str:
        return self.account.account.name


def render(plan: Plan, options: RenderOptions, budget: int = BUDGET) -> str:
    sections = [_section(plan, a) for a in plan.accounts if a.changes]
    text = _assemble(plan, sections)
    for section in sorted(sections, key=lambda s: len(s.details), reverse=True):
        if len(text) <= budget:
            break
        section.details_omitted = True
        text = _assemble(plan, sections)
    while len(text) > budget:
        biggest = max(
            sections, key=lambda s: s.row_limit if s.row_limit is not None else len(s.rows)
        )
        current = biggest.row_limit if biggest.row_limit is not None else len(biggest.rows)
        if current <= 1:
            break
        biggest.row_limit = current // 2
        text = _assemble(plan, sections)
    return text


def _section(plan: Plan, account: AccountDiff) -> _Section:
    rows = [_row(change, plan.deliver_to(change)) for change in account.changes]
    one_account = Plan((account,), plan.owner, plan.created_at, default_sinks=plan.default_sinks)
    full = text_renderer.render(one_account, RenderOptions(color=False))
    blocks = full.split("keystate will perform the following actions:\n\n", 1)[-1]
    blocks = blocks.split("\nPlan: ", 1)[0].rstrip()
    return _Section(account, rows, _as_diff(blocks))


def _row(change: Change, sinks: tuple[str, ...]) -> str:
    fields = []
    for fc in change.fields:
        name = escape(fc.name)
        fields.append(f"**{name}** (forces replacement)" if fc.forces_replacement else name)
    note = change.note or _DEFAULT_NOTES.get(change.action, "")
    if change.detail and change.action in LIFECYCLE:
        note = f"{note} ({change.detail})" if note else change.detail
    note = escape(note)
    if sinks:
        where = "new value delivered to " + ", ".join(f"`{escape(s)}`" for s in sinks)
        note = f"{note}; {where}" if note else where
    ref = f" <sub>{escape(change.live.ref)}</sub>" if change.live else ""
    symbol = change.action.symbol
    return (
        f"| `{symbol}` {_WORDS[change.action]} | `{change.name}`{ref} | "
        f"{', '.join(fields)} | {note} |"
    )


def _as_diff(text: str) -> str:
    lines = []
    for line in text.splitlines():
        match = _LEADING_SYMBOL.match(line)
        if match:
            indent, symbol, space = match.groups()
            rest = line[match.end() :]
            lines.append(f"{_DIFF_SYMBOL[symbol]}{indent}{' ' * len(symbol)}{space}{rest}")
        else:
            lines.append(f" {line}" if line else "")
    return "\n".join(lines)


def _summary(plan: Plan) -> list[str]:
    counts = plan.counts()
    unmanaged = counts["unmanaged"]
    tail = (
        f" · {unmanaged} unmanaged key{'s' if unmanaged != 1 else ''} (never touched)"
        if unmanaged
        else ""
    )
    if not plan.has_changes and plan.refusals:
        return [f"**No changes can be applied:** `keystate apply` refuses this plan.{tail}"]
    if not plan.has_changes:
        return [f"**No changes.** Live keys match the configuration.{tail}"]
    return [f"**Plan:** {counts_text(counts)}{tail}"]


def _alerts(plan: Plan) -> list[str]:
    lines: list[str] = []
    replaced = [c.address for c in plan.changes if c.action is Action.REPLACE]
    if replaced:
        shown = ", ".join(f"`{a}`" for a in replaced[:10]) + (", …" if len(replaced) > 10 else "")
        lines += [
            "",
            "> [!WARNING]",
            f"> {len(replaced)} key{'s' if len(replaced) != 1 else ''} will be **replaced**: "
            f"new key values are created and the old ones stop working ({shown}).",
        ]
    rotated = [c.address for c in plan.changes if c.action is Action.ROTATE]
    if rotated:
        shown = ", ".join(f"`{a}`" for a in rotated[:10]) + (", …" if len(rotated) > 10 else "")
        lines += [
            "",
            "> [!IMPORTANT]",
            f"> {len(rotated)} key{'s' if len(rotated) != 1 else ''} will be **rotated**: new "
            f"values are delivered, and the old keys retire after their overlap ({shown}).",
        ]
    retiring = [
        f"`{a.account.name}/{r.name}` retires in {format_left(r.retire_at - plan.created_at)}"
        for a in plan.accounts
        for r in a.retiring
    ]
    if retiring:
        lines += [
            "",
            "> [!NOTE]",
            f"> Old keys of rotations, still working: {', '.join(retiring)}.",
        ]
    if plan.warnings:
        lines += ["", "> [!WARNING]"] + [f"> - {escape(w)}" for w in plan.warnings]
    if plan.refusals:
        lines += ["", "> [!CAUTION]", "> `keystate apply` will **refuse** this plan:"]
        lines += [f"> - {escape(reason)}" for reason in plan.refusals]
    force = plan.needs_force()
    if force:
        lines += ["", "> [!WARNING]", "> `keystate apply` will need **`--force`**:"]
        lines += [f"> - {escape(reason)}" for reason in force]
    return lines


def _drift(plan: Plan) -> list[str]:
    drift = plan.drift
    if not drift:
        return []
    lines = [
        "",
        "#### Drift: changed outside of keystate",
        "",
        "keystate last wrote these keys as the configuration still declares them; since then "
        "they were changed elsewhere. The plan puts them back.",
        "",
        "| key | changed fields |",
        "|---|---|",
    ]
    for change in drift:
        fields = ", ".join(escape(f) for f in change.changed_fields)
        lines.append(f"| `{change.address}` | {fields} |")
    return lines


def _assemble(plan: Plan, sections: list[_Section]) -> str:
    lines = [MARKER, "### keystate plan", "", *_summary(plan)]
    folded = _fold_note(sections)
    if folded:
        lines += ["", f"> [!NOTE]\n> {folded}"]
    lines += _alerts(plan)
    lines += _drift(plan)
    unchanged = [a.account.name for a in plan.accounts if not a.changes]
    for section in sections:
        lines += _table(section)
    if unchanged:
        lines += ["", f"No changes in: {', '.join(f'`{n}`' for n in unchanged)}."]
    for section in sections:
        lines += ["", *_details(section)]
    return "\n".join(lines) + "\n"


def _table(section: _Section) -> list[str]:
    account = section.account
    n = len(account.changes)
    extra = f" · {account.unchanged} unchanged" if account.unchanged else ""
    lines = [
        "",
        f"#### `{section.name}` ({account.schema.title}): {n} change{'s' if n != 1 else ''}{extra}",
        "",
        "| action | key | changed fields | note |",
        "|---|---|---|---|",
    ]
    rows = section.rows if section.row_limit is None else section.rows[: section.row_limit]
    lines += rows
    hidden = len(section.rows) - len(rows)
    if hidden:
        lines.append(f"| … | *and {hidden} more change{'s' if hidden != 1 else ''}* | | |")
    return lines


def _details(section: _Section) -> list[str]:
    name = section.name
    if section.details_omitted:
        return [
            f"<sub>The diff of `{name}` was left out to fit GitHub's comment limit: run "
            f"`keystate plan --account {name}`, or see the CI log or the saved plan.</sub>"
        ]
    fence = fence_for(section.details)
    return [
        f"<details><summary>Diff for <code>{name}</code></summary>",
        "",
        f"{fence}diff",
        section.details,
        fence,
        "",
        "</details>",
    ]


def _fold_note(sections: list[_Section]) -> str:
    dropped = [s.name for s in sections if s.details_omitted]
    cut = sum(len(s.rows) - s.row_limit for s in sections if s.row_limit is not None)
    if not dropped and not cut:
        return ""
    parts = []
    if dropped:
        parts.append(f"the diffs of {len(dropped)} account{'s' if len(dropped) != 1 else ''}")
    if cut:
        parts.append(f"{cut} table row{'s' if cut != 1 else ''}")
    return (
        f"This comment was shortened to fit GitHub's {GITHUB_LIMIT:,}-character limit: "
        f"{' and '.join(parts)} left out. The full plan is in the CI log and the saved plan."
    )
