"""`BatchUDF`: one picklable batch callable for the engines people already run.

    from openrouter_registry import BatchUDF

    udf = BatchUDF(schema=CITY, template="Where is {place}?", model="openai/gpt-4o-mini", concurrency=64)
    ray.data.from_items(rows).map_batches(udf, batch_size=512, concurrency=2)      # Ray Data (actor pool)
    ddf.map_partitions(udf, meta=BatchUDF.META)                                     # Dask
    multiprocessing.Pool(2).map(udf, chunks)                                        # lists of dicts

An instance holds only plain settings (nothing that cannot be pickled, never the API key: each worker
reads ``OPENROUTER_API_KEY`` from its own environment) and builds its service, connection pool and
event loop in the worker, on the first call. A call takes a batch as a dict of columns (Ray's numpy
batches), a pandas DataFrame (Ray's pandas batches, Dask partitions) or a list of row dicts, runs it
through a `BatchRun` (bounded concurrency, 429 back-off, the budget), and returns the
same kind of batch with one output row per input row, in input order: ``id``, ``ok``, ``content``
(JSON text), ``error_type``, ``error``, ``model``, ``provider``, ``generation_id``, ``mode``,
``attempts``, ``prompt_tokens``, ``completion_tokens``, ``cost`` (USD as an exact decimal string).
It never raises for a row: a row the budget did not start is ``ok`` False with ``error_type``
``NotStarted``. `BatchUDF.summarize` adds the output of every worker up, exactly.

What is per worker and what is per job:

- ``concurrency`` is rows in flight per worker process (Ray actor, Dask worker, pool process); the job
  has workers x concurrency in flight, and the 429 back-off of each worker is its own.
- ``max_cost`` without ``job_dir`` holds for each batch the engine hands a worker (a warning says so);
  with ``job_dir`` (a directory every worker can see: local for one machine, a shared filesystem for a
  cluster) it holds for the whole job, through a `JobLedger`.
- duplicate ids are checked within each batch only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import uuid
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ..errors import ConfigurationError, MissingAPIKeyError, SettingsError
from .run import NOT_STARTED, BatchRow, BatchRun, _failed, in_input_order, money, plain_id

if TYPE_CHECKING:
    from ..engine.calls import Engine

__all__ = ["BatchUDF", "NOT_STARTED", "COLUMNS"]

log = logging.getLogger("openrouter_registry")

T = TypeVar("T")

#: The output columns, in order.
COLUMNS = (
    "id", "ok", "content", "error_type", "error", "model", "provider", "generation_id", "mode", "attempts",
    "prompt_tokens", "completion_tokens", "cost",
)
_warned_budget = False


def _plain(value: Any) -> Any:
    """A cell of a numpy/pandas batch as a plain Python value (numpy scalars through ``.item()``)."""
    if isinstance(value, (str, int, float, bool, type(None), dict, list)):
        return value
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        return item()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    return value


def _rows_of(batch: Any) -> tuple[list[dict[str, Any]], str]:
    """The batch as row dicts, and its kind: ``"pandas"``, ``"columns"`` or ``"rows"``."""
    if hasattr(batch, "to_dict") and hasattr(batch, "columns") and hasattr(batch, "iloc"):  # a pandas DataFrame
        records = batch.to_dict(orient="records")
        return [{str(k): _plain(v) for k, v in record.items()} for record in records], "pandas"
    if isinstance(batch, Mapping):
        columns = {str(k): v for k, v in batch.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ConfigurationError(f"the batch's columns have different lengths: {sorted(lengths)}")
        size = lengths.pop() if lengths else 0
        return [{k: _plain(v[i]) for k, v in columns.items()} for i in range(size)], "columns"
    if isinstance(batch, (str, bytes)) or not isinstance(batch, Iterable):
        raise ConfigurationError(
            f"BatchUDF takes a dict of columns, a pandas DataFrame or a list of row dicts, got {type(batch).__name__}"
        )
    rows = list(batch)
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ConfigurationError(f"row {index} of the batch is a {type(row).__name__}, not a dict")
    return [{str(k): _plain(v) for k, v in row.items()} for row in rows], "rows"


def _output(row: BatchRow) -> dict[str, Any]:
    """One output row: plain JSON-able cells (content as JSON text, cost as a decimal string)."""
    content = None
    if row.ok:
        result = row.result
        data = result.content_json() if result is not None else row.content
        content = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return {
        "id": row.id,
        "ok": row.ok,
        "content": content,
        "error_type": None if row.error is None else row.error.type,
        "error": None if row.error is None else row.error.message,
        "model": row.model,
        "provider": row.provider,
        "generation_id": row.generation_id,
        "mode": row.mode,
        "attempts": row.attempts,
        "prompt_tokens": row.usage.prompt_tokens,
        "completion_tokens": row.usage.completion_tokens,
        "cost": None if row.cost is None else str(row.cost),
    }


class _Loop:
    """An event loop in a daemon thread: the worker's service and pool live on it across calls, and a
    call works the same from a plain process, a thread or a caller that runs its own loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="openrouter-registry-batch", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()


