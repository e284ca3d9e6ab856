"""`SchemaMemo`: what was computed from a JSON Schema, found again without serializing the schema.

The generation path derives several things from the caller's schema on every call (its validator,
whether it suits strict mode, its name). Keying a cache by the schema's canonical JSON costs a
``json.dumps(sort_keys=True)`` per lookup, which is most of what such a lookup costs. A caller
almost always passes the same schema object again, so this memo looks the object up by identity
and accepts the hit only if the object still equals (deeply) the snapshot taken when the value was
computed: a schema edited in place is computed afresh, never served stale. (The comparison is
Python's ``==``, done in C: the one edit it cannot see is swapping ``true``/``false`` for ``1``/``0``
in place, which Python counts as equal.)

    STRICT = SchemaMemo(is_strict_compatible)
    STRICT(schema)     # computed on the first call, then a dict lookup and a deep comparison

The memo is bounded (`SIZE` objects; it starts over when full) and keeps a reference to each schema
it holds, so an id is never reused while its entry exists. Not locked: two threads racing on a miss
both compute the same value.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["SchemaMemo", "SIZE"]

T = TypeVar("T")

#: Schema objects remembered per memo.
SIZE = 256


class SchemaMemo(Generic[T]):
    """``memo(schema)`` is ``compute(schema)``, computed once per schema object (see the module doc)."""

    __slots__ = ("_compute", "_entries")

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self._compute = compute
        self._entries: dict[int, tuple[Any, Any, T]] = {}

    def __call__(self, schema: Any) -> T:
        entry = self._entries.get(id(schema))
        if entry is not None and entry[0] is schema and entry[1] == schema:
            return entry[2]
        value = self._compute(schema)  # may raise: nothing is remembered then
        try:
            snapshot = copy.deepcopy(schema)
        except Exception:  # not plain data: computed every time, never remembered
            return value
        if len(self._entries) >= SIZE:
            self._entries.clear()
        self._entries[id(schema)] = (schema, snapshot, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
