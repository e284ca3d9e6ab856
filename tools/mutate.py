"""A sampled mutation check: does the suite notice a small change of behaviour?

    python tools/mutate.py                       # the core modules this branch changed (against main)
    python tools/mutate.py replies/decode.py     # a named module (a path, or openrouter_registry.replies.decode)
    python tools/mutate.py --sample 80 --seed 7  # more mutants, a chosen sample
    python tools/mutate.py --list                # the sample without running it

``make mutate`` runs it (``make mutate MODULES=replies/decode.py ARGS="--sample 20"``).

How it works:

1. It measures which tests run which lines: the whole suite once under `coverage`, each test in its
   own context (every thread and task of the test counts). The map is kept in the venv, keyed by the
   contents of the sources and the tests, so the next run with the same tree starts at step 2.
2. It lists every mutant of the chosen modules: a comparison flipped (``<`` and ``<=``, ``==`` and
   ``!=``, ``in`` and ``not in``...), a number changed by one or a bool flipped, a condition negated,
   a returned value replaced by None, a statement of a function deleted, ``and`` and ``or`` swapped.
   It draws a seeded sample of them, as many of each kind as it can (``--sample``, ``--seed``; the
   seed is printed to rerun a sample).
3. For each mutant it writes the changed file, runs the tests that run its line (fastest first,
   stopping at the first failure, with a timeout), and puts the file back, bytes and timestamp,
   in a ``finally``. A mutant that a test fails on (or that times out) is killed; one that passes them
   all survives. A line that only runs at import (a module constant) gets every test of its module.
4. It prints the score and each survivor with its file, line, mutation and the tests it ran; it exits
   1 when a mutant survived, 0 when all were killed.

At the end it checks that every file it touched has its original bytes again (and says so). Should
the process be killed mid-mutant, the original is also in the venv's ``mutate-cache/backup`` and the
next run puts it back before doing anything else.

Lines the subprocess tests run (the CLI's) are not in the map; the tests marked ``out_of_process`` (pip,
mypy, mkdocs, a Parlant server, a benchmark: a child process does all their work) are left out of the
map's run, since they would add minutes and no line. ``--all-tests`` reruns each survivor against the
whole suite to be sure (slow: minutes per survivor). Equivalent mutants (no behaviour
changes) cannot be told apart by a tool: a survivor needs a look before a test is written for it.
"""

from __future__ import annotations

import argparse
import ast
import fcntl
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "core" / "openrouter_registry"
CACHE = Path(sys.prefix) / "mutate-cache"
PLUGIN_DIR = Path(__file__).resolve().parent

KINDS = ("comparison", "constant", "negation", "return-none", "deletion", "boolean")
_FLIPPED: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}
_DELETABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Raise, ast.Continue, ast.Break, ast.Return,
              ast.Delete)


# --- mutants -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    path: Path  # the module's file
    line: int
    end_line: int
    start: int  # byte offsets of the replaced span in the file
    end: int
    replacement: str
    kind: str
    before: str  # the span as written
    after: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(PACKAGE.parent)}:{self.line}"

    def describe(self) -> str:
        return f"{self.where} {self.kind}: {_one_line(self.before)!r} -> {_one_line(self.after)!r}"

    def apply(self, source: bytes) -> bytes:
        return source[: self.start] + self.replacement.encode() + source[self.end :]


