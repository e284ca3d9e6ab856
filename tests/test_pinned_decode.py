"""Behaviours of replies/candidates.py and replies/decode.py that a constant-mutation pre-screen found
unpinned (issue 24): each test fails on one constant changed by one (or a bool flipped) and asserts what
a caller of the module's public functions sees."""

from __future__ import annotations

import json

import pytest

from openrouter_registry import APIError, InvalidResponseError, ProviderError
from openrouter_registry.replies.candidates import Replay, json_candidates, strip_control_tokens, trim
from openrouter_registry.replies.decode import body_error, decode_chunk, error_for, split_think, tool_call_of

# Judged equivalent (nothing a user sees changes):
# - replies/candidates.py:49 `_LONGEST_TOKEN = 76` -> 77: the window around a cut only grows; no token is longer than 76, so the same tokens cross each cut and the pieces give the same text.
# - replies/candidates.py:51 `_STEP_CHARS = 16_384` -> 16_385: only the size of the pieces (and of `_string_end`'s C calls) changes; both paths are exact, so the text and the string ends are the same.
# - replies/candidates.py:54 `_TAIL = 128` -> 129: the trailing-token window stays longer than any token (76), so `trim` strips the same tokens.
# - replies/candidates.py:100 `token.start() + 1` -> `+ 2`: no control token can start one character after another one starts (the second characters are `|`, `/`, `s`, `I` or a `<` that begins no token), so no token is skipped.
# - replies/candidates.py:125 `strip_preamble`'s `count=1` -> 2: `_PREAMBLE` is anchored at `^` without MULTILINE and never matches empty, so a second match cannot happen.
# - replies/candidates.py:161/163 `_after_structural`'s `i >= 0` -> `>= 1` and `i < 0` -> `i < 1`: it is only asked inside an open bracket, so the walk back stops at the opener (at index 0 or later) and index 0, when reached, is `{` or `[` either way.
# - replies/candidates.py:181 `stop < step_end - 1` -> `- 2`: when the body stops two before the step's end (a line break in a single-quoted string), the next step starts at that stop, reads nothing and returns None, as the original does one step earlier.
# - replies/candidates.py:236/238 `_at_line_start`'s `i >= 0` -> `i >= 1`: a closing mark comes after the opening fence's line, so the walk back over blanks stops at a non-blank at index 1 or later; index 0 is never the last character looked at.
# - replies/candidates.py:250 `line_end = -1` -> 0, :253 `marks[i] + 3` -> `+ 4` in the reuse test, :255 `line_end < 0` -> `< 1`, :258 `>= 0` -> `>= 1`: the first mark's `+ 3` is at least 3, so the first look-up always runs; a recomputed line end is the same value; `find` from `marks[i] + 3` never returns 0.
# - replies/candidates.py:268 `else 2` -> `else 3`: other tags still rank after json-tagged (0) and untagged (1) blocks, in the same order.

# - replies/decode.py:110 `0 < len(text) <= 3` -> `1 < len(text)`: a one-digit code is below 100, so `_as_status` refuses it either way.
# - replies/decode.py:728 `len(delta) > 2` -> `> 3`: a delta of 3 keys none of which is an extra only skips `_delta_extras`, which would find nothing in it.

def test_a_list_inside_an_object_closes_in_order_and_a_stray_closer_is_skipped() -> None:
    """Both kinds of block open at once (``{ [``), then each alone: every state of the scan."""
    assert list(json_candidates('] {"a": [1, {"b": 2}]} } [3] {"c": 4}')) == ['{"a": [1, {"b": 2}]}', "[3]", '{"c": 4}']


def test_a_single_quoted_value_after_a_colon_is_a_string_so_its_brace_does_not_close_the_block() -> None:
    """A ``'...'`` right after ``:`` (or after ``: ``) is read as a string: its ``}`` closes nothing."""
    assert list(json_candidates("{'a':'}'}")) == ["{'a':'}'}"]
    assert list(json_candidates("{'a': '}'}")) == ["{'a': '}'}"]


def test_an_escaped_quote_outside_a_string_starts_no_string() -> None:
    r"""JSON quoted inside a JSON string (``{\"k\": ...}``): each ``\"`` is skipped, so a ``}`` after one closes."""
    assert list(json_candidates(r'{\"k\": \"}\"}')) == [r'{\"k\": \"}']
    assert list(json_candidates(r'{\"a\": x\"} "')) == [r'{\"a\": x\"}']


