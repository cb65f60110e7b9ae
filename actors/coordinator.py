"""Coordinator: expands a job into runs, schedules them over device actors, commits their steps.

It is an async Ray actor: one coroutine per device slot pulls runs from a shared queue and
drives its DeviceActor chunk by chunk. Every chunk is committed to the job store before the
next is asked for, and the store alone says how far each run got, so a dead device actor
(restarted here, from the run's last checkpoint) or a dead coordinator (re-created by the
driver, or by re-running the same command) resumes with no step lost or repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from bubblescope.actors.accounts import AccountInventory, Need
from bubblescope.actors.device_actor import DeviceActor
from bubblescope.actors.errors import PhoneWaitExpired
from bubblescope.actors.loader import devices_of, sim_serials, world_of
from bubblescope.actors.phone_farm import FIRST_REPORT_S, FarmPhone, PhoneFarm
from bubblescope.actors.plan import RunSpec, plan_runs
from bubblescope.devices.app_drivers import app_driver
from bubblescope.devices.errors import DeviceOffline
from bubblescope.devices.spec import AdbDevicesSpec
from bubblescope.job import ResolvedJob
from bubblescope.metrics.live import LiveMetrics
from bubblescope.sim.spec import SimDevicesSpec
from bubblescope.store import JobStore

log = logging.getLogger(__name__)

FARM_WATCH_S = 1.0  # how often the coordinator looks for new phones and phone nodes


# A Ray actor handle of a DeviceActor; Ray's stubs cannot type calls of its remote methods.
DeviceActorHandle = Any


@dataclass
class DeviceSlot:
    serial: str
    handle: DeviceActorHandle | None = None
    state: str = "idle"  # idle | starting | running | restarting | offline | failed | stopped
    restarts: int = 0
    reconnects: int = 0  # times the device dropped off and came back
    steps: int = 0
    run_id: str | None = None
    pid: int | None = None
    node: str | None = None  # the Ray node whose adb server holds the phone (farm phones)
    departed: bool = False  # offline because the farm lost the phone while it was idle

    def as_dict(self) -> dict:
        return {"state": self.state, "restarts": self.restarts, "reconnects": self.reconnects,
                "steps": self.steps, "run_id": self.run_id, "pid": self.pid, "node": self.node}


class Coordinator:
    def __init__(self, job: ResolvedJob, chunk_timeout_s: float = 600.0) -> None:
        self.job = job
        self.spec = job.spec
        self.store = JobStore(job.storage_path, job.job_id)
        self.devices = devices_of(job)
        # one world for every simulated device; phones on adb live in their own
        self.world = world_of(job) if isinstance(self.devices, SimDevicesSpec) else None
        self.runs = plan_runs(job)
        self.chunk_timeout_s = chunk_timeout_s
        self.live = LiveMetrics(job.job_id, self.spec.metrics.category_level, self.spec.window)
        self.slots: list[DeviceSlot] = []  # one per device, known when the job runs
        self.state = "starting"
        self.stopping = False
        self.failures: dict[str, str] = {}
        self.farm: PhoneFarm | None = None  # phones on adb, wherever they are in the cluster
        self.accounts: AccountInventory | None = None  # the farm's, when the job names it
        self.mint_accounts = False  # virtual phones: a fresh account per run, made on the spot

    # -- control -----------------------------------------------------------------------
    async def run(self) -> dict:
        """Run every unfinished run to its end (or until stop()); returns the final stats."""
        queue = deque(self._load_progress())
        if isinstance(self.devices, AdbDevicesSpec):
            await self._run_on_farm(self.devices, queue)
        else:
            self.slots = [DeviceSlot(serial) for serial in sim_serials(self.devices)]
            self.state = "running"
            await asyncio.gather(*(self._work(slot, queue) for slot in self.slots))
        for slot in self.slots:
            slot.state = "stopped" if self.stopping else "idle"
        self.state = "stopped" if self.stopping else ("failed" if self.failures else "done")
        return self.stats()

    async def stop(self) -> None:
        """Finish the chunks in flight, commit them, and start nothing new."""
        self.stopping = True
        self.state = "stopping"

    def stats(self) -> dict:
        snapshot = self.live.snapshot()
        runs = snapshot["runs"].values()
        snapshot.update(
            state=self.state,
            runs_total=len(self.runs),
            runs_done=sum(r["state"] == "done" for r in runs),
            runs_failed=sum(r["state"] == "failed" for r in runs),
            steps_total=sum(r.total_steps for r in self.runs),
            steps_done=sum(r["steps_done"] for r in runs),
            devices={slot.serial: slot.as_dict() for slot in self.slots},
            failures=dict(self.failures),
        )
        return snapshot

    # -- the farm ----------------------------------------------------------------------
    async def _run_on_farm(self, devices: AdbDevicesSpec, queue: deque) -> None:
        """One worker per phone; a phone that appears while runs are queued gets one too."""
        self.farm = PhoneFarm(devices)
        phones = await self.farm.first_phones(FIRST_REPORT_S)
        if devices.accounts:
            await asyncio.to_thread(self._take_accounts, devices, queue)
        self.state = "running"
        workers: list[asyncio.Task] = []
        idle_since = time.monotonic()
        while True:
            for phone in phones:
                if phone.state == "online" and queue and not self.stopping and \
                        all(slot.serial != phone.serial for slot in self.slots):
                    slot = DeviceSlot(phone.serial, node=phone.node_id)
                    self.slots.append(slot)
                    workers.append(asyncio.create_task(self._work(slot, queue)))
            self._mark_departed(phones)
            if not all(worker.done() for worker in workers):
                idle_since = time.monotonic()
            elif not queue or self.stopping or \
                    time.monotonic() - idle_since > devices.online_timeout_s:
                break  # done, or runs left only for phones that never came
            await asyncio.sleep(FARM_WATCH_S)
            await asyncio.to_thread(self.farm.ensure_agents)  # for nodes that joined or came back
            phones = await self.farm.phones()
        await asyncio.gather(*workers)

    def _mark_departed(self, phones: list[FarmPhone]) -> None:
        """An idle phone that left the farm is offline in the metrics until it is back."""
        online = {phone.serial for phone in phones if phone.state == "online"}
        for slot in self.slots:
            if slot.state == "idle" and slot.serial not in online:
                slot.state, slot.departed = "offline", True
            elif slot.departed and slot.serial in online:
                slot.state, slot.departed = "idle", False

    def _take_accounts(self, devices: AdbDevicesSpec, queue: deque) -> None:
        """Bind the queued runs to accounts before any starts: a fresh one each from the file
        (or the one a resumed run already holds), or, on virtual phones, made at run start."""
        assert devices.accounts is not None
        self.accounts = AccountInventory(Path(devices.accounts))
        self.mint_accounts = app_driver(devices.adb.app).account_switch == "intent"
        runs = list(queue)
        if self.mint_accounts:
            held = {a.run_id: a for a in self.accounts.accounts().values()
                    if a.state == "in-use" and a.job_id == self.job.job_id}
        else:
            held = self.accounts.allocate(self.job.job_id,
                                          [Need(run.run_id, run.platform) for run in runs])
        queue.clear()
        queue.extend(replace(run, account=held[run.run_id].id, phone=held[run.run_id].phone)
                     if run.run_id in held else run for run in runs)

    def _mint(self, run: RunSpec, serial: str) -> RunSpec:
        assert self.accounts is not None
        account = self.accounts.mint(run.platform, serial, self.job.job_id, run.run_id)
        return replace(run, account=account.id, phone=serial)

    async def _phone_node(self, slot: DeviceSlot, timeout_s: float) -> FarmPhone:
        """Where the slot's phone is now; waits while it is offline (its node down, say)."""
        assert self.farm is not None
        deadline = time.monotonic() + timeout_s
        while True:
            found = [p for p in await self.farm.phones()
                     if p.serial == slot.serial and p.state == "online"]
            if found:
                slot.node = found[0].node_id
                return found[0]
            if time.monotonic() > deadline:
                raise PhoneWaitExpired(f"device {slot.serial} stayed offline for {timeout_s:.0f} s "
                                    "(devices.adb.online_timeout_s); its run stopped there")
            slot.state = "offline"
            await asyncio.sleep(FARM_WATCH_S)

    # -- scheduling --------------------------------------------------------------------
    def _load_progress(self) -> list[RunSpec]:
        """Register every run with the live metrics, replaying what the store already holds."""
        pending = []
        for run in self.runs:
            self.live.add_run(run.run_id, run)
            if self.store.next_step(run.run_id) > 0:
                self.live.record(run.run_id, self.store.read_steps([run.run_id]),
                                 count_steps=False)
            live = self.live.runs[run.run_id]
            if live.steps_done >= run.total_steps:
                live.state = "done"
            else:
                pending.append(run)
        return pending

    async def _work(self, slot: DeviceSlot, queue: deque[RunSpec]) -> None:
        while not self.stopping:
            # a run bound to a phone (its account lives there) waits for that phone's worker
            found = [run for run in queue if run.phone in (None, slot.serial)]
            if not found:
                break
            run = found[0]
            queue.remove(run)
            if self.mint_accounts and run.phone is None:
                run = await asyncio.to_thread(self._mint, run, slot.serial)
            await self._execute(slot, run)
            if self.accounts is not None and self.live.runs[run.run_id].state == "done":
                await asyncio.to_thread(self.accounts.release, self.job.job_id, run.run_id)
        if slot.handle is not None:
            ray.kill(slot.handle)
            slot.handle = None

    def _spawn(self, slot: DeviceSlot, phone: FarmPhone | None):
        """A DeviceActor for the slot; a farm phone's runs on its node, on that node's adb."""
        options: dict[str, Any] = {}
        devices = self.devices
        if phone is not None and isinstance(devices, AdbDevicesSpec):
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(phone.node_id,
                                                                            soft=False)
            devices = devices.model_copy(update={"adb": devices.adb.model_copy(
                update={"host": phone.adb_host, "port": phone.adb_port})})
        actor_class = ray.remote(DeviceActor).options(
            num_cpus=self.spec.devices.cpus_per_device, max_restarts=0, max_concurrency=1,
            **options)
        return actor_class.remote(slot.serial, devices, self.world)

    async def _call(self, ref, timeout: float):
        return await asyncio.wait_for(ref, timeout)

    async def _execute(self, slot: DeviceSlot, run: RunSpec) -> None:
        live = self.live.runs[run.run_id]
        live.state, live.device = "running", slot.serial
        slot.run_id, attempts = run.run_id, 0
        while True:
            try:
                await self._drive(slot, run)
                live.state = "stopped" if self.stopping and live.steps_done < run.total_steps \
                    else "done"
                return
            except PhoneWaitExpired as exc:  # the coordinator's own wait for the phone ran out
                self.failures[run.run_id] = f"{type(exc).__name__}: {exc}"[:500]
                live.state, slot.state = "failed", "offline"
                return
            except RayTaskError as exc:
                if not isinstance(exc.cause, DeviceOffline) or not await self._reconnect(slot):
                    attempts = self._failed(slot, run, exc, attempts + 1)
            except (TimeoutError, RayActorError, GetTimeoutError) as exc:
                attempts = self._failed(slot, run, exc, attempts + 1)
            if attempts > self.spec.devices.max_restarts or self.stopping:
                live.state = "stopped" if self.stopping else "failed"
                return

    async def _reconnect(self, slot: DeviceSlot) -> bool:
        """The device dropped off: mark it offline, wait until it is back, resume there."""
        if slot.handle is None:  # no actor left to wait through
            return False
        slot.state = "offline"
        timeout = self.devices.online_timeout_s
        log.warning("device %s went offline; waiting up to %.0f s", slot.serial, timeout)
        try:
            await self._call(slot.handle.wait_online.remote(timeout), timeout + 30)
        except (TimeoutError, RayTaskError, RayActorError, GetTimeoutError) as exc:
            log.warning("device %s stayed offline: %s", slot.serial, exc)
            return False
        slot.reconnects += 1
        return True

    def _failed(self, slot: DeviceSlot, run: RunSpec, exc: Exception, attempts: int) -> int:
        """Replace the slot's actor after an error; returns the run's attempts so far."""
        slot.restarts += 1
        self._discard(slot)
        log.warning("device %s failed on %s (%s); restart %d of %d", slot.serial, run.run_id,
                    type(exc).__name__, attempts, self.spec.devices.max_restarts)
        if attempts > self.spec.devices.max_restarts and not self.stopping:
            self.failures[run.run_id] = f"{type(exc).__name__}: {exc}"[:500]
        return attempts

    def _discard(self, slot: DeviceSlot) -> None:
        if slot.handle is not None:
            with contextlib.suppress(Exception):  # already dead is fine
                ray.kill(slot.handle)
        slot.handle, slot.pid, slot.state = None, None, "restarting"

    async def _drive(self, slot: DeviceSlot, run: RunSpec) -> None:
        """Start (or resume) `run` on the slot's actor and commit chunk after chunk."""
        if slot.handle is None:
            phone = None
            if self.farm is not None:
                phone = await self._phone_node(slot, self.devices.online_timeout_s)
            slot.state = "starting"
            slot.handle = self._spawn(slot, phone)
            slot.pid = await self._call(slot.handle.pid.remote(), 120.0)
        persona = self.job.personas[run.persona]
        checkpoint = self.store.checkpoint(run.run_id)
        await self._call(slot.handle.start.remote(run, persona, self.spec.policy, checkpoint),
                         120.0)
        slot.state = "running"
        if self.farm is not None:
            self.farm.assign(slot.serial, self.job.job_id, run.run_id, run.account)
        next_step = checkpoint["next_step"] if checkpoint else 0
        while next_step < run.total_steps and not self.stopping:
            began = time.perf_counter()
            chunk = await self._call(
                slot.handle.advance.remote(self.spec.checkpoint_every,
                                           self.spec.checkpoint_seconds),
                self.chunk_timeout_s)
            overhead = time.perf_counter() - began - chunk.busy_s
            # off the event loop, so other devices' chunks are taken in meanwhile
            await asyncio.to_thread(self.store.commit, run.run_id, chunk.steps, chunk.checkpoint)
            self.live.record(run.run_id, chunk.steps, overhead_s=overhead)
            slot.steps += chunk.steps.num_rows
            next_step = chunk.checkpoint["next_step"]
        slot.state = "idle"
        if self.farm is not None:
            self.farm.release(slot.serial, self.job.job_id)
