"""Reply parsers: turn a model's raw reply text into JSON data, locally, without ever raising.

- `parse_clean_json`: GPT's fast path (the whole reply is one strict JSON document), no search.
- `parse_unclosed`: the closing repair, called by the generation path only for ``finish_reason``
  ``"stop"`` (an object whose closing brackets never came), only when the result validates.

Three parsers share one candidate search:

- `parse_json_reply`: the core's generic parser (the ``parse_structured`` hook, ``trylast``). Recovers
  clean JSON, fenced blocks, JSON inside prose, a value followed by chatter, JSON encoded as a JSON
  string, Python literals, then real habits (`habits`: curly quotes, odd escapes, raw newlines in
  strings, an unopened ``</think>``) and, through ``json_repair``, trailing commas, single quotes and
  comments.
- `parse_embedded_json`: Claude's habits (prose around ```json fences, a ``{`` prefill continued and
  followed by prose); exact JSON only.
- `parse_python_literal`: Llama's habits (a "Here is the JSON:" preamble, Python literals such as
  ``True``/``None``/single quotes, trailing commas).

The search: the whole reply first, then `candidates.json_candidates` (fenced blocks, json-tagged
first, then balanced ``{...}``/``[...]`` spans found by a string-aware scan). Every exact decoding of every
candidate comes before any repaired one, so a repair never shadows JSON that is really in the text.
With a schema, the first value that validates wins, else the first value of an acceptable type;
without one, the first JSON object or array. A parser returns None when nothing can be recovered.

Strict and bounded: NaN, Infinity and out-of-range numbers are never accepted; values nested deeper
than `MAX_DEPTH` are refused before any decoder runs (no ``RecursionError`` anywhere); the work is
linear in the reply's length (tests/test_parse_bounds.py counts it), with absolute caps on what the
slow readers (``json_repair``, Python's parser) are given.
"""

from __future__ import annotations

import ast
import itertools
import json
import logging
import math
import re
import warnings
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..schemas.fastjson import MAPPING, MISS, fast_loads
from .candidates import (
    CLOSER_OF,
    MAX_SCAN_CHARS,
    OPENER,
    Replay,
    json_candidates,
    strip_control_tokens,
    strip_preamble,
    trim,
    whole_then,
    without_reasoning,
)

__all__ = [
    "parse_clean_json",
    "parse_json_reply",
    "parse_unclosed",
    "parse_embedded_json",
    "parse_python_literal",
    "json_candidates",
    "strip_control_tokens",
    "strip_preamble",
]

log = logging.getLogger(__name__)

#: Candidates longer than this are never given to ``json_repair`` or the Python-literal reader.
MAX_REPAIR_CHARS = 50_000
#: ``json_repair`` (pure Python, up to ~80 interpreted lines per character) reads at most this many
#: characters per reply in all, whatever the number of candidates.
REPAIR_BUDGET_CHARS = 100_000
#: Candidates longer than this are never given to Python's parser (a C call that holds the GIL for
#: its whole run: a longer literal would stall the event loop even from a worker thread).
MAX_LITERAL_CHARS = 20_000
#: Values nested deeper than this are refused before any decoder sees them (no ``RecursionError``:
#: the C decoder recurses once per level; schema validation bounds itself at 100 levels and says so).
MAX_DEPTH = 500
#: ``json_repair`` and the Python-literal reader recurse several frames per level: a lower bound.
MAX_REPAIR_DEPTH = 64
#: JSON encoded as a JSON string is decoded at most this many times.
MAX_UNWRAP = 3

_LEADING_COMMENT = re.compile(r"\s*(?://[^\n]*|/\*.*?\*/|#[^\n]*)", re.DOTALL)
_OBJECT_START = re.compile(r"""\{\s*(?:\}|"(?:[^"\\]|\\.)*"\s*:|'(?:[^'\\]|\\.)*'\s*:|[A-Za-z_$][\w$-]*\s*:)""")
_ARRAY_START = re.compile(r"""\[\s*(?:\]|[{\["'\d.+-]|(?:true|false|null|True|False|None)\b)""")
_PYTHON_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None}


