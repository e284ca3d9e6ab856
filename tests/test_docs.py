"""Every Python code block of the README and of the docs site (docs/) runs as written.

Each block runs in its own interpreter against the local OpenRouter-compatible server (its URL and key in
``OPENROUTER_BASE_URL`` / ``OPENROUTER_API_KEY``, nothing else of the environment's ``OPENROUTER_*``), the
way a reader pastes it: a script, or, for a block with ``await`` at its top level, a notebook cell (run on
a running event loop, as Jupyter does). A block that needs more than that (a plugin module, a Parlant
server) is marked ``<!-- name: tests/test_x.py runs this block -->`` and run by that test; this test
checks that the named test exists and refers to the block's marker. The site itself builds with
``mkdocs build --strict`` when MkDocs is installed (``make docs``; CI runs it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from openrouter_registry.testing import FakeOpenRouter

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"(?:<!-- (?P<marker>[^>]*?) -->\n)?```python\n(?P<source>.*?)```", re.DOTALL)
RUN_BY = re.compile(r"^(?P<name>[\w-]+)[:;].*?(?P<test>tests/test_\w+\.py) runs this block")

#: Runs a block as a script, or as a notebook cell when it awaits at its top level.
RUNNER = """
import ast, asyncio, sys
source = open(sys.argv[1], encoding="utf-8").read()
code = compile(source, sys.argv[1], "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
result = eval(code, {"__name__": "__main__"})
if asyncio.iscoroutine(result):
    asyncio.run(result)
"""


def blocks() -> list[tuple[str, str | None, str]]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for index, match in enumerate(BLOCK.finditer(text), 1):
            found.append((f"{page.relative_to(ROOT)}#{index}", match["marker"], match["source"]))
    return found


BLOCKS = blocks()


def test_the_docs_have_code_to_run() -> None:
    pages = {name.split("#")[0] for name, _, _ in BLOCKS}
    assert len(BLOCKS) >= 20 and {"README.md", "docs/guides/options.md", "docs/guides/sync-and-async.md"} <= pages


@pytest.mark.parametrize(("name", "marker", "source"), BLOCKS, ids=[name for name, _, _ in BLOCKS])
def test_every_python_block_runs(name: str, marker: str | None, source: str, tmp_path: Path) -> None:
    run_by = RUN_BY.match(marker or "")
    if run_by is not None:  # run by the test it names, which must exist and find the block by its marker
        test = (ROOT / run_by["test"]).read_text(encoding="utf-8")
        assert f"<!-- {run_by['name']}" in test, f"{run_by['test']} does not look for <!-- {run_by['name']} ..."
        return
    script = tmp_path / "block.py"
    script.write_text(source, encoding="utf-8")
    with FakeOpenRouter() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
        env.update(OPENROUTER_API_KEY=server.api_key, OPENROUTER_BASE_URL=server.base_url,
                   OPENROUTER_CACHE_DIR=str(tmp_path / "cache"))
        done = subprocess.run([sys.executable, "-c", RUNNER, str(script)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr


@pytest.mark.out_of_process
@pytest.mark.skipif(shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None,
                    reason="the docs toolchain is not installed (make docs installs it)")
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    assert mkdocs is not None
    done = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "guides" / "options" / "index.html").is_file()
    assert "OpenRouterSyncService" in (tmp_path / "site" / "reference" / "api" / "index.html").read_text()