def test_a_string_longer_than_one_scan_step_is_read_to_its_closing_quote() -> None:
    """A double-quoted string of 20,000 characters (past the 16,384-character step), one starting with an
    escaped quote, is one string: the block closes right after it."""
    plain = '{"k": "' + "a" * 20_000 + '"}'
    assert list(json_candidates(plain)) == [plain]
    escaped = '{"k": "\\"' + "a" * 20_000 + '"} tail'
    assert list(json_candidates(escaped)) == [escaped[: -len(" tail")]]
    braced = '{"k": "\\"}' + "a" * 20_000 + '"}'
    assert list(json_candidates(braced)) == [braced]


def test_a_block_completed_inside_an_opener_that_never_closes_ends_at_its_closer() -> None:
    assert list(json_candidates("{ [1] x")) == ["[1]"]


def test_control_tokens_are_stripped_from_a_long_text_without_losing_its_first_character() -> None:
    """A text longer than one clean-up piece (16,384 characters) keeps every character but its tokens."""
    text = "x" + "a" * 20_000 + "<|eot_id|>" + "b" * 20_000
    assert strip_control_tokens(text) == "x" + "a" * 20_000 + "b" * 20_000


def test_a_control_token_lying_across_a_clean_up_piece_boundary_is_still_stripped() -> None:
    """The token at characters 16,380-16,390 crosses the first 16,384-character cut: the cut moves past it."""
    assert strip_control_tokens("a" * 16_380 + "<|eot_id|>" + "b" * 10) == "a" * 16_380 + "b" * 10


def test_trim_drops_a_trailing_invisible_character() -> None:
    assert trim("{}\u200b") == "{}"
    assert trim("ab ") == "ab"


def test_a_closing_fence_may_be_indented_by_one_blank() -> None:
    assert list(json_candidates("```\nA\n ```\n")) == ["A"]
    assert list(json_candidates("```\nA\n\t```\n")) == ["A"]


def test_an_untagged_fence_right_before_its_line_break_opens_a_block() -> None:
    assert list(json_candidates("```\nnot json\n```")) == ["not json"]


def test_a_fence_of_four_backticks_opens_no_block() -> None:
    """```` ```` ```` is a header holding a backtick: not an opening fence."""
    assert list(json_candidates("````\nnot json\n```")) == []


def test_a_fence_mark_whose_header_holds_a_backtick_is_skipped_and_the_next_mark_opens() -> None:
    assert list(json_candidates("x ``` ` \n```\nBODY\n```\n")) == ["BODY"]


def test_a_fence_mark_inside_a_line_of_the_body_does_not_close_it() -> None:
    assert list(json_candidates("```\nuse ``` here\n```")) == ["use ``` here"]


def test_json_tagged_blocks_come_first_then_untagged_then_other_tags() -> None:
    assert list(json_candidates("```\nA\n```\n```json\nB\n```")) == ["B", "A"]
    assert list(json_candidates("```python\nA\n```\n```\nB\n```")) == ["B", "A"]
    assert list(json_candidates("```\nA\n```\n```\nB\n```\n```\nC\n```")) == ["A", "B", "C"]


def test_a_replay_gives_every_item_once_computed_on_each_iteration() -> None:
    pulled: list[str] = []

    def items():
        for item in ["a", "b", "c"]:
            pulled.append(item)
            yield item

    replay = Replay(items())
    assert list(replay) == ["a", "b", "c"]
    assert list(replay) == ["a", "b", "c"]
    assert pulled == ["a", "b", "c"]


# --- the bounded copy of error.metadata (replies/decode.py _bounded) ---------------------------------


def _metadata_of(metadata: object) -> dict:
    return error_for(502, {"error": {"message": "m", "metadata": metadata}}, model=None).metadata


def _nested(levels: int) -> object:
    value: object = "bottom"
    for _ in range(levels):
        value = {"k": value}
    return value


def _bottom(metadata: object, levels: int) -> object:
    for _ in range(levels):
        metadata = metadata["k"]  # type: ignore[index]
    return metadata


def test_metadata_keeps_values_8_levels_deep_and_cuts_the_9th() -> None:
    assert _bottom(_metadata_of(_nested(8)), 8) == "bottom"
    assert _bottom(_metadata_of(_nested(9)), 9) == "…"


def test_metadata_keeps_255_values_besides_itself() -> None:
    """256 values in all: the metadata object and 255 of its values."""
    assert _metadata_of({str(i): i for i in range(255)}) == {str(i): i for i in range(255)}
    assert _metadata_of({str(i): i for i in range(300)}) == {str(i): i for i in range(255)}


