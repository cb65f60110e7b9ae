"""Concurrent decisions gathered into batches on a replica's event loop.

The policy server's own batcher, in place of `serve.batch`: Ray Serve's batcher splits every
batch by multiplexed model id (one sub-batch per adapter), and a batch that mixes adapters is
exactly what the engine generates in one pass. One batch at a time: a batch starts with the
oldest waiting item and takes what is waiting, up to `max_batch_size`; items queue while a
batch is being generated, so under load the next batch is full at once.

When the queue runs dry before the batch is full, the batch waits for more (at most `wait_s`
from its first item) only while the callers the previous batch answered may still come back:
fewer items have arrived since it was answered than it held. Devices decide, act, and ask
again; without this, the callers of one batch come back just after the next has started (their
round trip takes longer than any fixed short wait) and two half batches alternate for good,
while a lone device would wait `wait_s` for nobody on every decision. A caller that gives up
(Serve cancels a request whose client went away) is left out of the batch it was waiting for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    def __init__(self, handle: Callable[[list[Item]], Awaitable[list[Result]]],
                 max_batch_size: int, wait_s: float) -> None:
        if max_batch_size < 1 or wait_s < 0:
            raise ValueError(f"batches of at least 1 item and a wait >= 0 s, not "
                             f"{max_batch_size} items and {wait_s} s")
        self.handle, self.max_batch_size, self.wait_s = handle, max_batch_size, wait_s
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[Result]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._answered = 0  # items in the batch answered last
        self._arrived = 0  # items submitted since it was answered
        self.batches = 0  # batches handled, for stats and tests

    async def submit(self, item: Item) -> Result:
        """The result for `item`, once the batch it joined has been handled."""
        loop = asyncio.get_running_loop()
        if self._queue is None or self._task is None or self._task.done():
            self._queue = self._queue or asyncio.Queue()
            self._task = loop.create_task(self._run(self._queue))
        future: asyncio.Future[Result] = loop.create_future()
        self._arrived += 1
        self._queue.put_nowait((item, future))
        return await future

    async def _run(self, queue: asyncio.Queue[tuple[Item, asyncio.Future[Result]]]) -> None:
        while True:
            batch = [entry for entry in await self._gather(queue) if not entry[1].done()]
            if batch:
                await self._handle(batch)

    async def _gather(self, queue) -> list[tuple[Item, asyncio.Future[Result]]]:
        loop = asyncio.get_running_loop()
        batch = [await queue.get()]
        deadline = loop.time() + self.wait_s
        while len(batch) < self.max_batch_size:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            left = deadline - loop.time()
            if left <= 0 or self._arrived >= self._answered:  # nobody more to wait for
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), left))
            except TimeoutError:
                break
        return batch

    async def _handle(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        self.batches += 1
        try:
            results = await self.handle([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} items got {len(results)} results")
        except Exception as error:  # every caller of the batch hears of it; the loop goes on
            self._answered, self._arrived = len(batch), 0
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        self._answered, self._arrived = len(batch), 0
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