def _one_line(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class _Finder(ast.NodeVisitor):
    """Every mutant of one module, as (node, kind, replacement text) spans of its source."""

    def __init__(self, path: Path, source: bytes) -> None:
        self.path = path
        self.source = source
        self.offsets = [0]
        for line in source.splitlines(keepends=True):
            self.offsets.append(self.offsets[-1] + len(line))
        self.lines = source.decode().splitlines()
        self.found: list[Mutant] = []
        self.function_depth = 0
        self.skip_depth = 0  # inside an f-string, an annotation or an ``if TYPE_CHECKING:`` block

    # spans
    def _span(self, node: ast.AST) -> tuple[int, int]:
        return (self.offsets[node.lineno - 1] + node.col_offset,  # type: ignore[attr-defined]
                self.offsets[node.end_lineno - 1] + node.end_col_offset)  # type: ignore[attr-defined]

    def _add(self, node: ast.AST, kind: str, replacement: str) -> None:
        line = node.lineno  # type: ignore[attr-defined]
        if self.skip_depth or "no mutate" in self.lines[line - 1] or "pragma: no cover" in self.lines[line - 1]:
            return
        start, end = self._span(node)
        before = self.source[start:end].decode()
        self.found.append(Mutant(self.path, line, node.end_lineno, start, end, replacement,  # type: ignore[attr-defined]
                                 kind, before, replacement))

    # skipped regions
    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:  # f-string positions are unreliable on 3.11
        pass

    def visit_Import(self, node: ast.Import) -> None:
        pass

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        pass

    def _annotation(self, node: ast.AST | None) -> None:
        if node is not None:
            self.skip_depth += 1
            self.visit(node)
            self.skip_depth -= 1

    def visit_arg(self, node: ast.arg) -> None:
        self._annotation(node.annotation)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        self.visit(node.args)
        self._annotation(node.returns)
        self.function_depth += 1
        returns_none = isinstance(node.returns, ast.Constant) and node.returns.value is None
        body = node.body[1:] if _is_docstring(node.body[0]) else node.body
        for statement in body:
            self._statement(statement, returns_none)
        self.function_depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        body = node.body[1:] if node.body and _is_docstring(node.body[0]) else node.body
        for statement in body:
            self.visit(statement)

    def visit_Module(self, node: ast.Module) -> None:
        body = node.body[1:] if node.body and _is_docstring(node.body[0]) else node.body
        for statement in body:
            if isinstance(statement, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in statement.targets
            ):
                continue
            self.visit(statement)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._annotation(node.annotation)
        if node.value is not None:
            self.visit(node.value)

    def visit_If(self, node: ast.If) -> None:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        self._add(node.test, "negation", f"not ({_text(self, node.test)})")
        self.generic_visit(node)

    def visit_While(self, node: ast.While) -> None:
        self._add(node.test, "negation", f"not ({_text(self, node.test)})")
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self._add(node.test, "negation", f"not ({_text(self, node.test)})")
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        for condition in node.ifs:
            self._add(condition, "negation", f"not ({_text(self, condition)})")
        self.generic_visit(node)

    # statements of a function: the statement-level mutants, then the expressions inside
    def _statement(self, statement: ast.stmt, returns_none: bool) -> None:
        if isinstance(statement, _DELETABLE) and not _is_docstring(statement) and not _is_debug_log(statement):
            self._add(statement, "deletion", "pass")
        if isinstance(statement, ast.Return) and statement.value is not None and not returns_none and not (
            isinstance(statement.value, ast.Constant) and statement.value.value is None
        ):
            self._add(statement.value, "return-none", "None")
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.visit(statement)
            return
        # nested bodies are statements of this function too
        for name in ("body", "orelse", "finalbody"):
            inner = getattr(statement, name, None)
            if isinstance(inner, list):
                for child in inner:
                    if isinstance(child, ast.stmt):
                        self._statement(child, returns_none)
        for handler in getattr(statement, "handlers", ()):
            if handler.type is not None:
                self.visit(handler.type)
            for child in handler.body:
                self._statement(child, returns_none)
        for case in getattr(statement, "cases", ()):
            for child in case.body:
                self._statement(child, returns_none)
        if isinstance(statement, ast.If):
            if not (isinstance(statement.test, ast.Name) and statement.test.id == "TYPE_CHECKING"):
                self._add(statement.test, "negation", f"not ({_text(self, statement.test)})")
                self.visit(statement.test)
            return
        if isinstance(statement, ast.While):
            self._add(statement.test, "negation", f"not ({_text(self, statement.test)})")
            self.visit(statement.test)
            return
        for name, value in ast.iter_fields(statement):
            if name in ("body", "orelse", "finalbody", "handlers", "cases"):
                continue
            for node in value if isinstance(value, list) else [value]:
                if isinstance(node, ast.AST):
                    self.visit(node)

    # expressions
    def visit_Compare(self, node: ast.Compare) -> None:
        flipped = _FLIPPED.get(type(node.ops[0]))
        if flipped is not None:
            mutated = ast.Compare(node.left, [flipped(), *node.ops[1:]], node.comparators)
            self._add(node, "comparison", f"({ast.unparse(mutated)})")
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self._add(node, "boolean", f"({ast.unparse(ast.BoolOp(other, node.values))})")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):
            self._add(node, "constant", repr(not value))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            self._add(node, "constant", f"({value + 1!r})")


