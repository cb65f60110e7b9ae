"""The production device driver (AdbPhone) on one virtual phone, through the real adb server:
what an Observation holds, that watch times and engagement reach the platform, and that a
device dropping off is reported and recovered from."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bubblescope.actors.loader import make_transcriber
from bubblescope.contracts import Action
from bubblescope.devices.adb_phone import AdbPhone
from bubblescope.devices.errors import DeviceOffline
from bubblescope.devices.spec import AdbSpec
from bubblescope.sim.android.phone_device import PhoneSpec, run_in_thread
from bubblescope.sim.android.server_jar import build_server_jar
from tests.support.adb_server import private_adb_server

pytestmark = pytest.mark.slow
WARP = 2.0  # slow enough that a loaded CI machine still hits the watch times


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adbphone")
    jar = folder / "scrcpy-server"
    jar.write_bytes(build_server_jar("3.3.4"))
    thread, phone = run_in_thread(PhoneSpec("virt-driver", time_warp=WARP,
                                            state_dir=folder / "state"))
    with private_adb_server(folder) as adb:
        serial = adb.connect(thread.port)
        config = AdbSpec.model_validate({
            "scrcpy": {"server_jar": str(jar), "max_size": 480, "max_fps": 6},
            "port": adb.port, "glance_s": 3.0, "speech": {"enabled": False},
            "online_timeout_s": 30})
        device = AdbPhone(serial, config)
        try:
            yield device, phone, thread, adb
        finally:
            device.close()
            thread.stop()


def test_observation_holds_screen_text_frames_and_a_transcript(rig) -> None:
    """With speech on, the audio since the video appeared is segmented and recognised (the
    tiny local Whisper's words are meaningless; what matters is that speech was heard)."""
    plain, phone, _, _ = rig
    plain.close()
    config = plain.spec.model_copy(update={"speech": plain.spec.speech.model_copy(
        update={"enabled": True})})
    device = AdbPhone(plain.serial, config, transcriber=make_transcriber(config.speech))
    try:
        _observe_everything(device, phone)
    finally:
        device.close()


def _observe_everything(device: AdbPhone, phone) -> None:
    device.open_feed("kuaishou-like", "driver-account", 11)
    assert device.virtual and abs(device._clock.rate - WARP) < 0.5
    observation = device.observe()
    truth = device.ground_truth()
    state = phone.app_state()
    assert truth is not None and truth.video_id == state.video_id
    title = phone.catalogue.text(state.video).title
    assert title in observation.on_screen_text
    # 480 x 270 asked for; the server rounds each side down to a multiple of 8
    assert observation.frames and (observation.frames[0].height, observation.frames[0].width) \
        == (480, 264)
    assert isinstance(observation.transcript, str) and observation.transcript  # speech heard


def test_watch_time_and_engagement_reach_the_platform(rig) -> None:
    device, phone, _, _ = rig
    device.open_feed("kuaishou-like", "driver-account", 11)
    targets = [Action(watch_s=6.0), Action(watch_s=9.0, like=True),
               Action(watch_s=5.0, comment="so good"), Action(watch_s=5.0, share="friend")]
    performed = []
    for action in targets:
        device.observe()
        performed.append(device.act(action))
    assert [(p.like, p.comment, p.share) for p in performed] == \
        [(False, False, False), (True, False, False), (False, True, False), (False, False, True)]
    feedback = phone.app_state().feedback[-4:]
    for sent, action in zip(feedback, targets, strict=True):
        # commenting and sharing happen while the video still plays, so they add to it
        slack = 5.0 if action.comment or action.share else 2.0
        assert action.watch_s - 0.5 <= sent.watch_s <= action.watch_s + slack, (sent, action)
    assert [f.like for f in feedback] == [False, True, False, False]
    assert feedback[2].comment and feedback[3].share


def test_on_a_real_platform_only_likes_are_performed_unless_the_job_opts_in(rig) -> None:
    """The same phone driven as a real app (not the simulated one): the like reaches the
    platform; the comment and the share, text the model wrote, do not, until post_text."""
    device, phone, _, _ = rig
    device.open_feed("kuaishou-like", "driver-account", 11)
    simulated, spec = device.app, device.spec
    engaging = Action(watch_s=4.0, like=True, comment="lovely", share="friend")
    try:
        device.app = replace(simulated, simulated=False)
        device.observe()
        withheld = device.act(engaging)
        device.spec = spec.model_copy(update={"post_text": True})
        device.observe()
        posted = device.act(engaging)
    finally:
        device.app, device.spec = simulated, spec
    assert (withheld.like, withheld.comment, withheld.share) == (True, False, False)
    assert (posted.like, posted.comment, posted.share) == (True, True, True)
    first, second = phone.app_state().feedback[-2:]
    assert first.like and not first.comment and not first.share
    assert second.like and second.comment and second.share


def test_a_dropped_device_is_reported_and_recovered(rig) -> None:
    device, phone, thread, adb = rig
    device.open_feed("kuaishou-like", "driver-account", 11)
    port = thread.port
    thread.stop()  # the phone vanishes from adb
    with pytest.raises(DeviceOffline):
        device.observe()
        device.act(Action(watch_s=3.0))
    from bubblescope.sim.android.device_thread import DeviceThread

    revived = DeviceThread(thread.device, port=port).start()
    try:
        device.wait_online(30)
        device.restore(device.snapshot())
        device.observe()
        device.act(Action(watch_s=3.0))
    finally:
        revived.stop()
