"""Types reach the app: `mypy --strict` over two small apps (tests/apps/). One uses the async and the
sync service with a pydantic schema and must pass with the content typed as the class; the other holds
typos (``scheme=``, ``model_nam=``...) that must each fail on their own line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parent / "apps"


def _mypy(tmp_path: Path, *files: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "cache"),
         *map(str, files)],
        capture_output=True, text=True, timeout=600,
    )
    return done.stdout + done.stderr


@pytest.mark.out_of_process
def test_the_front_door_is_typed_and_typos_fail_mypy_strict(tmp_path: Path) -> None:
    good, bad = APPS / "typed_app.py", APPS / "mistyped_app.py"
    output = _mypy(tmp_path, good, bad)
    assert not [line for line in output.splitlines() if re.match(rf"(?:.*/)?{re.escape(good.name)}:", line)], output
    found = {}
    for line in output.splitlines():
        match = re.match(rf"(?:.*/)?{re.escape(bad.name)}:(\d+): (error|note): (.*)", line)
        if match:
            found.setdefault(int(match[1]), []).append((match[2], match[3]))
    for number, source in enumerate(bad.read_text().splitlines(), 1):
        if source.endswith("# error"):
            assert any(kind == "error" for kind, _ in found.get(number, [])), (number, source, output)
        elif "# reveal:" in source:
            want = source.split("# reveal:")[1].strip()
            revealed = [text for kind, text in found.get(number, []) if text.startswith("Revealed type")]
            assert revealed == [f'Revealed type is "{want}"'], (number, revealed, output)
        else:
            assert number not in found, (number, found[number])
