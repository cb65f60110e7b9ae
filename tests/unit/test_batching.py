"""The policy server's batcher: concurrent items gathered into bounded batches, each result
back to its own caller, a failing batch failing only its callers, a caller who gave up left
out."""

from __future__ import annotations

import asyncio

import pytest

from bubblescope.serve.batching import Batcher


class Recorder:
    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        await asyncio.sleep(0)  # as a real handler, which awaits the engine's thread
        if self.fail_on in items:
            raise RuntimeError(f"item {self.fail_on} broke the batch")
        return [10 * item for item in items]


def test_concurrent_items_are_batched_and_answered_in_their_own_order():
    recorder = Recorder()
    batcher = Batcher(recorder, max_batch_size=4, wait_s=0.5)

    async def main() -> list[int]:
        return await asyncio.gather(*(batcher.submit(i) for i in range(10)))

    assert asyncio.run(main()) == [10 * i for i in range(10)]
    assert recorder.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batcher.batches == 3


def test_a_failing_batch_fails_its_callers_and_the_next_batch_still_runs():
    recorder = Recorder(fail_on=1)
    batcher = Batcher(recorder, max_batch_size=2, wait_s=0.5)

    async def main():
        first = await asyncio.gather(batcher.submit(0), batcher.submit(1),
                                     return_exceptions=True)
        return first, await batcher.submit(5)

    first, later = asyncio.run(main())
    assert all(isinstance(e, RuntimeError) and "item 1" in str(e) for e in first)
    assert later == 50


def test_a_caller_who_gave_up_is_left_out_of_the_batch():
    recorder = Recorder()
    batcher = Batcher(recorder, max_batch_size=8, wait_s=0.5)

    async def main() -> list[int]:
        tasks = [asyncio.ensure_future(batcher.submit(i)) for i in range(3)]
        await asyncio.sleep(0)  # every caller has queued its item
        tasks[1].cancel()
        return [await tasks[0], await tasks[2]]

    assert asyncio.run(main()) == [0, 20]
    assert recorder.batches == [[0, 2]]


def test_a_handler_that_answers_the_wrong_number_of_items_is_an_error():
    async def short(items: list[int]) -> list[int]:
        return items[:1]

    batcher = Batcher(short, max_batch_size=2, wait_s=0.5)

    async def main():
        return await asyncio.gather(batcher.submit(1), batcher.submit(2),
                                    return_exceptions=True)

    assert all(isinstance(e, RuntimeError) and "2 items got 1" in str(e)
               for e in asyncio.run(main()))


def test_bounds_are_checked():
    with pytest.raises(ValueError, match="at least 1 item"):
        Batcher(Recorder(), max_batch_size=0, wait_s=0)


def _closed_loop(batcher: Batcher, delays: list[float], rounds: int):
    """Callers that ask again as soon as they are answered, caller i after delays[i] s."""
    async def caller(index: int) -> None:
        for _ in range(rounds):
            await batcher.submit(index)
            await asyncio.sleep(delays[index])  # paced: the caller's own round trip

    async def main() -> None:
        await asyncio.gather(*(caller(i) for i in range(len(delays))))

    asyncio.run(main())


def test_a_batch_waits_for_the_callers_it_just_answered_to_come_back():
    # caller 1 is slow to come back: without waiting for it, the batches would split
    recorder = Recorder()
    _closed_loop(Batcher(recorder, max_batch_size=4, wait_s=5), delays=[0, 0.05], rounds=3)
    assert recorder.batches == [[0, 1]] * 3


def test_a_caller_who_does_not_come_back_is_waited_for_at_most_wait_s():
    recorder = Recorder()
    batcher = Batcher(recorder, max_batch_size=4, wait_s=0.05)

    async def main() -> list[int]:
        first = await asyncio.gather(batcher.submit(0), batcher.submit(1))
        return [*first, await batcher.submit(2)]  # caller 1 never asks again

    assert asyncio.run(main()) == [0, 10, 20]
    assert recorder.batches == [[0, 1], [2]]


def test_a_caller_whose_batch_held_only_it_is_not_kept_waiting_for_strangers():
    recorder = Recorder()
    batcher = Batcher(recorder, max_batch_size=4, wait_s=5)

    async def stranger() -> int:
        await asyncio.sleep(0.2)  # paced: someone else, arriving later
        return await batcher.submit(2)

    async def main() -> None:
        await batcher.submit(0)
        await asyncio.gather(batcher.submit(0), stranger())

    asyncio.run(main())
    assert recorder.batches == [[0], [0], [2]]
