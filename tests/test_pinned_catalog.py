"""Catalog behaviour a constant-mutant pre-screen found unpinned: the documented limits, each bound of a
price, a token count and a model id (the value at the bound and one past it), the clock-skew allowance,
the retry pause after a failed fetch, the cache file's name and format."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from openrouter_registry.http import transport
from openrouter_registry.models import catalog as catalog_module
from openrouter_registry.models.catalog import cache_file, load_catalog, parse_models, settled
from openrouter_registry.settings import Settings


def test_documented_limits_have_their_values() -> None:
    """The module docstring's FETCH_TIMEOUT and RETRY_AFTER_FAILURE, the body and cache caps, the cache format."""
    assert catalog_module.FETCH_TIMEOUT == 5.0
    assert catalog_module.RETRY_AFTER_FAILURE == 300.0
    assert catalog_module.MAX_BODY_BYTES == 32 * 1024 * 1024 == 33_554_432
    assert catalog_module.MAX_CACHE_BYTES == 64 * 1024 * 1024
    assert catalog_module.CLOCK_SKEW == 300.0
    assert catalog_module.CACHE_FORMAT == 1
    assert catalog_module.APP_NAME == "openrouter-registry"
    assert catalog_module.MAX_PRICE_DIGITS == 30
    assert catalog_module.MIN_PRICE_EXPONENT == -30
    assert catalog_module.MAX_PRICE == Decimal(1_000_000)
    assert catalog_module.MAX_TOKEN_COUNT == 1_000_000_000
    assert catalog_module.MAX_ID_LENGTH == 256


