"""The README and the guides are a contract: the example plugin (docs/guides/writing-a-plugin.md) and its
test (docs/guides/testing.md) work as written, the errors table names the exported errors, and CI runs the
README's test command."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from openrouter_registry import Registry, Settings
from test_plugin_loading import install_fake_distribution

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PLUGIN_GUIDE = (ROOT / "docs" / "guides" / "writing-a-plugin.md").read_text(encoding="utf-8")
TESTING_GUIDE = (ROOT / "docs" / "guides" / "testing.md").read_text(encoding="utf-8")
ERRORS_GUIDE = (ROOT / "docs" / "guides" / "errors.md").read_text(encoding="utf-8")
SETTINGS = Settings.from_env({}, api_key="sk-or-v1-readme-test-key")


def example_plugin_source() -> str:
    block = PLUGIN_GUIDE.split("<!-- example-plugin", 1)[1]
    match = re.search(r"```python\n(.*?)```", block, re.DOTALL)
    assert match, "docs/guides/writing-a-plugin.md lost its example plugin block"
    return match.group(1)


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.syspath_prepend(str(tmp_path))
    install_fake_distribution(tmp_path, "acme-openrouter", "1.0.0", "acme_openrouter", example_plugin_source(), "acme_openrouter")
    yield Registry(environ={})
    sys.modules.pop("acme_openrouter", None)


def test_readme_example_plugin_resolves_and_overrides(acme: Registry) -> None:
    found = {m: (type(r.generator).__name__, r.plugin, str(r.match)) for m in (
        "acme/writer-1", "acme/writer", "acme/writer-2", "acme/writer-1:free", "openai/gpt-4o", "openai/gpt-4o-mini"
    ) for r in [acme.resolve(m, SETTINGS)]}
    assert found == {
        "acme/writer-1": ("AcmeWriter", "acme_openrouter", "exact"),
        "acme/writer": ("AcmeWriter", "acme_openrouter", "alias"),
        "acme/writer-2": ("AcmeWriter", "acme_openrouter", "family"),
        "acme/writer-1:free": ("AcmeWriter", "acme_openrouter", "alias"),
        "openai/gpt-4o": ("MyGPT4O", "acme_openrouter", "exact"),
        "openai/gpt-4o-mini": ("OpenRouterGPT4OMini", "openrouter_gpt", "exact"),
    }
    assert "priority 10 > 0" in (acme.resolve("openai/gpt-4o", SETTINGS).tie_break or "")


def test_readme_example_plugin_hooks(acme: Registry) -> None:
    body = acme.generator("openai/gpt-4o", SETTINGS).build_body([{"role": "user", "content": "hi"}], mode="prompt")
    assert body["provider"] == {"order": ["OpenAI"], "allow_fallbacks": False}
    assert acme.build_headers("acme/writer-1", SETTINGS) == {"X-Acme-Team": "search"}
    assert acme.build_headers("openai/gpt-4o", SETTINGS) == {}
    assert acme.parse_structured("acme/writer-1", 'ACME:{"a": 1}', None) == {"a": 1}
    for bad in ("ACME:{oops", "ACME:" + "[" * 100_000):  # the example never raises: bad text goes on to the core
        acme.parse_structured("acme/writer-1", bad, None)
    import acme_openrouter

    # the example's parser is the core's strict one: NaN and Infinity are refused, not read as floats
    for bad in ('ACME:{"a": NaN}', 'ACME:{"a": Infinity}', 'ACME:{"a": 1e999}', '{"a": 1}'):
        assert acme_openrouter.parse_structured("acme/writer-1", bad, None) is None, bad
    assert acme_openrouter.parse_structured("openai/gpt-4o", 'ACME:{"a": 1}', None) is None  # another family
    # the wrapped resolve_generator still serves the family table: one hookimpl per hook, none lost
    assert acme_openrouter.resolve_generator("acme/writer-3", SETTINGS).reason == "family /acme/writer-[\\w.-]+/"
    info = {p.name: p for p in acme.plugins()}["acme_openrouter"]
    assert info.hooks == ("build_headers", "claimed_models", "parse_structured", "resolve_generator")
    assert (info.status, info.models, info.distribution) == ("loaded", ("acme/writer-1",), "acme-openrouter")
    assert (info.failures, info.error, info.headers) == (0, None, "per-model")


def test_readme_plugin_test_example_runs_as_written(tmp_path: Path) -> None:
    import os
    import subprocess

    block = TESTING_GUIDE.split("<!-- example-plugin-test", 1)[1]
    match = re.search(r"```python\n(.*?)```", block, re.DOTALL)
    assert match, "docs/guides/testing.md lost its example plugin test"
    site = tmp_path / "site"
    site.mkdir()
    install_fake_distribution(site, "acme-openrouter", "1.0.0", "acme_openrouter", example_plugin_source(), "acme_openrouter")
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_acme_openrouter.py").write_text(match.group(1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), *sys.path])
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"^make (\w+)\s+#", README, re.MULTILINE)
    assert commands[:2] == ["demo", "test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE)


def test_readme_errors_table_names_the_exported_errors() -> None:
    import openrouter_registry
    from openrouter_registry import APIError, OpenRouterError

    table = ERRORS_GUIDE.split("## Errors", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE)
    assert len(named) >= 14
    for name in named:
        cls = getattr(openrouter_registry, name)
        assert issubclass(cls, OpenRouterError), name
    exported_api_errors = {
        name for name in dir(openrouter_registry)
        if isinstance(getattr(openrouter_registry, name, None), type)
        and issubclass(getattr(openrouter_registry, name), APIError) and name != "APIError"
    }
    assert exported_api_errors <= set(named), sorted(exported_api_errors - set(named))


def test_readme_usage_example_runs_as_written(tmp_path: Path) -> None:
    import os
    import subprocess

    from openrouter_registry.testing import FakeOpenRouter

    block = README.split("## Use it", 1)[1]
    match = re.search(r"```python\n(.*?)```", block, re.DOTALL)
    assert match, "README lost its usage example"
    script = tmp_path / "example.py"
    script.write_text(match.group(1))
    with FakeOpenRouter() as server:
        server.set_reply("response", {"city": "Lyon", "country": "France"})
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
        env.update(OPENROUTER_API_KEY=server.api_key, OPENROUTER_BASE_URL=server.base_url)
        done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        (request,) = server.requests
    lines = done.stdout.splitlines()
    assert lines[0] == "{'city': 'Lyon', 'country': 'France'}"
    assert lines[1].startswith("prompt 1 Usage(prompt_tokens=")
    assert request.body["model"] == "anthropic/claude-3.5-sonnet" and request.body["max_tokens"] == 4096


def test_readme_observability_example_prints_the_span(tmp_path: Path) -> None:
    import json
    import os
    import subprocess

    from openrouter_registry.testing import FakeOpenRouter

    block = (ROOT / "docs" / "guides" / "observability.md").read_text(encoding="utf-8")
    match = re.search(r"```python\n(.*?)```", block, re.DOTALL)
    assert match, "docs/guides/observability.md lost its console example"
    assert len(match.group(1).strip().splitlines()) <= 16
    script = tmp_path / "spans.py"
    script.write_text(match.group(1))
    with FakeOpenRouter() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENROUTER_", "OTEL_"))}
        env.update(OPENROUTER_API_KEY=server.api_key, OPENROUTER_BASE_URL=server.base_url)
        done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    spans = [json.loads(part) for part in re.findall(r"^\{\n.*?^\}", done.stdout, re.DOTALL | re.MULTILINE)]
    call = next(span for span in spans if span["name"] == "chat openai/gpt-4o-mini")
    assert call["kind"] == "SpanKind.CLIENT"
    assert call["attributes"]["gen_ai.provider.name"] == "openrouter"
    assert call["attributes"]["gen_ai.usage.output_tokens"] > 0
    assert server.api_key not in done.stdout
