"""The command's exit statuses, shared by every command module.

0 success, 1 an unexpected error (a bug: ``--debug`` shows its traceback), 2 usage or configuration error, 3 API error, 4 invalid structured output (the batch
command adds 5, stopped by ``--max-cost``, and 130 after Ctrl-C).
"""

from __future__ import annotations

from ..errors import ConfigurationError, StructuredOutputError

__all__ = ["EXIT_OK", "EXIT_BUG", "EXIT_USAGE", "EXIT_API", "EXIT_OUTPUT", "exit_status"]

EXIT_OK, EXIT_BUG, EXIT_USAGE, EXIT_API, EXIT_OUTPUT = 0, 1, 2, 3, 4


def exit_status(error: type[BaseException]) -> int:
    """The exit status for an error class: 2 configuration, 4 invalid structured output, 3 API (and any other)."""
    if issubclass(error, ConfigurationError):
        return EXIT_USAGE
    if issubclass(error, StructuredOutputError):
        return EXIT_OUTPUT
    return EXIT_API
