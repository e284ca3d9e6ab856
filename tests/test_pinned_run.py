"""batch/run.py behaviour pinned after issue 24's sweep of constant mutants: the limiter's round after a
decrease (only a request sent at or after the decrease plus max(Retry-After wait, 0.05 s) can halve the
limit again) and what a row's repr shows."""

from __future__ import annotations

import pytest

from openrouter_registry.batch.run import _Limiter


@pytest.mark.parametrize(("wait", "sent_after", "halved_again"), [
    (0.0, 0.05, True), (0.0, 0.0499, False),  # no wait asked: the round lasts 0.05 s
    (0.2, 0.2, True), (0.2, 0.1999, False),  # a longer wait: the round lasts the wait
])
def test_a_second_decrease_needs_a_request_sent_after_the_round(wait: float, sent_after: float, halved_again: bool) -> None:
    now = [100.0]
    limiter = _Limiter(64, clock=lambda: now[0])
    for _ in range(4):  # 4 of the 64 recent answers are 429s: above the 5% share, the limit halves
        limiter.rate_limited(sent_at=99.0, wait=wait)
    assert (limiter.slots, limiter.decreases) == (32, 1)
    limiter.rate_limited(sent_at=100.0 + sent_after, wait=wait)
    assert (limiter.slots, limiter.decreases) == ((16, 2) if halved_again else (32, 1))


def test_a_batch_row_s_repr_leaves_out_its_generation_result() -> None:
    """A row's repr shows its own fields; the whole GenerationResult behind it (reply, raw body) stays out
    of logs that print rows, and is read through ``row.result``."""
    from openrouter_registry.batch.run import BatchRow

    marker = object()
    row = BatchRow(id="a", ok=True, content={"x": 1}, result=marker)  # type: ignore[arg-type]
    assert row.result is marker
    assert repr(row).startswith("BatchRow(id='a', ok=True, content={'x': 1}") and "result" not in repr(row)
