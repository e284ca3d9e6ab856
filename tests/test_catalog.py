"""The model catalog: parsing /models into ModelInfo, the disk cache, the TTL, failures, concurrency."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from openrouter_registry.models import catalog as catalog_module
from openrouter_registry.models.catalog import Catalog, ModelInfo, Pricing, cache_file, load_catalog, parse_models, write_atomic
from openrouter_registry.settings import Settings
from openrouter_registry.testing import FakeOpenRouter, Scripted, price_of

# Two entries as the real API lists them (from the 2025-04 recording), and the router with its "-1" prices.
REAL_ENTRIES: list[dict[str, Any]] = [
    {
        "id": "openai/gpt-4o", "name": "OpenAI: GPT-4o", "created": 1715558400, "description": "GPT-4o ...",
        "context_length": 128000,
        "architecture": {"modality": "text+image->text", "input_modalities": ["text", "image"],
                         "output_modalities": ["text"], "tokenizer": "GPT", "instruct_type": None},
        "pricing": {"prompt": "0.0000025", "completion": "0.00001", "request": "0", "image": "0.003613",
                    "web_search": "0", "internal_reasoning": "0", "input_cache_read": "0.00000125"},
        "top_provider": {"context_length": 128000, "max_completion_tokens": 16384, "is_moderated": True},
        "per_request_limits": None,
    },
    {
        "id": "openrouter/auto", "name": "Auto Router", "created": 1699401600, "description": "...",
        "context_length": 2000000,
        "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"],
                         "tokenizer": "Router", "instruct_type": None},
        "pricing": {"prompt": "-1", "completion": "-1"},
        "top_provider": {"context_length": None, "max_completion_tokens": None, "is_moderated": False},
        "per_request_limits": None,
    },
]


def settings_for(server: FakeOpenRouter, cache: Path, **overrides: Any) -> Settings:
    return Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, cache_dir=str(cache), **overrides)


@pytest.fixture
def server() -> Any:
    with FakeOpenRouter() as fake:
        yield fake


# -- parsing ------------------------------------------------------------------------------------------


def test_real_entries_become_model_info_with_exact_prices() -> None:
    models = parse_models(REAL_ENTRIES)
    gpt = models["openai/gpt-4o"]
    assert gpt == ModelInfo(
        id="openai/gpt-4o",
        name="OpenAI: GPT-4o",
        context_length=128_000,
        max_completion_tokens=16_384,
        pricing=Pricing(
            prompt=Decimal("0.0000025"), completion=Decimal("0.00001"), request=Decimal("0"),
            image=Decimal("0.003613"), input_cache_read=Decimal("0.00000125"), internal_reasoning=Decimal("0"),
        ),
        supported_parameters=None,  # this listing did not say: unknown, not "none"
        input_modalities=("text", "image"),
        output_modalities=("text",),
        tokenizer="GPT",
    )
    assert gpt.pricing.per_million("prompt") == Decimal("2.5")
    assert gpt.structured_modes() is None
    auto = models["openrouter/auto"]
    assert auto.pricing.prompt is None and auto.pricing.completion is None  # "-1": variable, not a price
    assert auto.max_completion_tokens is None and auto.context_length == 2_000_000


def test_modes_come_from_supported_parameters() -> None:
    base = {"id": "a/b", "pricing": {"prompt": "0", "completion": "0"}}
    cases = {
        ("structured_outputs", "response_format", "tools"): ("json_schema", "json_object", "prompt"),
        ("response_format",): ("json_object", "prompt"),
        ("temperature",): ("prompt",),
        (): ("prompt",),
    }
    for parameters, modes in cases.items():
        info = parse_models([{**base, "supported_parameters": list(parameters)}])["a/b"]
        assert info.structured_modes() == modes


def test_malformed_entries_are_skipped_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    entries: list[Any] = [
        *REAL_ENTRIES,
        {"id": "bad/price", "pricing": {"prompt": "cheap"}},
        {"id": "bad/context", "context_length": "huge"},
        {"name": "no id"},
        "not an object",
        {"id": "ok/minimal"},
        {"id": "ok/extra", "brand_new_field": {"x": 1}, "top_provider": {"max_completion_tokens": 0}},
    ]
    with caplog.at_level(logging.WARNING, "openrouter_registry"):
        models = parse_models(entries)
    assert set(models) == {"openai/gpt-4o", "openrouter/auto", "ok/minimal", "ok/extra"}
    assert models["ok/minimal"] == ModelInfo(id="ok/minimal")
    assert models["ok/extra"].max_completion_tokens is None  # 0: unknown
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Skipped 4 malformed model(s)" in warnings[0] and "bad/price" in warnings[0]


@pytest.mark.parametrize("entries", [{"data": "nope"}, None, 7, "abc"])  # never iterated: None and 7 would raise
def test_a_listing_that_is_not_a_list_is_ignored(entries: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "openrouter_registry"):
        assert parse_models(entries, source="test") == {}
    assert "The model catalog from test is not a list of models; ignoring it" in caplog.text


def test_variants_fall_back_to_their_base_model() -> None:
    catalog = Catalog(parse_models(REAL_ENTRIES), time.time(), "test")
    assert catalog.get("openai/gpt-4o:nitro") is catalog.models["openai/gpt-4o"]
    assert catalog.get("acme/unknown") is None


# -- loading ------------------------------------------------------------------------------------------


async def test_loads_from_the_server_then_from_the_disk_cache(server: FakeOpenRouter, tmp_path: Path) -> None:
    settings = settings_for(server, tmp_path)
    catalog = await load_catalog(settings)
    assert catalog is not None and len(server.catalog_requests) == 1
    assert "authorization" not in server.catalog_requests[0].headers  # /models is public: the key stays home
    mixtral = catalog.get("mistralai/mixtral-8x7b-instruct")
    assert mixtral is not None and mixtral.context_length == 32_768
    assert mixtral.pricing.prompt == Decimal(str(price_of("mistralai/mixtral-8x7b-instruct")[0]))
    assert mixtral.structured_modes() == ("prompt",)  # the server refuses its JSON modes by default
    assert await load_catalog(settings) is catalog and len(server.catalog_requests) == 1  # held in memory

    written = json.loads(cache_file(settings, "catalog").read_text())
    assert written["format"] == 1 and len(written["models"]) == len(catalog)
    catalog_module.reset()  # as in a new process
    again = await load_catalog(settings)
    assert again is not None and again.models == catalog.models and len(server.catalog_requests) == 1


async def test_a_cache_older_than_the_ttl_is_refreshed(server: FakeOpenRouter, tmp_path: Path) -> None:
    settings = settings_for(server, tmp_path, catalog_ttl=60)
    await load_catalog(settings)
    path = cache_file(settings, "catalog")
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "fetched_at": time.time() - 61}))
    catalog_module.reset()
    fresh = await load_catalog(settings)
    assert len(server.catalog_requests) == 2 and fresh is not None and fresh.age() < 5
    assert await load_catalog(settings, refresh=True) is not fresh and len(server.catalog_requests) == 3


async def test_network_failure_uses_the_stale_cache_with_one_warning(
    server: FakeOpenRouter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(server, tmp_path, catalog_ttl=60)
    first = await load_catalog(settings)
    assert first is not None
    path = cache_file(settings, "catalog")
    path.write_text(json.dumps({**json.loads(path.read_text()), "fetched_at": time.time() - 3600}))
    catalog_module.reset()
    server.catalog_answer = Scripted(status=500, json={"error": {"message": "down", "code": 500}})
    with caplog.at_level(logging.WARNING, "openrouter_registry"):
        stale = await load_catalog(settings)
        again = await load_catalog(settings)
    assert stale is not None and stale.models == first.models and again is stale
    assert len(server.catalog_requests) == 2  # no new try right after a failure
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "HTTP 500" in warnings[0] and "using the one from" in warnings[0]


async def test_no_cache_and_no_network_is_none_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with FakeOpenRouter() as fake:
        settings = settings_for(fake, tmp_path)
    with caplog.at_level(logging.WARNING, "openrouter_registry"):  # the server is gone: connection refused
        assert await load_catalog(settings) is None
        assert await load_catalog(settings) is None
    assert len(caplog.records) == 1 and "going on without it" in caplog.records[0].getMessage()


async def test_off_means_no_request(server: FakeOpenRouter, tmp_path: Path) -> None:
    assert await load_catalog(settings_for(server, tmp_path, catalog=False)) is None
    assert server.catalog_requests == [] and list(tmp_path.iterdir()) == []
    assert Settings.from_env({"OPENROUTER_CATALOG": "off"}).catalog is False


async def test_concurrent_loads_fetch_once(server: FakeOpenRouter, tmp_path: Path) -> None:
    server.latency = 0.2
    settings = settings_for(server, tmp_path)
    results = await asyncio.gather(*(load_catalog(settings) for _ in range(30)))
    assert len(server.catalog_requests) == 1 and all(r is results[0] for r in results)


async def test_a_slow_catalog_holds_a_call_up_only_for_the_fetch_timeout(
    server: FakeOpenRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog_module, "FETCH_TIMEOUT", 0.3)
    server.catalog_answer = Scripted(json={"data": []}, delay=5)
    started = time.monotonic()
    assert await load_catalog(settings_for(server, tmp_path)) is None
    assert time.monotonic() - started < 2


async def test_a_corrupt_cache_is_a_warning_and_is_replaced(
    server: FakeOpenRouter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(server, tmp_path)
    path = cache_file(settings, "catalog")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"format": 1, "fetched_at": ')
    with caplog.at_level(logging.WARNING, "openrouter_registry"):
        catalog = await load_catalog(settings)
    assert catalog is not None and len(catalog) > 0 and "unreadable cache file" in caplog.text
    assert json.loads(path.read_text())["format"] == 1


async def test_an_unwritable_cache_dir_is_a_warning(
    server: FakeOpenRouter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    settings = settings_for(server, blocker / "cache")  # a directory below a file cannot exist
    with caplog.at_level(logging.WARNING, "openrouter_registry"):
        catalog = await load_catalog(settings)
    assert catalog is not None and len(catalog) > 0
    assert "Could not write the model catalog cache" in caplog.text


def test_atomic_writes_are_never_seen_half_written(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    payloads = [{"writer": w, "models": ["x" * 1000] * 200} for w in range(4)]
    write_atomic(path, payloads[0])
    stop = threading.Event()
    seen: list[Any] = []

    def writer(payload: Any) -> None:
        while not stop.is_set():
            write_atomic(path, payload)

    threads = [threading.Thread(target=writer, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    try:
        for _ in range(300):
            seen.append(json.loads(path.read_text())["writer"])  # raises on a half-written file
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert set(seen) <= {0, 1, 2, 3}
    assert [p.name for p in tmp_path.iterdir()] == ["shared.json"]  # no temporary file left behind


def test_import_does_no_network_or_disk_work() -> None:
    code = (
        "import sys, openrouter_registry.models.catalog as c; "
        "assert not c._STORE.catalogs; "
        "print(sorted(m for m in ('httpx', 'platformdirs') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


async def test_a_local_servers_catalog_stays_in_memory_unless_a_cache_dir_is_set(
    server: FakeOpenRouter, cache_dir: Path
) -> None:
    """The demo and plugin authors' tests run local servers on random ports: no file per port in the
    user's cache dir (here: conftest's stand-in for the platformdirs default)."""
    default = Settings.from_env({}, base_url=server.base_url)
    assert catalog_module.cache_dir(default) is None
    assert await load_catalog(default) is not None
    assert not (cache_dir / "default").exists()
    remote = Settings.from_env({}, base_url="https://openrouter.example/api/v1")
    assert catalog_module.cache_dir(remote) == cache_dir / "default"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("OPENROUTER_CATALOG_TTL", "abc", "OPENROUTER_CATALOG_TTL must be a positive number of seconds, got 'abc'"),
        ("OPENROUTER_CATALOG_TTL", "0", "OPENROUTER_CATALOG_TTL must be a positive number of seconds, got 0.0"),
        ("OPENROUTER_CATALOG", "maybe", "OPENROUTER_CATALOG must be on or off, got 'maybe'"),
    ],
)
def test_malformed_catalog_settings_name_the_variable(variable: str, value: str, message: str) -> None:
    from openrouter_registry import SettingsError

    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert str(caught.value) == message


def test_catalog_settings_from_the_environment() -> None:
    settings = Settings.from_env({"OPENROUTER_CACHE_DIR": "/tmp/or-cache", "OPENROUTER_CATALOG_TTL": "3600",
                                  "OPENROUTER_CATALOG": "OFF"})
    assert (settings.cache_dir, settings.catalog_ttl, settings.catalog) == ("/tmp/or-cache", 3600.0, False)
    assert Settings.from_env({}).catalog is True and Settings.from_env({}).catalog_ttl == 86_400
