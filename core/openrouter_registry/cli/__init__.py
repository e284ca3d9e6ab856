"""Adapter: the `openrouter-registry` command (also ``python -m openrouter_registry``).

`main` (in ``commands``) parses the command line and runs one command: ``commands`` itself (plugins, resolve, generate,
demo), ``models``, ``batch``, ``plugin`` (new-plugin), ``generate``; ``exits`` holds the exit
statuses they share, ``terminal`` the escaping of upstream text on its way to the terminal. A command calls the service and the registry like any app does and never
re-implements a step of a generation.

May import: every stage below it and the test kit (the offline demo). Nothing imports it but the
console script and ``__main__``. Every module here is internal; the command line is the interface.
"""

from __future__ import annotations

from .commands import main

__all__ = ["main"]