def _text(finder: _Finder, node: ast.AST) -> str:
    start, end = finder._span(node)
    return finder.source[start:end].decode()


def _is_docstring(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) and isinstance(
        statement.value.value, str
    )


def _is_debug_log(statement: ast.stmt) -> bool:
    """``log.debug(...)``: what it changes is a debug log line, which no user relies on."""
    call = statement.value if isinstance(statement, ast.Expr) else None
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "debug"


def mutants_of(path: Path) -> list[Mutant]:
    """Every mutant of ``path`` (each span and replacement once; `changes_the_code` is checked when drawn)."""
    source = path.read_bytes()
    finder = _Finder(path, source)
    finder.visit(ast.parse(source, str(path)))
    kept = []
    seen = set()
    for mutant in finder.found:
        key = (mutant.start, mutant.end, mutant.replacement)
        if key not in seen:
            seen.add(key)
            kept.append(mutant)
    return kept


_TREES: dict[Path, str] = {}


class _Normal(ast.NodeTransformer):
    """Spellings that compile to the same behaviour made one: a function's last statement ``return``,
    ``return None`` or ``pass`` (after another statement) is dropped, as the implicit return is None."""

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        self.generic_visit(node)
        while len(node.body) > 1 and _returns_nothing(node.body[-1]):
            node.body.pop()
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = _function


def _returns_nothing(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.Pass):
        return True
    return isinstance(statement, ast.Return) and (
        statement.value is None or (isinstance(statement.value, ast.Constant) and statement.value.value is None))


def _normal_dump(source: bytes) -> str:
    return ast.dump(_Normal().visit(ast.parse(source)))


def changes_the_code(mutant: Mutant) -> bool:
    """The mutant compiles and its syntax tree differs from the original's (``(x)`` for ``x`` does not,
    nor deleting a function's last ``return None``)."""
    source = mutant.path.read_bytes()
    if mutant.path not in _TREES:
        _TREES[mutant.path] = _normal_dump(source)
    try:
        mutated = _normal_dump(mutant.apply(source))
    except SyntaxError:
        return False
    return mutated != _TREES[mutant.path]


def draw(pool: list[Mutant], size: int, seed: int) -> list[Mutant]:
    """``size`` mutants, the same number of each kind where there are enough (constants and deletions
    would fill a plain sample), each kind's drawn evenly over the modules' mutants: a module with more
    code gets more."""
    rng = random.Random(seed)
    by_kind = {kind: [m for m in pool if m.kind == kind] for kind in KINDS}
    for mutants in by_kind.values():
        rng.shuffle(mutants)
    sample: list[Mutant] = []
    while len(sample) < size and any(by_kind.values()):
        for kind in KINDS:
            while by_kind[kind] and len(sample) < size:
                mutant = by_kind[kind].pop()
                if changes_the_code(mutant):
                    sample.append(mutant)
                    break
    return sample


# --- which modules -------------------------------------------------------------------------------------


def module_path(name: str) -> Path:
    """A module named by path (from the checkout, the package or the cwd) or by dotted name."""
    for candidate in (Path(name), ROOT / name, PACKAGE / name, PACKAGE.parent / name):
        if candidate.is_file():
            return candidate.resolve()
    dotted = PACKAGE.parent / (name.replace(".", "/") + ".py")
    if dotted.is_file():
        return dotted.resolve()
    package = PACKAGE.parent / name.replace(".", "/") / "__init__.py"
    if package.is_file():
        return package.resolve()
    raise SystemExit(f"mutate: no module {name!r} (give a path such as replies/decode.py or a dotted name)")


def changed_modules(base: str) -> list[Path]:
    """The package's Python files changed since ``base`` (committed or not)."""
    merge_base = _git("merge-base", base, "HEAD").strip() or base
    names = set(_git("diff", "--name-only", merge_base, "--", "core").split())
    names |= set(_git("ls-files", "--others", "--exclude-standard", "--", "core").split())
    return sorted((ROOT / n).resolve() for n in names if n.endswith(".py") and (ROOT / n).is_file())


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"mutate: git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


# --- which tests run which lines -------------------------------------------------------------------------


