"""Plan renderers: ``text`` (Terraform-style), ``json`` (versioned), ``markdown`` (PRs).

Each module exposes ``render(plan, options) -> str``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RenderOptions:
    color: bool = False
    show_unmanaged: bool = False
