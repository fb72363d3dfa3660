"""Plan renderers: ``text`` (Terraform-style), ``json`` (versioned), ``markdown`` (PRs).

Each format is a module with one function of one signature, ``render(plan, options) ->
str`` (:class:`Renderer`); :func:`renderer` loads the one asked for (so that a run
imports only the renderer it uses), typed so that mypy checks each against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from keystate.plan import Plan


@dataclass(frozen=True)
class RenderOptions:
    color: bool = False
    show_unmanaged: bool = False


class Renderer(Protocol):
    def __call__(self, plan: Plan, options: RenderOptions) -> str: ...


def _text() -> Renderer:
    from keystate.render.text import render

    return render


def _json() -> Renderer:
    from keystate.render.json import render

    return render


def _markdown() -> Renderer:
    from keystate.render.markdown import render

    return render


_RENDERERS: Final = {"text": _text, "json": _json, "markdown": _markdown}
FORMATS: Final = tuple(_RENDERERS)


def counts_text(counts: dict[str, int]) -> str:
    """``N to create, ..., N to delete`` (``N to disable`` and the lifecycle actions only
    when there are some), for the summary line of every format."""
    text = (
        f"{counts['create']} to create, {counts['update']} to update, {counts['adopt']} to "
        f"adopt, {counts['replace']} to replace, {counts['delete']} to delete"
    )
    if counts["disable"]:
        text += f", {counts['disable']} to disable"
    for action in ("rotate", "retire", "rename", "forget"):
        if counts.get(action):
            text += f", {counts[action]} to {action}"
    return text


def renderer(fmt: str) -> Renderer:
    """The renderer of a format (one of :data:`FORMATS`)."""
    try:
        return _RENDERERS[fmt]()
    except KeyError:
        raise ValueError(f"unknown plan format {fmt!r} (one of: {', '.join(FORMATS)})") from None