def _tree_key() -> str:
    digest = hashlib.sha256()
    for top in ("core", "plugins", "tests"):
        for path in sorted((ROOT / top).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    digest.update((ROOT / "pyproject.toml").read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class CoverageMap:
    lines: dict[str, dict[int, list[str]]]  # file -> line -> test ids
    durations: dict[str, float]  # test id -> seconds
    failed: list[str] = field(default_factory=list)

    def tests_for(self, mutant: Mutant) -> list[str]:
        by_line = self.lines.get(str(mutant.path), {})
        tests: set[str] = set()
        for line in range(mutant.line, mutant.end_line + 1):
            tests.update(by_line.get(line, ()))
        if "" in tests or (not tests and not mutant_in_function(mutant)):
            # run at import (a module constant, a default value): every test that runs this module
            tests = {t for ids in by_line.values() for t in ids}
        tests.discard("")
        return sorted(tests, key=lambda t: (self.durations.get(t, 1.0), t))


_FUNCTION_LINES: dict[Path, list[tuple[int, int]]] = {}


def mutant_in_function(mutant: Mutant) -> bool:
    spans = _FUNCTION_LINES.get(mutant.path)
    if spans is None:
        tree = ast.parse(mutant.path.read_bytes())
        spans = [(n.body[0].lineno, n.end_lineno or n.lineno) for n in ast.walk(tree)
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        _FUNCTION_LINES[mutant.path] = spans
    return any(start <= mutant.line <= end for start, end in spans)


#: Processes the coverage map's run is split into (each runs about the same share of the test files).
MAP_JOBS = 2


def _shards(jobs: int) -> list[list[str]]:
    """The test files in ``jobs`` groups of about the same size (bytes stand for run time), biggest first."""
    files = sorted((ROOT / "tests").glob("test_*.py"), key=lambda f: (-f.stat().st_size, f.name))
    groups: list[list[str]] = [[] for _ in range(jobs)]
    sizes = [0] * jobs
    for file in files:
        smallest = sizes.index(min(sizes))
        groups[smallest].append(str(file.relative_to(ROOT)))
        sizes[smallest] += file.stat().st_size
    return [group for group in groups if group]


def coverage_map(python: str, rebuild: bool, paths: list[Path]) -> CoverageMap:
    """Which tests run which lines of ``paths`` (only those files are measured: it costs less)."""
    key = hashlib.sha256((_tree_key() + "\0".join(sorted(map(str, paths)))).encode()).hexdigest()[:16]
    path = CACHE / f"coverage-{key}.json"
    if path.is_file() and not rebuild:
        data = json.loads(path.read_text())
        print(f"mutate: test coverage map from {path} (same sources and tests)")
    else:
        CACHE.mkdir(parents=True, exist_ok=True)
        for old in CACHE.glob("coverage-*.json"):
            old.unlink()
        jobs = max(1, min(MAP_JOBS, os.cpu_count() or 1))
        print(f"mutate: measuring which tests run which lines (the whole suite once under coverage, in {jobs} "
              "processes; a few minutes)")
        started = time.monotonic()
        env = {**os.environ, "MUTATE_FILES": os.pathsep.join(map(str, paths)),
               "PYTHONPATH": os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]),
               "HYPOTHESIS_PROFILE": "ci"}
        shards = _shards(jobs)
        runs = []
        for number, files in enumerate(shards):
            part = path.with_name(f"{path.stem}.part{number}.json")
            part.unlink(missing_ok=True)
            runs.append((part, subprocess.Popen(
                [python, "-m", "pytest", "-q", "-p", "mutate_map", "-p", "no:cacheprovider", "--no-header",
                 "-o", "addopts=", "-m", "not out_of_process", *files],
                cwd=ROOT, env={**env, "MUTATE_MAP": str(part)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True)))
        data = {"lines": {}, "durations": {}, "failed": []}
        for part, process in runs:
            output, _ = process.communicate()
            if not part.is_file():
                sys.stdout.write(output[-5000:])
                raise SystemExit("mutate: the coverage run wrote no map")
            piece = json.loads(part.read_text())
            part.unlink()
            for name, by_line in piece["lines"].items():
                merged = data["lines"].setdefault(name, {})
                for line, tests in by_line.items():
                    merged[line] = sorted(set(merged.get(line, [])) | set(tests))
            data["durations"].update(piece["durations"])
            data["failed"] += piece["failed"]
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data))
        temporary.replace(path)
        print(f"mutate: map made in {time.monotonic() - started:.0f} s ({len(data['durations'])} tests)")
    cmap = CoverageMap({f: {int(k): v for k, v in lines.items()} for f, lines in data["lines"].items()},
                       data["durations"], data.get("failed", []))
    if cmap.failed:
        print(f"mutate: {len(cmap.failed)} tests fail without any mutant; they are left out: "
              + ", ".join(cmap.failed[:5]))
    return cmap


