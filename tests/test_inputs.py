"""Bad input types are refused before any request, naming the field; schema $refs resolve before the
request; recursive schemas validate to a bounded depth, never with a RecursionError; a re-ask sends
back a bounded excerpt of the invalid reply.

(No ``from __future__ import annotations`` here: the recursive classes below use the quoted forward
references ``Optional["Node"]`` exactly as users write them.)"""

import dataclasses
import json
from collections.abc import Iterator
from typing import Any, Optional

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openrouter_registry import ConfigurationError, OpenRouterService, Settings, StructuredOutputError
from openrouter_registry.schemas.inputs import json_copy
from openrouter_registry.plugins.registry import Registry
from openrouter_registry.engine.calls import REASK_EXCERPT_CHARS
from openrouter_registry.testing import FakeOpenRouter, Scripted
from openrouter_registry.schemas.validation import MAX_DEPTH, validate

LLAMA = "meta-llama/llama-3.1-8b-instruct"  # prompt mode: the reply text is what the test scripts


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as s:
        yield s


def service_for(server: FakeOpenRouter, **overrides: Any) -> OpenRouterService:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, **overrides)
    return OpenRouterService(settings, registry=Registry(environ={}))


def reply(content: str) -> Scripted:
    return Scripted(json={
        "id": "gen-1", "model": LLAMA, "provider": "Together",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
    })


def chat_requests(server: FakeOpenRouter) -> list[Any]:
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


# --- input types --------------------------------------------------------------------------------------