class BatchUDF:
    """A batch callable for Ray Data, Dask and multiprocessing; see the module docstring."""

    #: The output's columns and their dtypes, for ``dask.dataframe.map_partitions(udf, meta=BatchUDF.META)``.
    META: ClassVar[dict[str, str]] = {
        "id": "object", "ok": "bool", "content": "object", "error_type": "object", "error": "object",
        "model": "object", "provider": "object", "generation_id": "object", "mode": "object",
        "attempts": "int64", "prompt_tokens": "int64", "completion_tokens": "int64", "cost": "object",
    }

    def __init__(
        self,
        *,
        schema: Any = None,
        template: str | None = None,
        model: str | None = None,
        concurrency: int = 16,
        max_cost: float | str | Decimal | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        job_dir: str | os.PathLike[str] | None = None,
        **settings: Any,
    ) -> None:
        from ..schemas.inputs import check_call_options
        from ..schemas.schema import to_json_schema
        from ..settings import Settings
        from .run import check_template

        if "api_key" in settings:
            raise ConfigurationError(
                "BatchUDF never carries the API key to the workers: set OPENROUTER_API_KEY in every worker's "
                "environment (Ray: ray.init(runtime_env={'env_vars': {'OPENROUTER_API_KEY': ...}}))"
            )
        check_call_options(temperature, max_tokens, model)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"concurrency must be a positive integer, got {concurrency!r}")
        amount = money(max_cost)
        if amount is not None and amount <= 0:
            raise ConfigurationError(f"max_cost must be a positive amount of USD, got {max_cost!r}")
        if job_dir is not None and amount is None:
            raise ConfigurationError("job_dir shares a budget between workers: pass max_cost with it")
        check_template(template)
        to_json_schema(schema)  # a schema that cannot be one fails here, on the driver
        Settings.from_env(**settings)  # unknown or malformed settings fail here too
        self.options: dict[str, Any] = {
            "schema": schema, "template": template, "model": model, "concurrency": concurrency,
            "max_cost": None if amount is None else str(amount), "max_tokens": max_tokens,
            "temperature": temperature, "extra_body": None if extra_body is None else dict(extra_body),
        }
        self.job_dir = None if job_dir is None else os.fspath(job_dir)
        self.settings = dict(settings)
        self._local: tuple[_Loop, Engine, Any] | None = None

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.options.items() if v is not None and k != "schema"}
        return f"BatchUDF({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    # --- pickling: plain settings only ---------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"options": self.options, "job_dir": self.job_dir, "settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.options, self.job_dir, self.settings = state["options"], state["job_dir"], state["settings"]
        self._local = None

    # --- the call --------------------------------------------------------------------------------------

    def __call__(self, batch: Any) -> Any:
        rows, kind = _rows_of(batch)
        out = [_output(row) for row in self._run(rows)]
        if kind == "rows":
            return out
        columns = {name: [row[name] for row in out] for name in COLUMNS}
        if kind == "pandas":
            import importlib

            pandas = importlib.import_module("pandas")
            return pandas.DataFrame(columns, columns=list(COLUMNS))
        try:
            import numpy
        except ImportError:  # a dict of lists is what a caller without numpy gave and gets
            return columns
        return {name: numpy.array(values, dtype=object) for name, values in columns.items()}

    def _worker(self) -> tuple[_Loop, Engine, Any]:
        if self._local is None:
            from ..engine.calls import Engine
            from ..settings import Settings
            from .shared import JobLedger

            service = Engine(Settings.from_env(**self.settings))
            ledger = None
            if self.job_dir is not None:
                ledger = JobLedger(self.job_dir, worker=f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
            elif self.options["max_cost"] is not None:
                _warn_budget_per_batch(self.options["max_cost"])
            self._local = (_Loop(), service, ledger)
        return self._local

    def _run(self, rows: list[dict[str, Any]]) -> list[BatchRow]:
        loop, service, ledger = self._worker()
        options = {k: v for k, v in self.options.items() if k != "schema"}
        try:
            run = BatchRun(service, rows, schema=self.options["schema"], ledger=ledger, **options)  # checks first
            return loop.run(in_input_order(run, rows))
        except (SettingsError, MissingAPIKeyError):  # no key in this worker's environment: the job cannot run
            raise
        except ConfigurationError as error:  # e.g. duplicate ids within the batch: every row says why
            return [_failed(plain_id(r.get("id")), i + 1, "ConfigurationError", str(error)) for i, r in enumerate(rows)]

    # --- the job's totals --------------------------------------------------------------------------------

    @staticmethod
    def summarize(output: Any) -> dict[str, Any]:
        """The whole job from the workers' output (a DataFrame, a dict of columns, or lists of output rows,
        concatenated or not): rows, ok, failed by type, not started, tokens and the exact cost."""
        rows: list[dict[str, Any]] = []
        parts: Sequence[Any] = output if isinstance(output, list) and output and isinstance(output[0], list) else [output]
        for part in parts:
            rows.extend(_rows_of(part)[0])
        failed: dict[str, int] = {}
        cost = Decimal(0)
        for row in rows:
            if not row.get("ok"):
                kind = str(row.get("error_type"))
                failed[kind] = failed.get(kind, 0) + 1
            if row.get("cost") not in (None, ""):
                cost += Decimal(str(row["cost"]))
        return {
            "rows": len(rows),
            "ok": sum(1 for row in rows if row.get("ok")),
            "failed": dict(sorted(failed.items())),
            "not_started": failed.get(NOT_STARTED, 0),
            "prompt_tokens": sum(int(row.get("prompt_tokens") or 0) for row in rows),
            "completion_tokens": sum(int(row.get("completion_tokens") or 0) for row in rows),
            "cost": cost,
        }


def _warn_budget_per_batch(max_cost: str) -> None:
    global _warned_budget
    if not _warned_budget:
        _warned_budget = True
        log.warning(
            "BatchUDF max_cost $%s holds for each batch a worker is given, not for the job: pass job_dir= "
            "(a directory every worker can see) for a job-wide budget", max_cost,
        )

