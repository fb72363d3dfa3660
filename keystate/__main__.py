"""``python -m keystate``."""

from keystate.cli import main

main()
