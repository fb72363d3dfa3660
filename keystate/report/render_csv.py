"""``--format csv``: one row per key, for spreadsheets and SIEMs (RFC 4180, UTF-8).

Lists are joined with ``; ``; a cell that a spreadsheet would run as a formula (it
starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return) is prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from keystate.report.gates import GateResult
from keystate.report.model import Report
from keystate.report.render_json import key_object

COLUMNS = (
    "account",
    "provider",
    "name",
    "manager",
    "owner",
    "ref",
    "id",
    "fingerprint",
    "description",
    "breadth",
    "permissions",
    "scope",
    "restrictions",
    "created_at",
    "age_days",
    "expires",
    "days_left",
    "last_used_at",
    "days_unused",
    "status",
    "active",
    "exposed",
    "exposure",
    "rotation_due",
    "lint",
    "declared",
    "drift",
)


def _cell(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # a number, negative or not, is never a formula
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "; ".join(f"{k}={v}" for k, v in value.items())
    elif isinstance(value, list):
        text = "; ".join(_item(v) for v in value)
    else:
        text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _item(value: object) -> str:
    if isinstance(value, dict):
        if "grant" in value:
            target = f" [{value['target']}]" if value.get("target") else ""
            return f"{value['grant']}{target}"
        if "rule" in value:
            return f"{value['rule']}: {value['message']}"
    return str(value)


def render(report: Report, gates: Sequence[GateResult] = ()) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in report.rows:
        obj = key_object(row, report.generated_at)
        writer.writerow([_cell(obj[c]) for c in COLUMNS])
    return out.getvalue()