def test_a_metadata_string_of_4096_characters_is_kept_and_a_longer_one_is_cut() -> None:
    assert _metadata_of({"s": "y" * 4096})["s"] == "y" * 4096
    assert _metadata_of({"s": "y" * 4097})["s"] == "y" * 4096 + "…"


def test_a_metadata_integer_is_kept_up_to_the_64_bit_signed_maximum() -> None:
    kept = _metadata_of({"a": 2**63 - 1, "b": -(2**63 - 1), "c": 2**63, "d": -(2**63)})
    assert kept == {"a": 2**63 - 1, "b": -(2**63 - 1), "c": "…", "d": "…"}


# --- statuses, messages and stream chunks (replies/decode.py) ----------------------------------------


@pytest.mark.parametrize(("code", "status"), [(99, 502), (100, 100), (599, 599), (600, 502), ("429", 429), ("0429", 502)])
def test_an_error_code_is_a_status_from_100_to_599_given_as_at_most_3_digits(code: object, status: int) -> None:
    """Inside an HTTP 200, an unusable ``error.code`` gives the provider-failure status 502."""
    error = body_error({"error": {"code": code, "message": "m"}}, model=None)
    assert error is not None and error.status == status


@pytest.mark.parametrize(("status", "cls"), [(499, APIError), (500, ProviderError), (599, ProviderError), (600, APIError)])
def test_statuses_500_to_599_are_provider_errors(status: int, cls: type) -> None:
    assert type(error_for(status, None, model=None)) is cls


@pytest.mark.parametrize(("status", "shown"), [(299, False), (300, True), (399, True), (400, False)])
def test_only_a_3xx_answer_says_where_it_was_redirected(status: int, shown: bool) -> None:
    error = error_for(status, None, model=None, headers={"Location": "https://elsewhere.example/v1"})
    assert ("redirected to https://elsewhere.example/v1" in error.api_message) is shown


def _nested_error(levels: int) -> object:
    value: object = "the deep reason"
    for _ in range(levels):
        value = {"error": value}
    return value


@pytest.mark.parametrize(("levels", "message"), [(3, "m: the deep reason"), (4, "m")])
def test_a_provider_detail_is_looked_for_4_levels_deep_in_metadata_raw(levels: int, message: str) -> None:
    raw = json.dumps(_nested_error(levels))
    error = error_for(502, {"error": {"message": "m", "metadata": {"raw": raw}}}, model=None)
    assert error.api_message == message


def test_errors_count_one_attempt_by_default() -> None:
    assert error_for(500, None, model=None).attempts == 1
    assert body_error({"error": {"message": "m"}}, model=None).attempts == 1  # type: ignore[union-attr]
    with pytest.raises(ProviderError) as caught:
        decode_chunk({"error": {"message": "m"}})
    assert caught.value.attempts == 1


def test_a_tool_call_without_an_id_is_named_by_its_index_0_by_default() -> None:
    assert tool_call_of({"function": {"name": "f", "arguments": ""}}).id == "call_0"


def test_tool_call_arguments_sent_as_an_object_keep_their_non_ascii_text() -> None:
    call = tool_call_of({"id": "c", "function": {"name": "f", "arguments": {"city": "Lyon é"}}})
    assert call.arguments_text == '{"city": "Lyon é"}' and call.arguments == {"city": "Lyon é"}
    chunk = decode_chunk({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": {"c": "é"}}}]}}]})
    assert chunk.tool_calls[0].arguments == '{"c": "é"}'


@pytest.mark.parametrize(("index", "ok"), [(0, True), (1023, True), (1024, False)])
def test_a_tool_call_fragment_index_is_below_1024(index: int, ok: bool) -> None:
    chunk = {"choices": [{"delta": {"tool_calls": [{"index": index, "function": {"name": "f"}}]}}]}
    if ok:
        assert decode_chunk(chunk).tool_calls[0].index == index
    else:
        with pytest.raises(InvalidResponseError, match="index is not a small integer"):
            decode_chunk(chunk)


def test_only_the_first_of_a_chunks_choices_must_be_an_object() -> None:
    assert decode_chunk({"choices": [{"delta": {"content": "hi"}}, 1]}).text == "hi"
    with pytest.raises(InvalidResponseError, match="choices are not a list of objects"):
        decode_chunk({"choices": [1, {"delta": {"content": "hi"}}]})


def test_an_empty_think_block_leaves_no_reasoning() -> None:
    assert split_think("<think></think>answer", None) == ("answer", None)
    assert split_think("answer", "<think></think>") == ("answer", None)
