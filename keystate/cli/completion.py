"""``keystate completion bash|zsh|fish``: click's shell completion script.

Account names complete from the configuration (:func:`keystate.cli.app.complete_accounts`).
"""

from __future__ import annotations

import click

from keystate.cli.app import cli, current_ui
from keystate.errors import EXIT_OK


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> int:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    \b
    bash: eval "$(keystate completion bash)"     (in ~/.bashrc)
    zsh:  eval "$(keystate completion zsh)"      (in ~/.zshrc)
    fish: keystate completion fish > ~/.config/fish/completions/keystate.fish
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None
    script = completer(cli, {}, "keystate", "_KEYSTATE_COMPLETE").source()
    current_ui().out(script, nl=not script.endswith("\n"))
    return EXIT_OK
