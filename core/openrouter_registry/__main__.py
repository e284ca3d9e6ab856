"""`python -m openrouter_registry` runs the CLI."""

from .cli import main

raise SystemExit(main())
