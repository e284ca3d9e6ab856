"""`openrouter-registry models`: the catalog as a table or JSON, filtered, with the mode and generator
each model gets, against the local server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from openrouter_registry.cli import main
from openrouter_registry.models.modes import MODE_MEMORY
from openrouter_registry.settings import Settings
from openrouter_registry.testing import FakeOpenRouter


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenRouter]:
    MODE_MEMORY.clear()
    with FakeOpenRouter() as fake:
        monkeypatch.setenv("OPENROUTER_BASE_URL", fake.base_url)
        monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)  # /models needs no key
        yield fake
    MODE_MEMORY.clear()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["models", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_row_per_model_with_limits_prices_mode_and_generator(
    server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys)
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["id", "context", "max", "output", "USD/M", "in", "USD/M", "out", "mode", "plugin", "generator"]
    by_id = {row.split()[0]: row.split()[1:] for row in rows}
    assert len(by_id) == 7
    assert by_id["mistralai/mixtral-8x7b-instruct"] == ["32768", "16384", "0.24", "0.24", "prompt", "openrouter_registry", "OpenRouterGeneric"]
    assert by_id["openai/gpt-4o"] == ["128000", "16384", "2.50", "10.00", "json_schema", "openrouter_gpt", "OpenRouterGPT4O"]
    assert by_id["anthropic/claude-3.5-sonnet"][4:] == ["prompt", "openrouter_claude", "OpenRouterClaude35Sonnet"]


def test_json_objects_have_the_documented_fields(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--json")
    assert code == 0
    data = json.loads(out)
    assert all(set(item) == {"id", "context_window", "max_output_tokens", "pricing", "supported_parameters",
                             "structured_modes", "plugin", "generator"} for item in data)
    gemini = next(item for item in data if item["id"] == "google/gemini-pro-1.5")
    assert gemini["pricing"]["prompt"] == "0.00000125" and gemini["pricing"]["completion"] == "0.000005"
    assert gemini["structured_modes"] == ["json_schema", "json_object", "prompt"]
    assert "structured_outputs" in gemini["supported_parameters"]
    assert (gemini["context_window"], gemini["max_output_tokens"]) == (2_000_000, 8_192)


def test_query_and_supports_filter(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--json", "CLAUDE")  # any case, id or name
    assert [m["id"] for m in json.loads(out)] == ["anthropic/claude-3.5-haiku", "anthropic/claude-3.5-sonnet"]
    _, out, _ = run(capsys, "--json", "--supports", "structured_outputs", "--supports", "min_p")
    assert [m["id"] for m in json.loads(out)] == ["meta-llama/llama-3.3-70b-instruct"]
    code, out, err = run(capsys, "no-such-model")
    assert (code, out, err.strip()) == (0, "", "no model matches")


def test_cached_then_refreshed(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys)
    run(capsys)
    assert len(server.catalog_requests) == 1
    run(capsys, "--refresh")
    assert len(server.catalog_requests) == 2


def test_a_learned_mode_is_the_mode_shown(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.from_env()
    MODE_MEMORY.fall_back("google/gemini-pro-1.5", "json_schema", "json_object", "", settings)
    _, out, _ = run(capsys, "--json", "gemini")
    assert json.loads(out)[0]["structured_modes"] == ["json_object", "prompt"]


def test_no_catalog_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeOpenRouter() as gone:
        monkeypatch.setenv("OPENROUTER_BASE_URL", gone.base_url)
    code, out, err = run(capsys)
    assert code == 3 and out == ""
    assert err.strip().splitlines()[-1].startswith("openrouter-registry: OpenRouterError: the model catalog is unavailable")
    monkeypatch.setenv("OPENROUTER_CATALOG", "off")
    code, _, err = run(capsys)
    assert code == 2 and "the model catalog is off" in err


def test_the_readme_example_is_the_real_output(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parent.parent / "docs" / "guides" / "models.md").read_text(encoding="utf-8")
    block = readme.split("$ openrouter-registry models\n", 1)[1].split("```", 1)[0]
    _, out, _ = run(capsys)
    assert out == block
