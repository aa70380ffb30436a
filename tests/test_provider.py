"""The Provider framework's Delete lifecycle as the rehearsal and the benchmark replay it."""

from __future__ import annotations

from typing import Any

import pytest

from iot_job_cleanup.provider import ProviderTimeoutError, replay_delete


def test_on_event_result_is_merged_into_what_is_complete_gets_and_retried_each_interval() -> None:
    seen: list[dict[str, Any]] = []
    sleeps: list[float] = []
    answers = iter([False, False, True])

    def is_complete(event: Any) -> dict[str, Any]:
        seen.append(dict(event))
        return {"IsComplete": next(answers)}

    replay_delete(
        {"RequestType": "Delete", "PhysicalResourceId": "p"},
        lambda event: {"PhysicalResourceId": "p", "Extra": 1},
        is_complete,
        sleep=sleeps.append,
        query_interval=10,
    )

    assert seen == [{"RequestType": "Delete", "PhysicalResourceId": "p", "Extra": 1}] * 3
    assert sleeps == [10, 10]


def test_the_waiter_gives_up_after_its_attempts() -> None:
    calls = []

    with pytest.raises(ProviderTimeoutError, match="Operation timed out"):
        replay_delete(
            {},
            lambda event: {},
            lambda event: calls.append(1) or {"IsComplete": False},
            sleep=lambda _: None,
            query_interval=10,
            max_attempts=3,
        )
    assert len(calls) == 1 + 3  # the first call, then three retries


def test_a_handler_error_is_the_failure() -> None:
    def on_event(event: Any) -> dict[str, Any]:
        raise RuntimeError("bad properties")

    with pytest.raises(RuntimeError, match="bad properties"):
        replay_delete(
            {}, on_event, lambda event: {"IsComplete": True}, sleep=lambda _: None, query_interval=1
        )
