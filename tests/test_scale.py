"""Scaling out: ids as engines give them, `BatchUDF` (dict, numpy, pandas and list batches; pickled into
multiprocessing workers; Ray and Dask when installed), a job-wide budget through `JobLedger`, and the
messages that point at the cause (pickling a service, a family plugin missing on a worker)."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import pickle
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from openrouter_registry import BatchUDF, ConfigurationError, JobLedger, NLPServices, OpenRouterService, Registry, Settings
from openrouter_registry.batch.engines import COLUMNS, NOT_STARTED
from openrouter_registry.testing import FakeOpenRouter
from openrouter_registry.testing.schemas import CITY

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

MODEL = "openai/gpt-4o-mini"
TEMPLATE = "Which city is {place} in?"


@pytest.fixture
def server() -> Any:
    with FakeOpenRouter() as fake:
        yield fake


@pytest.fixture
def worker_env(server: FakeOpenRouter, monkeypatch: pytest.MonkeyPatch) -> FakeOpenRouter:
    """What a worker sees: the key and the base URL in its environment (the key is never pickled)."""
    monkeypatch.setenv("OPENROUTER_API_KEY", server.api_key)
    monkeypatch.setenv("OPENROUTER_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENROUTER_CATALOG", "off")
    return server


def udf(**options: Any) -> BatchUDF:
    return BatchUDF(schema=CITY, template=TEMPLATE, model=MODEL, concurrency=4, **options)


# --- ids as the engines give them ---------------------------------------------------------------------


async def test_numpy_and_pandas_ids_are_ids(server: FakeOpenRouter) -> None:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog="off")
    items = [
        {"id": np.int64(0), "place": "the Louvre"},
        {"id": np.int32(1), "place": "the Prado"},
        {"id": np.str_("x-2"), "place": "the Uffizi"},
    ]
    async with OpenRouterService(settings) as service:
        rows = [row async for row in service.batch(items, schema=CITY, template=TEMPLATE, model=MODEL)]
    assert {(row.id, type(row.id).__name__, row.ok) for row in rows} == {
        (0, "int", True), (1, "int", True), ("x-2", "str", True)
    }
    assert len(server.requests) == 3
    assert json.dumps([row.to_dict()["id"] for row in rows])  # plain JSON, no numpy scalar left


async def test_a_float_or_bool_id_is_still_refused(server: FakeOpenRouter) -> None:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog="off")
    items = [{"id": np.float64(1.0), "prompt": "a"}, {"id": np.bool_(True), "prompt": "b"}]
    async with OpenRouterService(settings) as service:
        rows = [row async for row in service.batch(items)]
    assert [(row.ok, row.error.type if row.error else None) for row in rows] == [(False, "InputError")] * 2
    assert server.requests == []


def test_numpy_duplicates_are_found_before_anything_is_sent(server: FakeOpenRouter) -> None:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog="off")
    service = OpenRouterService(settings)
    with pytest.raises(ConfigurationError, match="duplicate ids in the batch input: 7"):
        service.batch([{"id": 7, "prompt": "a"}, {"id": np.int64(7), "prompt": "b"}])


# --- BatchUDF ----------------------------------------------------------------------------------------------


def test_dict_of_numpy_columns_in_input_order(worker_env: FakeOpenRouter) -> None:
    batch = {"id": np.arange(5), "place": np.array(["the Louvre", "Big Ben", "the Prado", "the Uffizi", "Tivoli"])}
    out = udf()(batch)
    assert list(out) == list(COLUMNS)
    assert list(out["id"]) == [0, 1, 2, 3, 4]  # input order, whatever order they finished in
    assert all(out["ok"])
    assert all(json.loads(c)["city"] for c in out["content"])
    assert all(isinstance(c, str) and Decimal(c) > 0 for c in out["cost"])
    assert len(worker_env.requests) == 5
    assert {r.body["model"] for r in worker_env.requests} == {MODEL}
    assert "Which city is the Prado in?" in json.dumps([r.body["messages"] for r in worker_env.requests])


def test_pandas_batch_gives_a_dataframe(worker_env: FakeOpenRouter) -> None:
    frame = pd.DataFrame({"id": [10, 11, 12], "place": ["the Louvre", "Big Ben", "the Prado"]})
    out = udf()(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(COLUMNS) and list(out["id"]) == [10, 11, 12] and out["ok"].all()
    assert BatchUDF.summarize(out)["cost"] == sum(Decimal(c) for c in out["cost"])


def test_a_bad_row_is_a_row_and_the_batch_goes_on(worker_env: FakeOpenRouter) -> None:
    rows = [{"id": 1, "place": "the Louvre"}, {"id": None, "place": "nowhere"}, {"id": 3}]
    out = udf()(rows)
    assert [(r["id"], r["ok"], r["error_type"]) for r in out] == [(1, True, None), (None, False, "InputError"), (3, False, "InputError")]
    assert "template needs 'place'" in out[2]["error"]
    assert len(worker_env.requests) == 1


def test_duplicates_in_a_batch_fail_its_rows_not_the_job(worker_env: FakeOpenRouter) -> None:
    out = udf()([{"id": 1, "place": "a"}, {"id": 1, "place": "b"}])
    assert [(r["ok"], r["error_type"]) for r in out] == [(False, "ConfigurationError")] * 2
    assert "duplicate ids" in out[0]["error"] and worker_env.requests == []


def test_rows_the_budget_skips_come_back_marked_not_started(worker_env: FakeOpenRouter, caplog: pytest.LogCaptureFixture) -> None:
    rows = [{"id": i, "place": f"place {i}"} for i in range(12)]
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        out = BatchUDF(schema=CITY, template=TEMPLATE, model=MODEL, concurrency=1, max_cost="0.0000001")(rows)
    assert [r["id"] for r in out] == list(range(12))  # one output row per input row, always
    started = [r for r in out if r["error_type"] != NOT_STARTED]
    assert 1 <= len(started) < 12
    assert all(r["error"].startswith("not started") for r in out if r["error_type"] == NOT_STARTED)
    assert len(worker_env.requests) == len(started)
    summary = BatchUDF.summarize(out)
    assert summary["not_started"] == 12 - len(started) and summary["rows"] == 12
    assert "not for the job: pass job_dir=" in caplog.text  # max_cost per batch is said once


def test_the_udf_pickles_without_the_key_or_a_service(worker_env: FakeOpenRouter) -> None:
    original = udf(max_tokens=50)
    original([{"id": 1, "place": "the Louvre"}])  # builds its worker state
    data = pickle.dumps(original)
    assert worker_env.api_key.encode() not in data
    copy = pickle.loads(data)
    assert copy._local is None and copy.options == original.options
    assert copy([{"id": 2, "place": "Big Ben"}])[0]["ok"]


def test_the_key_is_refused_and_bad_options_fail_on_the_driver() -> None:
    with pytest.raises(ConfigurationError, match="OPENROUTER_API_KEY in every worker's environment"):
        BatchUDF(api_key="sk-or-v1-secret")
    with pytest.raises(ConfigurationError, match="concurency must be a setting name"):
        BatchUDF(concurency=3)
    with pytest.raises(ConfigurationError, match="concurrency must be a positive integer"):
        BatchUDF(concurrency=0)
    with pytest.raises(ConfigurationError, match="pass max_cost with it"):
        BatchUDF(job_dir="/tmp/x")
    with pytest.raises(ConfigurationError, match="dict of columns, a pandas DataFrame or a list"):
        BatchUDF()("not a batch")


def test_no_key_in_the_worker_stops_the_job_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENROUTER_API_KEY"):
        udf()([{"id": 1, "place": "a"}])


def _chunks(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def test_multiprocessing_pool_map(worker_env: FakeOpenRouter) -> None:
    rows = [{"id": i, "place": f"place {i}"} for i in range(24)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        parts = pool.map(udf(), _chunks(rows, 6))
    flat = [row for part in parts for row in part]
    assert [r["id"] for r in flat] == list(range(24)) and all(r["ok"] for r in flat)
    assert len(worker_env.requests) == 24
    summary = BatchUDF.summarize(parts)
    assert summary["rows"] == 24 and summary["cost"] == sum(Decimal(r["cost"]) for r in flat)


def test_ray_map_batches(worker_env: FakeOpenRouter) -> None:
    ray = pytest.importorskip("ray", reason="Ray is in the 'scale' extra, not installed here")
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {
        k: os.environ[k] for k in ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "OPENROUTER_CATALOG")}})
    try:
        data = ray.data.from_items([{"id": i, "place": f"place {i}"} for i in range(40)])
        out = data.map_batches(BatchUDF, fn_constructor_kwargs={"schema": CITY, "template": TEMPLATE, "model": MODEL},
                               batch_size=10, concurrency=2, batch_format="numpy").take_all()
    finally:
        ray.shutdown()
    assert sorted(r["id"] for r in out) == list(range(40)) and all(r["ok"] for r in out)


def test_dask_map_partitions(worker_env: FakeOpenRouter) -> None:
    dd = pytest.importorskip("dask.dataframe", reason="Dask is in the 'scale' extra, not installed here")
    frame = pd.DataFrame({"id": range(20), "place": [f"place {i}" for i in range(20)]})
    out = dd.from_pandas(frame, npartitions=4).map_partitions(udf(), meta=BatchUDF.META).compute()
    assert sorted(out["id"]) == list(range(20)) and out["ok"].all()
    assert len(worker_env.requests) == 20  # meta= kept Dask from calling it on a fake partition


# --- a budget for the whole job --------------------------------------------------------------------


def test_job_dir_budget_holds_across_workers(worker_env: FakeOpenRouter, tmp_path: Path) -> None:
    one_row = Decimal(udf()([{"id": 0, "place": "the Louvre"}])[0]["cost"])
    budget = one_row * 10
    rows = [{"id": i, "place": "the Louvre"} for i in range(40)]
    sent_before = len(worker_env.requests)
    workers = [udf(max_cost=str(budget), job_dir=tmp_path / "job") for _ in range(2)]
    parts = [workers[i % 2](chunk) for i, chunk in enumerate(_chunks(rows, 10))]
    summary = BatchUDF.summarize(parts)
    sent = len(worker_env.requests) - sent_before
    assert summary["rows"] == 40 and summary["rows"] - summary["not_started"] == sent
    # 10 rows fit the budget; each worker may have one row in flight beyond what it saw
    assert 8 <= sent <= 12 and summary["cost"] <= budget + 2 * one_row
    assert JobLedger(tmp_path / "job", worker="reader").total() == summary["cost"]


def test_a_planted_ledger_file_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "evil.spent").write_text('"1e999999999"')
    os.mkfifo(job / "fifo.spent")
    (job / "big.spent").write_text('"' + "1" * 10_000 + '"')
    (job / "ok.spent").write_text('"0.25"')
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        ledger = JobLedger(job, worker="me")
        assert ledger.others() == Decimal("0.25")
    assert caplog.text.count("counted as nothing committed") == 3


# --- messages that point at the cause -------------------------------------------------------------------


def test_pickling_a_service_or_registry_says_build_it_in_the_worker() -> None:
    service = NLPServices.openrouter(api_key="sk-or-v1-abcdef")
    with pytest.raises(TypeError, match="build it in the worker.*BatchUDF"):
        pickle.dumps(service)
    with pytest.raises(TypeError, match=r"call get_registry\(\) in the worker"):
        pickle.dumps(Registry())


def test_a_missing_family_plugin_is_warned_once(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from openrouter_registry.plugins import registry as registry_module

    monkeypatch.setattr(registry_module, "_warned_families", set())
    bare = Registry(load_entrypoints=False)  # a worker with only the core installed
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        assert bare.resolve("openai/gpt-4o-mini").plugin == "openrouter_registry"
        bare.resolve("openai/gpt-4o")
        bare.resolve("mistralai/mixtral-8x7b-instruct")  # no plugin of ours for it: nothing to say
    warnings = [r.getMessage() for r in caplog.records if "generic generator" in r.getMessage()]
    assert warnings == [
        "openai/gpt-4o-mini is served by the generic generator: install openrouter-gpt (in every worker of a "
        "cluster) for its family's facts, modes and reply parser"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        assert Registry().resolve("openai/gpt-4o-mini").plugin == "openrouter_gpt"
    assert "generic generator" not in caplog.text


# --- the README's recipes -------------------------------------------------------------------------------


def _run_readme_block(marker: str, tmp_path: Path) -> str:
    import subprocess
    import sys

    readme = (Path(__file__).resolve().parents[1] / "docs" / "guides" / "scaling-out.md").read_text()
    block = readme.split(marker, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "recipe.py"
    script.write_text(block)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
    env["OPENROUTER_CATALOG"] = "off"
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_readme_ray_recipe_runs_as_written(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is in the 'scale' extra, not installed here")
    assert _run_readme_block("<!-- scaling-ray", tmp_path) == "200"


def test_readme_dask_recipe_runs_as_written(tmp_path: Path) -> None:
    pytest.importorskip("dask.dataframe", reason="Dask is in the 'scale' extra, not installed here")
    assert _run_readme_block("<!-- scaling-dask", tmp_path) == "100 100"


def test_readme_multiprocessing_recipe_runs_as_written(tmp_path: Path) -> None:
    summary = _run_readme_block("<!-- scaling-multiprocessing", tmp_path)
    assert summary.startswith("{'rows': 40, 'ok': 40, 'failed': {}, 'not_started': 0,")
    readme = (Path(__file__).resolve().parents[1] / "docs" / "guides" / "scaling-out.md").read_text()
    shown = readme.split("print(BatchUDF.summarize(parts))  # ", 1)[1].splitlines()[0]
    assert summary.endswith(shown.split("...,", 1)[1].strip())  # the cost the comment shows