# --- running one mutant ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed, survived, timeout, untested
    tests: list[str]
    seconds: float
    detail: str = ""


def restore_leftovers() -> None:
    """Put back an original that a killed run left in the backup (before anything else)."""
    backup = CACHE / "backup"
    for saved in backup.glob("*.json") if backup.is_dir() else ():
        record = json.loads(saved.read_text())
        target = Path(record["path"])
        original = bytes.fromhex(record["bytes"])
        if target.read_bytes() != original:
            target.write_bytes(original)
            print(f"mutate: put back {target} (a previous run stopped while it was mutated)")
        os.utime(target, ns=(record["atime"], record["mtime"]))
        saved.unlink()


def run_mutant(mutant: Mutant, tests: list[str], python: str, timeout: float, all_tests: bool = False) -> Outcome:
    if not tests and not all_tests:
        return Outcome(mutant, "untested", [], 0.0, "no test runs this line")
    original = mutant.path.read_bytes()
    stat = mutant.path.stat()
    backup = CACHE / "backup"
    backup.mkdir(parents=True, exist_ok=True)
    saved = backup / (hashlib.sha256(str(mutant.path).encode()).hexdigest()[:16] + ".json")
    saved.write_text(json.dumps({"path": str(mutant.path), "bytes": original.hex(),
                                 "atime": stat.st_atime_ns, "mtime": stat.st_mtime_ns}))
    started = time.monotonic()
    try:
        mutant.path.write_bytes(mutant.apply(original))
        command = [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", "-o", "addopts=",
                   "-W", "ignore::pytest.PytestUnraisableExceptionWarning"]
        command += [] if all_tests else tests
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "HYPOTHESIS_PROFILE": "ci"}
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT,
                                   text=True, start_new_session=True)
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return Outcome(mutant, "timeout", tests, time.monotonic() - started, f"no answer in {timeout:.0f} s")
    finally:
        mutant.path.write_bytes(original)
        os.utime(mutant.path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the cached bytecode stays valid
        saved.unlink(missing_ok=True)
    seconds = time.monotonic() - started
    if process.returncode == 0:
        return Outcome(mutant, "survived", tests, seconds)
    failed = [found.group(2) for found in re.finditer(r"^(FAILED|ERROR) (\S+::\S+)", output, re.MULTILINE)]
    detail = failed[0] if failed else f"pytest exit status {process.returncode}"
    return Outcome(mutant, "killed", tests, seconds, detail)


# --- the command -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/mutate.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: the ones changed since --base)")
    parser.add_argument("--base", default="main", help="what 'changed' is measured against (default: main)")
    parser.add_argument("--sample", type=int, default=40, help="how many mutants (default 40; 0: all)")
    parser.add_argument("--seed", type=int, default=None, help="the sample's seed (default: a new one, printed)")
    parser.add_argument("--kind", action="append", choices=KINDS, help="only these kinds of mutation")
    parser.add_argument("--line", type=int, action="append", help="only mutants on these lines")
    parser.add_argument("--tests", nargs="+", help="run these pytest ids instead of the tests that run each line")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per mutant (default: 20 + 4x the measured time of its tests)")
    parser.add_argument("--all-tests", action="store_true", help="rerun each survivor against the whole suite")
    parser.add_argument("--rebuild-map", action="store_true", help="measure the coverage map again")
    parser.add_argument("--shard", default=None, metavar="K/N",
                        help="only every Nth mutant of the sample, from the Kth (0 <= K < N): one run per checkout")
    parser.add_argument("--list", action="store_true", help="print the sample and stop")
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs pytest")
    args = parser.parse_args(argv)

    CACHE.mkdir(parents=True, exist_ok=True)
    lock = open(CACHE / "lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit("mutate: another mutation run is going on in this checkout; wait for it to end") from None
    restore_leftovers()
    paths = [module_path(m) for m in args.modules] if args.modules else changed_modules(args.base)
    if not paths:
        print(f"mutate: no module of the package changed since {args.base}; name one (make mutate MODULES=...)")
        return 0
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    pool = [m for path in paths for m in mutants_of(path)
            if (not args.kind or m.kind in args.kind) and (not args.line or m.line in args.line)]
    if args.sample <= 0 or args.sample >= len(pool):
        sample = [m for m in pool if changes_the_code(m)]
    else:
        sample = draw(pool, args.sample, seed)
    sample.sort(key=lambda m: (str(m.path), m.start, m.kind))
    if args.shard:
        sample = sample[_shard(args.shard)]
    names = ", ".join(str(p.relative_to(PACKAGE.parent)) for p in paths)
    print(f"mutate: {len(sample)} of {len(pool)} mutants of {names} (seed {seed})")
    if args.list:
        for mutant in sample:
            print("  " + mutant.describe())
        return 0

    signal.signal(signal.SIGTERM, _interrupted)  # a kill ends like Ctrl-C: the mutated file is put back first
    cmap = None if args.tests else coverage_map(args.python, args.rebuild_map, paths)
    outcomes: list[Outcome] = []
    originals = {p: p.read_bytes() for p in paths}
    started = time.monotonic()
    try:
        for number, mutant in enumerate(sample, 1):
            if cmap is None:
                tests = list(args.tests)
                timeout = args.timeout or 300.0
            else:
                tests = [t for t in cmap.tests_for(mutant) if t not in cmap.failed]
                timeout = args.timeout or 20.0 + 4 * sum(cmap.durations.get(t, 1.0) for t in tests)
            outcome = run_mutant(mutant, tests, args.python, timeout)
            if outcome.status in ("survived", "untested") and args.all_tests:
                outcome = run_mutant(mutant, ["tests"], args.python, args.timeout or 1800.0, all_tests=True)
                outcome.tests = ["the whole suite"]
            outcomes.append(outcome)
            print(f"[{number}/{len(sample)}] {outcome.status:8} {mutant.describe()}  "
                  f"({outcome.seconds:.1f} s, {len(outcome.tests)} tests{'; ' + outcome.detail if outcome.detail else ''})",
                  flush=True)
    except KeyboardInterrupt:
        print("mutate: interrupted; the score covers the mutants run so far")
    finally:
        changed = [p for p, data in originals.items() if p.read_bytes() != data]
        for path in changed:
            path.write_bytes(originals[path])
        status = _git("status", "--porcelain", "--", *map(str, paths)).strip()
        print("mutate: every mutated file has its original bytes again"
              + (f" (git status of them, as before the run: {status})" if status else " (git status clean)")
              if not changed else f"mutate: PUT BACK {len(changed)} files that were still mutated")
    return report(outcomes, time.monotonic() - started, seed)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _shard(text: str) -> slice:
    """``K/N`` as the slice of a sorted sample that shard K of N runs."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise SystemExit(f"mutate: --shard takes K/N such as 0/2, not {text!r}") from None
    if not 0 <= index < count:
        raise SystemExit(f"mutate: --shard {text}: K must be at least 0 and below N")
    return slice(index, None, count)


def report(outcomes: list[Outcome], seconds: float, seed: int) -> int:
    killed = [o for o in outcomes if o.status in ("killed", "timeout")]
    survived = [o for o in outcomes if o.status in ("survived", "untested")]
    total = len(killed) + len(survived)
    score = 100.0 * len(killed) / total if total else 100.0
    by_kind = {}
    for kind in KINDS:
        of_kind = [o for o in outcomes if o.mutant.kind == kind]
        if of_kind:
            by_kind[kind] = f"{sum(o in killed for o in of_kind)}/{len(of_kind)}"
    print(f"\nmutation score: {score:.1f}% ({len(killed)} of {total} killed, {len(survived)} survived; "
          f"seed {seed}; {seconds / 60:.1f} min)")
    print("by kind: " + ", ".join(f"{k} {v}" for k, v in by_kind.items()))
    for outcome in survived:
        print(f"\nSURVIVED {outcome.mutant.describe()}")
        if outcome.status == "untested":
            print("  no test runs this line (in this process: subprocess tests are not measured; try --all-tests)")
        else:
            shown = outcome.tests[:8]
            more = f" and {len(outcome.tests) - len(shown)} more" if len(outcome.tests) > len(shown) else ""
            print(f"  ran {len(outcome.tests)} tests, all passed: {', '.join(shown)}{more}")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
