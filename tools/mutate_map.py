"""The pytest plugin of ``tools/mutate.py``'s coverage run: which tests run which lines of the package.

Loaded with ``-p mutate_map`` (``tools/`` on ``PYTHONPATH``). Coverage of the files in ``$MUTATE_FILES``
(``os.pathsep``-separated) starts when this module is imported, before the package is; each test (setup, call and teardown, in every thread and task)
is its own coverage context. At the end the map goes to ``$MUTATE_MAP`` as JSON:
``{"lines": {file: {line: [test ids]}}, "durations": {test id: seconds}, "failed": [test ids]}``.
Lines run outside any test (at import) have the context ``""``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import coverage
import pytest

_coverage = coverage.Coverage(data_file=None, include=os.environ["MUTATE_FILES"].split(os.pathsep), config_file=False)
_coverage.start()
_durations: dict[str, float] = {}
_failed: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    _coverage.switch_context(item.nodeid)
    started = time.monotonic()
    yield
    _durations[item.nodeid] = round(time.monotonic() - started, 3)
    _coverage.switch_context("")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed and report.nodeid not in _failed:
        _failed.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _coverage.stop()
    data = _coverage.get_data()
    lines: dict[str, dict[str, Any]] = {}
    for name in data.measured_files():
        by_line = data.contexts_by_lineno(name)
        lines[str(Path(name).resolve())] = {str(line): sorted(set(tests)) for line, tests in by_line.items()}
    target = Path(os.environ["MUTATE_MAP"])
    temporary = target.with_suffix(".tmp")
    temporary.write_text(json.dumps({"lines": lines, "durations": _durations, "failed": _failed}))
    temporary.replace(target)