def _one(entry: dict[str, Any], caplog: pytest.LogCaptureFixture) -> tuple[dict[str, Any], str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        models = parse_models([entry])
    return models, " ".join(r.getMessage() for r in caplog.records)


def _prompt(price: str, caplog: pytest.LogCaptureFixture) -> tuple[Decimal | None, str]:
    models, warned = _one({"id": "a/b", "pricing": {"prompt": price}}, caplog)
    return (models["a/b"].pricing.prompt if "a/b" in models else None), warned


def test_price_bounds_are_exact(caplog: pytest.LogCaptureFixture) -> None:
    """64 characters, 30 digits, 1e-30 and just under 1e6 are prices; one more of any is refused."""
    assert _prompt("0" * 63 + "1", caplog) == (Decimal(1), "")
    price, warned = _prompt("0" * 64 + "1", caplog)
    assert price is None and "Skipped 1 malformed model(s) in the catalog from /models (first: a/b: While" in warned
    # (the price's own message stays inside cattrs' "While structuring Pricing": no user sees its text[:20])
    assert _prompt("0." + "1" * 30, caplog)[0] == Decimal("0." + "1" * 30)
    assert "malformed" in _prompt("0." + "1" * 31, caplog)[1]
    assert _prompt("1e-30", caplog)[0] == Decimal("1e-30")
    assert "malformed" in _prompt("9e-31", caplog)[1]
    assert _prompt("999999.9", caplog)[0] == Decimal("999999.9")
    assert "malformed" in _prompt("1000000", caplog)[1]
    assert _prompt("0", caplog)[0] == Decimal(0)
    assert _prompt("0e-40", caplog) == (Decimal(0), "")  # a zero is zero, whatever its exponent
    assert _prompt("-1", caplog) == (None, "")


def _context(value: Any, caplog: pytest.LogCaptureFixture) -> tuple[int | None, str]:
    models, warned = _one({"id": "a/b", "context_length": value}, caplog)
    return (models["a/b"].context_length if "a/b" in models else -1), warned


def test_token_count_bounds_are_exact(caplog: pytest.LogCaptureFixture) -> None:
    """At most 1e9 tokens; a digit string under 20 characters is a count; 0 means unknown, 1 is one."""
    assert _context(1_000_000_000, caplog) == (1_000_000_000, "")
    count, warned = _context(1_000_000_001, caplog)
    assert count == -1 and "a token count of 1000000001 is out of range (at most 1000000000)" in warned
    assert _context("0" * 18 + "7", caplog) == (7, "")
    count, warned = _context("0" * 19 + "7", caplog)
    assert count == -1 and f"a token count must be an integer, got {'0' * 19 + '7'!r}" in warned
    assert "got " + repr("x" * 40) + ")" in _context("x" * 50, caplog)[1]
    big = 10 ** 50
    assert f"a token count of {str(big)[:40]} is out of range" in _context(big, caplog)[1]
    assert _context(0, caplog) == (None, "")
    assert _context(1, caplog) == (1, "")


def test_model_id_bounds_and_skip_message(caplog: pytest.LogCaptureFixture) -> None:
    """Ids of 1 to 256 characters; the warning shows 80 characters of a name, 60 of a refused id's repr."""
    long_ok = "a" * 256
    assert "a" in _one({"id": "a"}, caplog)[0]
    assert long_ok in _one({"id": long_ok}, caplog)[0]
    models, warned = _one({"id": "a" * 257}, caplog)
    assert models == {}
    assert f"(first: {'a' * 80}: id {repr('a' * 257)[:60]} is not a model id (printable ASCII, no spaces, 1 to 256 characters))" in warned
    models, warned = _one({"id": ""}, caplog)
    assert models == {} and "(first: entry 0: id '' is not a model id" in warned
    # the first problem is cut at 300 characters
    _, warned = _one({"id": "b" * 100, "context_length": "x" * 50, "max_completion_tokens": "y" * 50,
                      "name": 1, "tokenizer": 2, "expiration_date": 3}, caplog)
    first = warned.split("(first: ", 1)[1]
    assert first.startswith("b" * 80 + ": ") and len(first) == 301 and first.endswith(")")


def test_a_just_fetched_catalog_is_under_a_second_old() -> None:
    """`Catalog.age` is now minus fetched_at, never below 0."""
    assert 0.0 <= catalog_module.Catalog({}, time.time(), "s").age() < 0.5
    assert catalog_module.Catalog({}, time.time() + 100, "s").age() == 0.0


def test_cache_file_is_named_by_16_hex_of_the_base_url(tmp_path: Path) -> None:
    """``<dir>/catalog-<first 16 hex of sha256(base_url)>.json``."""
    settings = Settings.from_env({}, base_url="https://example.test/api/v1", api_key="k", cache_dir=str(tmp_path))
    digest = hashlib.sha256(b"https://example.test/api/v1").hexdigest()[:16]
    assert cache_file(settings, "catalog") == tmp_path / f"catalog-{digest}.json"


def _cached(tmp_path: Path, fetched_at: float, fmt: Any = 1) -> Settings:
    settings = Settings.from_env({}, base_url="http://127.0.0.1:9/api/v1", api_key="k", cache_dir=str(tmp_path),
                                 catalog_ttl=3600)
    path = cache_file(settings, "catalog")
    assert path is not None
    path.parent.mkdir(mode=0o700, parents=True)
    path.write_text(json.dumps({"format": fmt, "source": "s", "fetched_at": fetched_at, "models": [{"id": "a/b"}]}))
    path.chmod(0o600)
    return settings


async def test_a_cache_stamped_within_the_clock_skew_is_fresh(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A timestamp up to CLOCK_SKEW (300 s) ahead is kept; beyond it the file is stale (fetched_at 0)."""
    catalog = await load_catalog(_cached(tmp_path / "a", time.time() + 290), network=False)
    assert catalog is not None and catalog.fetched_at > time.time() and "a/b" in catalog.models
    catalog_module.reset()
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        catalog = await load_catalog(_cached(tmp_path / "b", time.time() + 310), network=False)
    assert catalog is not None and catalog.fetched_at == 0.0
    assert "written in the future" in caplog.text


async def test_only_cache_format_1_is_read(tmp_path: Path) -> None:
    """A cache file of another format is ignored."""
    assert await load_catalog(_cached(tmp_path / "a", time.time(), fmt=1), network=False) is not None
    catalog_module.reset()
    assert await load_catalog(_cached(tmp_path / "b", time.time(), fmt=2), network=False) is None


def test_the_fetch_is_not_retried_for_300_seconds_after_a_failure(tmp_path: Path) -> None:
    """`settled` holds for RETRY_AFTER_FAILURE (300 s) after a failed fetch, and not after it."""
    settings = Settings.from_env({}, base_url="http://127.0.0.1:9/api/v1", api_key="k", cache_dir=str(tmp_path))
    key = catalog_module._key(settings)
    catalog_module._STORE.failed_at[key] = time.monotonic() - 299.5
    assert settled(settings)
    catalog_module._STORE.failed_at[key] = time.monotonic() - 300.5
    assert not settled(settings)


# -- http/transport.py ----------------------------------------------------------------------------


class _Recording:
    def __init__(self) -> None:
        self.asked: list[tuple[float, float]] = []

    def uniform(self, low: float, high: float) -> float:
        self.asked.append((low, high))
        return low


def test_backoff_is_documented_exponential_with_jitter_in_0_75_to_1() -> None:
    """docs/guides/errors.md: 0.5 s doubling, at most 8 s, jitter [0.75, 1); Retry-After capped at 60 s by default."""
    rng = _Recording()
    assert transport.retry_delay(0, base_delay=0.5, max_delay=8.0, rng=rng) == 0.5 * 0.75
    assert transport.retry_delay(4, base_delay=0.5, max_delay=8.0, rng=rng) == 8.0 * 0.75
    assert transport.retry_delay(5, base_delay=0.5, max_delay=8.0, rng=rng) == 8.0 * 0.75
    assert rng.asked == [(0.75, 1.0)] * 3
    assert transport.retry_delay(0, base_delay=0.5, max_delay=8.0, retry_after=60.0) == 60.0
    assert transport.retry_delay(0, base_delay=0.5, max_delay=8.0, retry_after=61.0) == 60.0
    assert transport.retry_delay(0, base_delay=0.5, max_delay=8.0, retry_after=-1.0) == 0.0
    settings = Settings.from_env({}, base_url="http://127.0.0.1:9/api/v1", api_key="k", catalog=False)
    service_transport = transport.Transport(settings)
    assert (service_transport.base_delay, service_transport.max_delay) == (0.5, 8.0)
    assert (transport.DRAIN_LINES, transport.DRAIN_SECONDS) == (16, 1.0)


def test_load_catalog_blocking_defaults_fetch_once_then_use_what_is_held(tmp_path: Path) -> None:
    """`load_catalog_blocking(settings)`: network on (the first call fetches), refresh off (the second does not)."""
    from openrouter_registry.models.catalog import load_catalog_blocking
    from openrouter_registry.testing import FakeOpenRouter

    with FakeOpenRouter() as server:
        settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, cache_dir=str(tmp_path))
        first = load_catalog_blocking(settings)
        assert first is not None and len(server.catalog_requests) == 1
        assert load_catalog_blocking(settings) is first and len(server.catalog_requests) == 1


def test_read_listing_takes_empty_objects_and_lists_with_whitespace_around() -> None:
    """``{}`` and ``{"data": []}``, with or without whitespace after, are read; ``each`` is never called."""
    from openrouter_registry.models.catalog import LISTED, read_listing

    seen: list[Any] = []
    assert read_listing("{}", "data", seen.append) == {}
    assert read_listing(" { } \n", "data", seen.append) == {}
    assert read_listing('{"data":[]}', "data", seen.append) == {"data": LISTED}
    assert read_listing('{"data": [ ] , "x": 1}\n', "data", seen.append) == {"data": LISTED, "x": 1}
    assert seen == []


def test_a_nameless_malformed_entry_is_named_by_its_index(caplog: pytest.LogCaptureFixture) -> None:
    """The second entry of a listing is "entry 1" in the warning."""
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        models = parse_models([{"id": "a/b"}, {"context_length": 1}])
    assert list(models) == ["a/b"]
    assert "(first: entry 1: id NoneType is not a model id" in caplog.text


def test_the_default_cache_dir_is_platformdirs_without_an_author_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No OPENROUTER_CACHE_DIR, a remote API: ``user_cache_dir("openrouter-registry", appauthor=False)``
    (on Windows an author would add a folder level)."""
    import platformdirs

    asked: list[tuple[Any, ...]] = []
    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda *a, **k: asked.append((a, k)) or str(tmp_path))
    settings = Settings.from_env({}, base_url="https://openrouter.example/api/v1", api_key="k")
    assert catalog_module.cache_dir(settings) == tmp_path
    assert asked == [(("openrouter-registry",), {"appauthor": False})]


async def test_a_redirected_catalog_is_not_followed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A 3xx from ``/models`` is a failed fetch (one request, "HTTP 302"), never followed elsewhere."""
    from openrouter_registry.testing import FakeOpenRouter, Scripted

    with FakeOpenRouter() as server:
        server.catalog_answer = Scripted(status=302, headers={"Location": server.base_url + "/models?again"})
        settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, cache_dir=str(tmp_path))
        with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
            assert await load_catalog(settings) is None
        assert len(server.catalog_requests) == 1
    assert "(ValueError: HTTP 302); going on without it" in caplog.text


async def test_a_failed_fetch_warning_cuts_its_reason_at_200_characters(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The reason in "Could not fetch the model catalog" is at most 200 characters."""
    async def failing(settings: Settings) -> Any:
        raise ValueError("x" * 500)

    monkeypatch.setattr(catalog_module, "_fetch", failing)
    settings = Settings.from_env({}, base_url="https://openrouter.example/api/v1", api_key="k", cache_dir=str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        assert await load_catalog(settings) is None
    assert f"(ValueError: {'x' * 188}); going on without it" in caplog.text


def test_settled_when_off_or_when_a_fresh_catalog_is_held(tmp_path: Path) -> None:
    """`settled` is True with the catalog off, and with a fresh catalog held; False with nothing held."""
    off = Settings.from_env({}, base_url="https://openrouter.example/api/v1", api_key="k", catalog=False)
    assert settled(off)
    on = Settings.from_env({}, base_url="https://openrouter.example/api/v1", api_key="k", cache_dir=str(tmp_path))
    assert not settled(on)
    catalog_module._STORE.catalogs[catalog_module._key(on)] = catalog_module.Catalog({}, time.time(), "s")
    assert settled(on)

# Judged equivalent (nothing a user sees changes):
# - models/catalog.py:388 model.split(":", 1)[0] -> split(":", 2)[0]: the part before the first colon is the same.
# - models/catalog.py:414 lru_cache(maxsize=64) -> 65: only how many parsed URLs are kept (speed).
# - models/catalog.py:551 verify False -> True for an http:// URL: plain HTTP does no TLS, the context goes unused.
