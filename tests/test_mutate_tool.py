"""tools/mutate.py (``make mutate``) tells an equivalent spelling from a change: deleting a function's
last ``return None`` changes nothing and is not drawn; deleting any other statement is."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _tool() -> Any:
    spec = importlib.util.spec_from_file_location("mutate_tool", ROOT / "tools" / "mutate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutate_tool"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["mutate_tool"]
    return module


SOURCE = '''
def check(x):
    if x < 0:
        return "negative"
    if x == 0:
        return None
    print(x)
    return None


def ends_bare(x):
    print(x)
    return
'''


def test_only_deletions_that_change_behaviour_are_drawn(tmp_path: Path) -> None:
    tool = _tool()
    path = tmp_path / "module.py"
    path.write_text(SOURCE)
    deletions = {(m.line, m.before) for m in tool.mutants_of(path) if m.kind == "deletion" and tool.changes_the_code(m)}
    assert (8, "return None") not in deletions and (13, "return") not in deletions  # last statements: no change
    assert {(4, 'return "negative"'), (6, "return None"), (7, "print(x)"), (12, "print(x)")} <= deletions


def test_shards_split_a_sample_into_disjoint_parts_that_cover_it() -> None:
    import pytest

    tool = _tool()
    sample = list(range(7))
    parts = [sample[tool._shard(f"{k}/3")] for k in range(3)]
    assert parts == [[0, 3, 6], [1, 4], [2, 5]]
    for bad in ("3/3", "-1/2", "x", "1/0"):
        with pytest.raises(SystemExit, match="--shard"):
            tool._shard(bad)