def user(content: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": content}]


@pytest.mark.parametrize(
    ("call", "words"),
    [
        ({"messages": user(b"hello")}, ["messages[0].content must be a string", "bytes"]),
        ({"messages": user({"hello"})}, ["messages[0].content must be a string", "set"]),
        ({"messages": user("caf\udce9")}, ["messages[0].content holds a lone surrogate (U+DCE9 at index 3)"]),
        ({"prompt": "bad \ud800 text"}, ["the prompt holds a lone surrogate"]),
        ({"messages": user([{"type": "text", "text": b"hi"}])}, ["messages[0].content[0].text is a bytes", "decode"]),
        ({"messages": user([{"type": "text", "text": "hi", "cache_control": {1: "x"}}])},
         ["messages[0].content[0].cache_control has a int key"]),
        ({"messages": user([{"text": "no type"}])}, ["list of content parts"]),
        ({"messages": [{"role": "user", "content": "hi", "name": object()}]}, ["messages[0].name is a object"]),
        ({"prompt": "hi", "extra_body": {"top_p": float("nan")}}, ["extra_body.top_p is nan", "NaN and infinity"]),
        ({"prompt": "hi", "extra_body": {"provider": {"order": {"OpenAI"}}}}, ["extra_body.provider.order is a set", "use a list"]),
        ({"prompt": "hi", "extra_body": ["top_p", 1]}, ["extra_body must be a dict"]),
        ({"prompt": "hi", "schema": {"type": "object", "required": {"a"}}}, ["schema.required is a set"]),
        ({"prompt": "hi", "schema": {"enum": [float("inf")]}}, ["schema.enum[0] is inf"]),
        ({"prompt": "hi", "schema": "object"}, ["schema must be a JSON Schema dict", "got str"]),
        ({"prompt": "hi", "schema": 42}, ["schema must be a JSON Schema dict", "got int"]),
        ({"prompt": "hi", "model": 7}, ["model must be a model id"]),
        ({"prompt": "hi", "max_reasks": -1}, ["max_reasks must be an integer >= 0"]),
    ],
)
async def test_bad_input_is_refused_before_any_request_naming_the_field(
    server: FakeOpenRouter, call: dict[str, Any], words: list[str]
) -> None:
    async with service_for(server) as service:
        with pytest.raises(ConfigurationError) as info:
            await service.generate(**call)
    for word in words:
        assert word in str(info.value)
    assert server.requests == []


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_input_nested_beyond_the_bound_is_refused_not_a_recursion_error(server: FakeOpenRouter) -> None:
    async with service_for(server) as service:
        with pytest.raises(ConfigurationError, match="nested more than 200 levels deep"):
            await service.generate("hi", extra_body={"metadata": nested(100_000)})
        with pytest.raises(ConfigurationError, match="nested more than 200 levels deep"):
            await service.generate("hi", schema=nested(5_000))
    assert server.requests == []


async def test_stream_and_embed_check_their_input_too(server: FakeOpenRouter) -> None:
    async with service_for(server) as service:
        with pytest.raises(ConfigurationError, match=r"messages\[0\].content must be a string"):
            service.stream(messages=user(b"x"))
        with pytest.raises(ConfigurationError, match=r"extra_body.x is a set"):
            service.stream("hi", extra_body={"x": {1}})
        with pytest.raises(ConfigurationError, match=r"texts\[1\] holds a lone surrogate"):
            await service.embed(["fine", "bad \udc80"])
    assert server.requests == []


async def test_tuples_and_mappings_are_sent_as_plain_json(server: FakeOpenRouter) -> None:
    from types import MappingProxyType

    part = MappingProxyType({"type": "text", "text": "hi"})
    async with service_for(server) as service:
        await service.generate(messages=user((part,)), extra_body={"models": ("openai/gpt-4o", "openai/gpt-4o-mini")})
    body = chat_requests(server)[0].body
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert body["models"] == ["openai/gpt-4o", "openai/gpt-4o-mini"]


# --- $ref resolution before the request --------------------------------------------------------------


@pytest.mark.parametrize(
    "ref", ["#/$defs/missing", "#/properties/nope", "other.json", "https://schemas.example/city.json"]
)
async def test_an_unresolvable_ref_is_refused_before_the_request(server: FakeOpenRouter, ref: str) -> None:
    schema = {"type": "object", "properties": {"city": {"$ref": ref}}, "$defs": {"x": {"type": "string"}}}
    async with service_for(server) as service:
        with pytest.raises(ConfigurationError) as info:
            await service.generate("hi", schema=schema)
    assert f"the $ref {ref!r} at $.properties.city in the schema cannot be resolved" in str(info.value)
    assert server.requests == []


def test_refs_inside_the_schema_resolve_including_nested_ids_and_data_that_looks_like_a_ref() -> None:
    schema = {
        "$id": "https://example.com/root.json",
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/name"},
            "b": {"$id": "inner.json", "$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"},
            "c": {"$ref": "inner.json#/$defs/n"},
            "d": {"const": {"$ref": "not a reference"}},
        },
        "$defs": {"name": {"type": "string"}},
    }
    assert validate({"a": "x", "b": 1, "c": 2, "d": {"$ref": "not a reference"}}, schema) == []
    assert validate({"a": 1}, schema) == ["$.a: 1 is not of type 'string'"]


# --- recursive schemas: bounded depth, never a RecursionError -----------------------------------------

TREE = {
    "$defs": {"node": {"type": "object", "properties": {"child": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]},
                                                         "v": {"type": "integer"}}, "required": ["v"]}},
    "$ref": "#/$defs/node",
}


def chain(depth: int) -> Any:
    node: Any = None
    for i in range(depth):
        node = {"v": i, "child": node}
    return node


@pytest.mark.parametrize("depth", [MAX_DEPTH, MAX_DEPTH + 1, 900, 100_000])
def test_recursive_schema_validation_is_bounded(depth: int) -> None:
    errors = validate(chain(depth), TREE)
    if depth <= MAX_DEPTH:
        assert errors == []
    else:
        assert errors == [f"$: the reply nests more than {MAX_DEPTH} levels deep; at most {MAX_DEPTH} levels are validated"]


async def test_a_deep_reply_to_a_ref_cycle_schema_is_a_structured_output_error(server: FakeOpenRouter) -> None:
    deep = json.dumps(chain(300))  # (deeper replies are bounded by the parsers first; validation by MAX_DEPTH)
    server.enqueue(reply(deep), reply(json.dumps(chain(3))))
    async with service_for(server, max_reasks=1) as service:
        result = await service.generate("tree", schema=TREE, model=LLAMA)
        assert result.content == chain(3) and result.attempts == 2
        server.enqueue(reply(deep))
        with pytest.raises(StructuredOutputError, match="nests more than 100 levels deep"):
            await service.generate("tree", schema=TREE, model=LLAMA, max_reasks=0)


