"""Every command has help and is documented; the README keeps its two front-door commands."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from keystate.cli import cli

ROOT = Path(__file__).parent.parent


def all_commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, command in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        out.append((full, command))
        if isinstance(command, click.Group):
            out += all_commands(command, full + " ")
    return out


def test_every_command_has_help_and_is_documented() -> None:
    docs = (ROOT / "docs" / "commands.md").read_text()
    for name, command in all_commands(cli):
        assert command.help, f"{name} has no help"
        result = CliRunner().invoke(cli, [*name.split(), "--help"])
        assert result.exit_code == 0, name
        assert f"keystate {name}" in docs, f"docs/commands.md does not document `keystate {name}`"
        if not isinstance(command, click.Group):
            for param in command.params:
                if isinstance(param, click.Option) and param.opts != ["--help"]:
                    assert any(o in docs for o in param.opts), (
                        f"docs/commands.md does not mention {name} {param.opts}"
                    )


def test_readme_front_door() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