class _NotJSON(ValueError):
    """A decoded value holds something JSON cannot represent."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJSON(f"{text} is not a finite number")
    return value


def _no_constant(name: str) -> Any:
    raise _NotJSON(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constant)
#: Also accepts literal control characters (newlines, tabs) inside strings: a habit, not an error.
_LENIENT = json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constant, strict=False)
#: A double-quoted string whose opening quote is not escaped (the quote first, then the look-behind:
#: the regex engine finds candidate quotes by a fast literal search instead of trying every position).
_UNESCAPED_DQ_STRING = re.compile(r'"(?<!\\")[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}()]+")
_DEPTH_CHUNK = 16_384
_BRACKET_STEP = str.maketrans({"[": "\x01", "{": "\x01", "(": "\x01", "]": "\xff", "}": "\xff", ")": "\xff"})


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """An upper bound of how deep the brackets (``[{(``) of ``text`` nest outside double-quoted
    strings, exact enough to compare with ``limit``: a text with at most ``limit`` openers is
    answered by counting them. Linear, in C (no Python step per character)."""
    openers = text.count("[") + text.count("{") + text.count("(")
    if openers <= limit:
        return openers
    skeleton = _brackets_outside_strings(text)
    level = highest = lowest = 0
    for start in range(0, len(skeleton), _DEPTH_CHUNK):  # chunks: no single C call holds the GIL for long
        steps = array("b", skeleton[start : start + _DEPTH_CHUNK].translate(_BRACKET_STEP).encode("latin-1"))
        highest = max(highest, max(itertools.accumulate(steps, initial=level)))
        lowest = min(lowest, min(itertools.accumulate(steps, initial=level)))
        level += sum(steps)
    return highest - lowest  # stray closers lower the running count by at most -lowest


def _drop(_: re.Match[str]) -> str:
    return ""


def _brackets_outside_strings(text: str) -> str:
    """``text``'s brackets outside double-quoted strings, in short C steps so that a worker thread
    hands the GIL back to the event loop often (one ``sub`` over a 1 MB reply of ``{"a":`` held it
    ~90 ms): the string ``sub`` calls back into Python once per string (the interpreter may switch
    threads there), and the other characters are dropped one chunk at a time (a character class:
    chunks give the same result)."""
    rest = _UNESCAPED_DQ_STRING.sub(_drop, text)
    return "".join(_NOT_BRACKET.sub("", rest[start : start + _DEPTH_CHUNK]) for start in range(0, len(rest), _DEPTH_CHUNK))


def _shallow(text: str, limit: int = MAX_DEPTH) -> bool:
    return nesting_depth(text, limit) <= limit


def _loads(text: str) -> Any:
    """``json.loads`` that refuses NaN, Infinity, numbers too large for a float, and values nested
    deeper than `MAX_DEPTH` (refused before decoding: the C decoder recurses once per level).
    orjson reads the usual reply (see `fastjson`); the json module decides the rest."""
    if not _shallow(text):
        raise _NotJSON("too deeply nested")
    value = fast_loads(text)
    return _DECODER.decode(text) if value is MISS else value


# --- decoders --------------------------------------------------------------------------------------

Decoder = Callable[[str], Iterator[Any]]


def _exact(text: str) -> Iterator[Any]:
    """The JSON value ``text`` is; else the object/array it starts with (followed by chatter); else,
    for JSON whose quotes are escaped (``{\\"a\\": 1}``, a JSON string's inside), the unescaped value."""
    if not _shallow(text):
        return
    try:
        yield _DECODER.decode(text)
        return
    except ValueError:
        pass
    if text[:1] in CLOSER_OF:
        try:
            value = _DECODER.raw_decode(text)[0]
        except ValueError:
            pass
        else:
            yield value
            return
    if '\\"' in text and text[:1] in CLOSER_OF:
        try:
            yield _loads(_DECODER.decode('"' + text + '"'))
        except (ValueError, TypeError):
            pass


def _to_json(node: ast.AST) -> Any:
    """The JSON value of a Python literal's syntax tree; `_NotJSON` for anything else."""
    if isinstance(node, ast.Constant):
        value = node.value
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float) and math.isfinite(value):
            return value
        raise _NotJSON(f"{type(value).__name__} is not JSON")
    if isinstance(node, ast.Dict):
        result: dict[str, Any] = {}
        for key_node, value_node in zip(node.keys, node.values):
            key = _to_json(key_node) if key_node is not None else None
            if not isinstance(key, str):
                raise _NotJSON("object keys must be strings")
            result[key] = _to_json(value_node)
        return result
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_to_json(item) for item in node.elts]
    if isinstance(node, ast.Name) and node.id in _PYTHON_NAMES:
        return _PYTHON_NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) and isinstance(node.operand, ast.Constant):
        number = node.operand.value
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            return _to_json(ast.Constant(-number if isinstance(node.op, ast.USub) else number))
    raise _NotJSON(f"{type(node).__name__} is not a JSON literal")


def _python(text: str) -> Iterator[Any]:
    """The value of a Python dict/list literal (``True``/``None``, single quotes, trailing commas;
    JSON's ``true``/``false``/``null`` too), tuples as lists; nothing for sets, bytes, complex..."""
    if not text or text[0] not in "{[(" or len(text) > MAX_LITERAL_CHARS or not _literal_shaped(text):
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text, mode="eval")
        value = _to_json(tree.body)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return
    yield value


_PY_STRING = re.compile(r"""(?<!\\)(?:"[^"\\\n]*(?:\\.[^"\\\n]*)*"|'[^'\\\n]*(?:\\.[^'\\\n]*)*')""")
_PY_ESCAPE = re.compile(r"""\\(?:\\|([^A-Za-z0-9\s"'/]))""")
_PY_NUMBER = re.compile(r"(?:\d[\d.]*|\.\d+)(?:[eE][-+]?\d+)?")
_NOT_A_LITERAL = re.compile(
    r"[*/%@&|^~<>=!;\\\x00]"  # operators, statements, line continuations
    r"|[^\s\[{(,:]\s*[-+]|[-+]\s*[^\s0]"  # a sign only starts a number: no binary +/-, no sign chains
    r"|\b(?!(?:True|False|None|true|false|null)\b)[A-Za-z_]\w*"  # any other name or keyword
    r'|"\s*"'  # two string literals in a row: Python joins them, JSON has no such thing
)


def _literal_shaped(text: str) -> bool:
    """True when, strings aside, ``text`` holds only what a JSON-like Python literal can (brackets,
    numbers, signs, ``True``/``None``..., no two strings in a row) and nests at most
    `MAX_REPAIR_DEPTH` deep. Python's parser recurses on operator chains and nesting
    (``RecursionError``, ``MemoryError``): such text never reaches it. Linear, in C."""
    if "\\" in text and any(odd.group(1) for odd in _PY_ESCAPE.finditer(text)):
        return False  # "zip\_code": Python would keep the backslash; the habit fixes read it as meant
    skeleton = _PY_NUMBER.sub("0", _PY_STRING.sub('"', text))
    return _NOT_A_LITERAL.search(skeleton) is None and _shallow(skeleton, MAX_REPAIR_DEPTH)


def _json_compatible(value: Any, depth: int = 0) -> Any:
    """``value`` with tuples as lists; `_NotJSON` for anything JSON cannot hold (NaN, sets, bytes...)."""
    if depth > MAX_DEPTH:
        raise _NotJSON("too deeply nested")
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise _NotJSON("not a finite number")
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise _NotJSON("object keys must be strings")
        return {key: _json_compatible(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_compatible(item, depth + 1) for item in value]
    raise _NotJSON(f"{type(value).__name__} is not JSON")


def _plausible(text: str) -> bool:
    """True when ``text`` starts like a JSON object or array (comments skipped), so that repairing
    it has a chance of finding data rather than turning prose into strings."""
    opener = text[:1]
    if opener not in CLOSER_OF:
        return False
    rest = text[1:4096]
    comment = _LEADING_COMMENT.match(rest)
    while comment is not None:
        rest = rest[comment.end() :]
        comment = _LEADING_COMMENT.match(rest)
    pattern = _OBJECT_START if opener == "{" else _ARRAY_START
    return pattern.match(opener + rest) is not None


def _habitual(text: str) -> Iterator[Any]:
    """The value of a block once real habits are undone (`habits`): literal control characters in
    strings, curly quotes as delimiters, backslash escapes JSON does not know. Decoded strictly
    otherwise (an object/array followed by chatter is fine; single quotes go to the literal reader)."""
    if text[:1] not in CLOSER_OF or not _shallow(text):
        return
    from .habits import fix_habits

    fixed = fix_habits(text)
    for candidate in (text, fixed) if fixed != text else (text,):
        try:
            yield _LENIENT.raw_decode(candidate)[0]
            return
        except ValueError:
            continue
    yield from _python(fixed)


_NON_FINITE = re.compile(r"\b(?:NaN|Infinity|nan|inf)\b")


def _repaired(text: str) -> Iterator[Any]:
    """What ``json_repair`` makes of a block that looks like JSON: only an object for ``{...}`` and
    an array for ``[...]``, never an empty one (an empty value is not really in the text)."""
    if len(text) > MAX_REPAIR_CHARS or not _plausible(text) or not _shallow(text, MAX_REPAIR_DEPTH):
        return
    if _NON_FINITE.search(_UNESCAPED_DQ_STRING.sub('""', text)):
        return  # json_repair would make NaN a string "NaN": not what the model meant; re-ask instead
    import json_repair

    try:
        value = json_repair.repair_json(text, return_objects=True, skip_json_loads=True)
        value = _json_compatible(value)
    except Exception:  # json_repair raises little, but anything it raises means "no"
        return
    expected = dict if text[0] == "{" else list
    if isinstance(value, expected) and value:
        yield value


def _unwrapped(value: Any) -> Iterator[Any]:
    """``value``, preceded by what it encodes when it is a string holding JSON (an object, an array,
    or another such string: JSON encoded several times)."""
    layers = [value]
    while isinstance(layers[-1], str) and len(layers) <= MAX_UNWRAP:
        inner = layers[-1].strip()
        if not inner or inner[0] not in '{["':
            break
        try:
            layers.append(_loads(inner))
        except (ValueError, RecursionError):
            break
    yield from reversed(layers)


def _values(
    texts: Iterable[str], decoders: tuple[Decoder, ...], done: set[str], found: set[str] | None = None
) -> Iterator[Any]:
    """The values of each text not in ``done`` (which collects the texts tried), from the first of
    the decoders that gets any; ``found`` collects the texts that gave a value."""
    for text in texts:
        if text in done:
            continue
        done.add(text)
        for decode in decoders:
            decoded = False
            for value in decode(text):
                decoded = True
                if found is not None:
                    found.add(text)
                yield from _unwrapped(value)
            if decoded:
                break


# --- choosing --------------------------------------------------------------------------------------

_MISSING: Any = object()
_KINDS = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return "array" if isinstance(value, list) else "null"


def _schema_kinds(schema: Any, root: Any, depth: int = 0) -> set[str]:
    """The JSON types a schema admits at its top, as far as can be told (empty: unknown)."""
    if not isinstance(schema, MAPPING) or depth > 8:
        return set()
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {kind for kind in declared if isinstance(kind, str)}
    if "const" in schema:
        return {_kind(schema["const"])}
    if isinstance(schema.get("enum"), list):
        return {_kind(value) for value in schema["enum"]}
    if any(key in schema for key in ("properties", "required", "additionalProperties", "patternProperties")):
        return {"object"}
    if any(key in schema for key in ("items", "prefixItems", "contains")):
        return {"array"}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        target: Any = root
        for part in ref[1:].split("/")[1:]:
            target = target.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(target, MAPPING) else None
        return _schema_kinds(target, root, depth + 1)
    kinds: set[str] = set()
    for key in ("anyOf", "oneOf", "allOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            for branch in branches:
                kinds |= _schema_kinds(branch, root, depth + 1)
    return kinds


def _accepts(kinds: set[str], value: Any) -> bool:
    kind = _kind(value)
    if kind == "null":
        return False
    return kind in kinds or (kind == "integer" and "number" in kinds)


def _validates(value: Any, schema: Mapping[str, Any]) -> bool:
    from ..schemas.validation import is_valid

    try:
        return is_valid(value, schema)
    except Exception:  # an invalid schema is reported by validation later; here it just never matches
        return False


def _choose(values: Iterable[Any], schema: Mapping[str, Any] | None, *, valid_only: bool) -> Any | None:
    """The first value that validates against ``schema``; else (unless ``valid_only``) the first of
    a type the schema admits. Without a schema: the first object or array."""
    kinds = (_schema_kinds(schema, schema) & _KINDS if schema is not None else set()) or {"object", "array"}
    fallback = _MISSING
    for value in values:
        if not _accepts(kinds, value):
            continue
        if schema is None or _validates(value, schema):
            return value
        if fallback is _MISSING and not valid_only:
            fallback = value
    return None if fallback is _MISSING else fallback


def _safely(
    search: Callable[[str], Iterator[Any]], text: Any, schema: Mapping[str, Any] | None, *, valid_only: bool
) -> Any | None:
    """Run a search, turning any failure into None (a parser never raises)."""
    if not isinstance(text, str):
        return None
    try:
        return _choose(search(text), schema if isinstance(schema, MAPPING) else None, valid_only=valid_only)
    except Exception:
        log.debug("reply parsing failed", exc_info=True)
        return None


# --- the parsers -----------------------------------------------------------------------------------


def _views(text: str) -> list[str]:
    """The reply as written (a leading reasoning block dropped), then, when it differs, without
    control tokens and invisible characters: JSON that is really in the text is found first. Last,
    when a reasoning draft ends in ``</think>`` without an opening tag, what follows that tag."""
    from .habits import after_unopened_reasoning

    raw = without_reasoning(text)
    cleaned = strip_control_tokens(raw)
    views = [raw] if cleaned == raw else [raw, cleaned]
    answer = after_unopened_reasoning(cleaned)
    return views if answer is None else [*views, answer]


def _search(
    text: str, decoders: tuple[Decoder, ...], *, preamble: bool = False, repair: bool = False
) -> Iterator[Any]:
    """The values of every candidate of every view; with ``repair``, then the candidates of the last
    two views decoded with habits undone, then repaired by ``json_repair``."""
    if len(text) > MAX_SCAN_CHARS:
        yield from _values([trim(text)], (_exact,), set())
        return
    views = [strip_preamble(trim(view)) if preamble else view for view in _views(text)]
    blocks = [Replay(json_candidates(view)) for view in views]
    tried: set[str] = set()
    exact: set[str] = set()
    for view, found in zip(views, blocks):
        yield from _values(whole_then(view, found), decoders, tried, exact)
    if repair:
        last = list(itertools.chain(*blocks[:-3:-1]))  # at most 2 x MAX_CANDIDATES blocks, already scanned
        fixed = set(exact)
        yield from _values(last, (_habitual,), set(exact), fixed)
        yield from _values(_budgeted(last, REPAIR_BUDGET_CHARS), (_repaired,), fixed)


def _budgeted(texts: Iterable[str], budget: int) -> Iterator[str]:
    """``texts`` while their total length stays within ``budget`` characters."""
    for text in texts:
        budget -= len(text)
        if budget < 0:
            return
        yield text


def _generic_search(text: str) -> Iterator[Any]:
    return _search(text, (_exact, _python), repair=True)


def parse_json_reply(text: str, schema: Mapping[str, Any] | None) -> Any | None:
    """The JSON value in a model's reply, or None when nothing can be recovered. Never raises.

    Recovers clean JSON (fast path), fenced blocks, JSON inside prose, a value followed by chatter,
    JSON encoded as a JSON string, Python literals, control tokens and invisible characters around
    it, and (through ``json_repair``) trailing commas, single quotes and comments. With ``schema``,
    the first candidate that validates wins, else the first of a type the schema admits (objects and
    arrays only for object/array schemas); without one, the first JSON object or array.
    """
    return _safely(_generic_search, text, schema, valid_only=False)


def parse_clean_json(text: str, schema: Mapping[str, Any] | None = None) -> Any | None:
    """GPT's habit: the whole reply is one clean JSON document (strict ``json_schema`` output).
    The fast path: one strict, depth-bounded decode, no search; None (pass the reply on to the
    generic parser) for anything else, NaN and Infinity included, and for a document of a type
    ``schema`` does not admit (e.g. a JSON string holding the object). A clean document of the
    right type is the model's answer, valid or not (validation decides). Never raises."""
    if not isinstance(text, str):
        return None
    try:
        value = _loads(text)
    except (ValueError, RecursionError, MemoryError):
        return None
    kinds = _schema_kinds(schema, schema) & _KINDS if isinstance(schema, MAPPING) else set()
    return value if not kinds or _accepts(kinds, value) else None  # a JSON string holding the object: the core unwraps it


_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]]|"')
_VALUE_END = re.compile(r'(?:"|\d|true|false|null|[}\]])\s*\Z')
_CLOSING_FENCE = re.compile(r"\n[ \t]*```[ \t]*\Z")


def _closing(text: str) -> str | None:
    """``text``'s first JSON object or array with the closers it lacks appended, when the text ends
    right after a complete value inside it (not in a string, not after ``,`` or ``:``); else None.
    Linear: one regex pass over strings and brackets."""
    start = OPENER.search(text)
    if start is None or _VALUE_END.search(text) is None:
        return None
    expected: list[str] = []
    for token in _JSON_TOKEN.finditer(text, start.start()):
        mark = token.group()
        if mark in CLOSER_OF:
            if len(expected) >= MAX_DEPTH:
                return None
            expected.append(CLOSER_OF[mark])
        elif mark in ("}", "]"):
            if not expected or expected.pop() != mark:
                return None  # a mismatched closer: not a value cut short, leave it to the parsers
            if not expected:
                return None  # the value closed: nothing is missing
        elif mark == '"':
            return None  # ends inside a string
    if not expected:
        return None
    return text[start.start() :].rstrip() + "".join(reversed(expected))


def parse_unclosed(text: str, schema: Mapping[str, Any] | None) -> Any | None:
    """A reply whose JSON object or array never got its closing brackets although the model said it
    had finished (``finish_reason`` ``"stop"``): the value with them added, only when it validates
    against ``schema``; else None. The generation path calls it only for ``"stop"`` (never for
    ``"length"``: a cut-off reply is incomplete data, not a habit). Never raises."""
    if not isinstance(text, str) or not isinstance(schema, MAPPING) or len(text) > MAX_SCAN_CHARS:
        return None
    try:
        closed = _closing(_CLOSING_FENCE.sub("", trim(strip_control_tokens(without_reasoning(text)))))
    except Exception:
        log.debug("closing repair failed", exc_info=True)
        return None
    if closed is None:
        return None
    return _safely(_generic_search, closed, schema, valid_only=True)


def _embedded_search(text: str) -> Iterator[Any]:
    return _search(text, (_exact,))


def parse_embedded_json(text: str, schema: Mapping[str, Any] | None) -> Any | None:
    """Claude's habits: exact JSON in a ```json fence, inside prose, or a ``{`` prefill's continuation
    followed by prose. With ``schema``, only a value that validates is returned. None passes the
    reply on to the generic parser. Never raises."""
    return _safely(_embedded_search, text, schema, valid_only=True)


def _literal_search(text: str) -> Iterator[Any]:
    return _search(text, (_exact, _python), preamble=True)


def parse_python_literal(text: str, schema: Mapping[str, Any] | None) -> Any | None:
    """Llama's habits: a "Here is the JSON:" preamble, then JSON or a Python dict/list literal
    (``True``/``None``, single quotes, trailing commas; tuples become lists; sets, bytes and complex
    numbers are refused). With ``schema``, only a value that validates is returned. None passes the
    reply on to the generic parser. Never raises."""
    return _safely(_literal_search, text, schema, valid_only=True)
