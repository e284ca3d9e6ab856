"""Bounds of the reply path that a sweep of constant mutants (issue 24) found unpinned: how much of a
provider's raw error is read, where a leading ``<think>`` block is looked for, and the character budget
of the json_repair pass. Each is pinned at the bound and one past it."""

from __future__ import annotations

from typing import Any

import pytest

from openrouter_registry.replies.decode import decode_chat, error_for
from openrouter_registry.replies.structured import REPAIR_BUDGET_CHARS, parse_json_reply


def _raw_error(raw: str) -> str:
    body = {"error": {"message": "Provider returned error", "code": 502, "metadata": {"raw": raw}}}
    return error_for(502, body, model=None).api_message


@pytest.mark.parametrize(("blanks", "shown"), [(798, "a b"), (799, "a")])
def test_a_provider_detail_is_read_from_its_first_800_characters_blanks_included(blanks: int, shown: str) -> None:
    """The detail shown (at most 200 characters) is taken from the first 4 x 200 characters of the raw
    message: a word at character 800 is never read, however many blanks come before it."""
    assert _raw_error("a" + " " * blanks + "b") == f"Provider returned error: {shown}"


@pytest.mark.parametrize(("blanks", "split"), [(57, True), (58, False)])
def test_a_think_block_is_split_off_when_it_opens_within_the_first_64_characters(blanks: int, split: bool) -> None:
    """``<think>`` ending by character 64 of the content (blanks before it) is reasoning; later, it is text."""
    content = " " * blanks + "<think>plan</think>Paris"
    reply = decode_chat({"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]})
    assert (reply.text, reply.parts.reasoning) == (("Paris", "plan") if split else (content, None))


_REPLY_SCHEMA: dict[str, Any] = {"type": "object", "required": ["reply"], "properties": {"reply": {"type": "string"}}}


@pytest.mark.parametrize(("extra", "repaired"), [(0, True), (1, False)])
def test_json_repair_reads_blocks_while_their_total_stays_within_100_000_characters(extra: int, repaired: bool) -> None:
    """A valid object that fails the schema, then a broken one that json_repair fixes: repaired while the
    two blocks hold REPAIR_BUDGET_CHARS (100,000) characters in all, not one more (the first block is the
    answer then, as the first object of the right type)."""
    broken = '{"reply": "yes" "n": 1}'
    pad = '{"pad": "' + "x" * (REPAIR_BUDGET_CHARS - len(broken) - 11 + extra) + '"}'
    value = parse_json_reply(pad + " " + broken, _REPLY_SCHEMA)
    assert REPAIR_BUDGET_CHARS == 100_000
    assert isinstance(value, dict) and sorted(value) == (["n", "reply"] if repaired else ["pad"])


# Judged equivalent (constant sweep of 2026-12-03):
# - replies/decode.py decode_chat's `"<think>" in text[:64]` -> text[:65], and split_think's own
#   `text[:64]` -> text[:65]: the content passes both checks on its way (split_think's other caller passes
#   no text), so widening either one alone changes nothing; the test above pins the bound they share.