@dataclasses.dataclass
class Node:
    v: int
    child: Optional["Node"] = None


@attrs.define
class ANode:
    v: int
    child: Optional["ANode"] = None


def node_chain(cls: Any, depth: int) -> Any:
    node = None
    for i in reversed(range(depth)):
        node = cls(v=i, child=node)
    return node


def data_chain(depth: int) -> Any:
    node: Any = None
    for i in reversed(range(depth)):
        node = {"v": i, "child": node}
    return node


@pytest.mark.parametrize("cls", [Node, ANode])
async def test_recursive_dataclasses_and_attrs_classes_with_quoted_forward_refs(server: FakeOpenRouter, cls: Any) -> None:
    server.enqueue(reply(json.dumps(data_chain(60))), reply(json.dumps(data_chain(300))))
    async with service_for(server, max_reasks=0) as service:
        result = await service.generate("tree", schema=cls, model=LLAMA)
        assert result.content == node_chain(cls, 60)
        with pytest.raises(StructuredOutputError, match="nests more than 100 levels deep"):
            await service.generate("tree", schema=cls, model=LLAMA)


async def test_a_300_deep_reply_for_a_recursive_pydantic_model(server: FakeOpenRouter) -> None:
    pydantic = pytest.importorskip("pydantic")

    class PNode(pydantic.BaseModel):
        v: int
        child: Optional["PNode"] = None

    PNode.model_rebuild()
    server.enqueue(reply(json.dumps(data_chain(300))), reply(json.dumps(data_chain(40))))
    async with service_for(server, max_reasks=0) as service:
        with pytest.raises(StructuredOutputError, match="nests more than 100 levels deep"):
            await service.generate("tree", schema=PNode, model=LLAMA)
        result = await service.generate("tree", schema=PNode, model=LLAMA)
    assert result.content.v == 0 and result.content.child.child.v == 2


# --- re-ask: a bounded excerpt of the invalid reply -----------------------------------------------------


async def test_a_reask_sends_back_a_bounded_excerpt_of_a_huge_invalid_reply(server: FakeOpenRouter) -> None:
    huge = "x" * 5_000_000 + "THE END"
    server.enqueue(reply(huge), reply('{"v": 1}'))
    async with service_for(server, max_reasks=1) as service:
        result = await service.generate("v", schema=TREE, model=LLAMA)
    assert result.content == {"v": 1}
    sent_back = chat_requests(server)[1].body["messages"][-2]
    assert sent_back["role"] == "assistant" and len(sent_back["content"]) < REASK_EXCERPT_CHARS + 100
    assert sent_back["content"].startswith("x" * 3000) and sent_back["content"].endswith("THE END")
    assert f"[... {len(huge) - REASK_EXCERPT_CHARS} characters left out ...]" in sent_back["content"]


async def test_a_short_invalid_reply_is_sent_back_whole(server: FakeOpenRouter) -> None:
    server.enqueue(reply('{"w": 1}'), reply('{"v": 1}'))
    async with service_for(server, max_reasks=1) as service:
        await service.generate("v", schema=TREE, model=LLAMA)
    assert chat_requests(server)[1].body["messages"][-2]["content"] == '{"w": 1}'


# --- property: any value either becomes plain JSON or is a ConfigurationError -------------------------

_scalars = st.one_of(  # text with lone surrogates included (exclude_categories=[])
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(alphabet=st.characters(exclude_categories=[])),
    st.binary(max_size=4), st.frozensets(st.integers(), max_size=2), st.complex_numbers(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.tuples(inner, inner), st.sets(st.integers(), max_size=2),
        st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), inner, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_json_copy_gives_strict_json_or_a_configuration_error(value: Any) -> None:
    try:
        copied = json_copy(value, "extra_body")
    except ConfigurationError as error:
        assert str(error).startswith("extra_body")
        return
    text = json.dumps(copied, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogates
    assert json.loads(text) == copied
