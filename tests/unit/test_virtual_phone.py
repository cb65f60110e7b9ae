"""The virtual phone and its short-video app, driven through the phone's own API: the feed
reacts to taps, swipes, keys and text the way the production driver expects, and the
platform learns from watch times measured on the device clock."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from bubblescope.sim.android.layout import LAUNCHER_PACKAGE, PACKAGE
from bubblescope.sim.android.phone import VirtualPhone
from bubblescope.sim.in_process_device import SIM_EPOCH, SimWorld, observe_video

WARP = 20.0


def make_phone(state_dir: Path | None = None, account: str = "acct-1",
               warp: float = WARP) -> VirtualPhone:
    return VirtualPhone("sim-1", SimWorld(), "douyin-like", account, seed=11,
                        state_dir=state_dir, time_warp=warp)


def tap_view(phone: VirtualPhone, name: str) -> None:
    view = phone.view_tree().find(name)
    assert view is not None, f"{name} is not on screen"
    phone.touch_down(*view.center)
    phone.touch_up()


def swipe_up(phone: VirtualPhone) -> None:
    phone.touch_down(360, 1000)
    for y in (900, 700, 500):
        phone.touch_move(360, y)
    phone.touch_up(360, 300)


@pytest.fixture
def phone() -> VirtualPhone:
    phone = make_phone()
    phone.start_app()
    return phone


def test_props_and_device_clock() -> None:
    phone = make_phone(warp=100.0)
    assert phone.props["ro.product.model"] == "BubblePhone"
    assert phone.props["ro.build.version.sdk"] == "33"
    assert phone.props["ro.serialno"] == "sim-1"
    assert phone.props["bubblescope.platform"] == "douyin-like"
    assert phone.props["bubblescope.account"] == "acct-1"
    assert abs(phone.clock() - time.time()) < 5
    before = phone.monotonic()
    asyncio.run(phone.device_sleep(5.0))  # 50 ms of real time
    assert 4.9 < phone.monotonic() - before < 9
    assert phone.foreground()[0] == LAUNCHER_PACKAGE  # boots to the home screen


def test_like_toggles_and_swipe_sends_device_watch_time(phone: VirtualPhone) -> None:
    first = phone.app_state()
    assert first.running and first.video is not None
    assert phone.truth() is not None and phone.truth().video_id == first.video_id
    tap_view(phone, "like_button")
    liked = phone.app_state()
    assert liked.liked and liked.like_count == first.like_count + 1
    tap_view(phone, "like_button")
    assert not phone.app_state().liked and phone.app_state().like_count == first.like_count
    tap_view(phone, "like_button")
    asyncio.run(phone.device_sleep(5.0))
    swipe_up(phone)
    after = phone.app_state()
    assert after.video != first.video
    (feedback,) = after.feedback
    assert feedback.video == first.video and feedback.like
    assert not feedback.comment and not feedback.share
    assert 5.0 <= feedback.watch_s < 7.0  # 5 s of device time plus the test's own overhead
    assert phone.store.login("acct-1", 11).feedback_count == 1


def test_short_swipes_and_swipe_down_keep_the_video(phone: VirtualPhone) -> None:
    video = phone.app_state().video
    phone.touch_down(360, 600)
    phone.touch_up(360, 1100)  # down: ignored
    phone.touch_down(360, 700)
    phone.touch_up(360, 600)  # up, but < 20% of the height
    phone.touch_down(100, 700)
    phone.touch_down(300, 700, pointer_id=1)  # two fingers: no gesture
    phone.touch_up(100, 100)
    phone.touch_up(300, 100, pointer_id=1)
    assert phone.app_state().video == video and phone.app_state().feedback == ()


def test_comment_flow(phone: VirtualPhone) -> None:
    before = phone.app_state()
    tap_view(phone, "comment_button")
    assert phone.app_state().sheet == "comment"
    field = phone.view_tree().find("comment_input")
    assert field.focused and field.text == "Add a comment…"
    assert not phone.view_tree().find("comment_send").enabled  # nothing typed yet
    phone.inject_text("nice video")
    assert phone.view_tree().find("comment_input").text == "nice video"
    tap_view(phone, "comment_send")
    state = phone.app_state()
    assert state.sheet is None and state.comments == ("nice video",)
    assert state.comment_count == before.comment_count + 1
    swipe_up(phone)
    assert phone.app_state().feedback[0].comment


def test_share_flow_and_copy_link(phone: VirtualPhone) -> None:
    before = phone.app_state()
    tap_view(phone, "share_button")
    assert phone.app_state().sheet == "share"
    labels = [v.text for v in phone.view_tree().walk() if v.name.startswith("share_target_")]
    assert labels == ["Friends", "Copy link", "Moments"]
    tap_view(phone, "share_target_copy_link")
    state = phone.app_state()
    assert state.shared_to == "Copy link" and state.sheet is None
    assert state.share_count == before.share_count + 1
    assert before.video_id in phone.clipboard
    tap_view(phone, "share_button")
    phone.touch_down(360, 100)  # outside the sheet: closes it, shares nothing more
    phone.touch_up()
    assert phone.app_state().sheet is None and phone.app_state().shared_to == "Copy link"
    swipe_up(phone)
    assert phone.app_state().feedback[0].share


def test_back_home_launcher_and_force_stop(phone: VirtualPhone) -> None:
    video = phone.app_state().video
    tap_view(phone, "comment_button")
    phone.keyevent(4)  # BACK closes the sheet first
    assert phone.app_state().sheet is None and phone.foreground()[0] == PACKAGE
    phone.keyevent(4)  # then leaves the feed
    assert phone.foreground()[0] == LAUNCHER_PACKAGE and phone.truth() is None
    phone.start_app()
    assert phone.app_state().video == video and phone.app_state().resumed
    phone.keyevent(3)  # HOME
    assert phone.foreground()[0] == LAUNCHER_PACKAGE
    assert phone.media_position() == (None, 0.0)
    tap_view(phone, "icon")  # the launcher icon starts the app
    assert phone.foreground()[0] == PACKAGE and phone.app_state().video == video
    swipe_up(phone)
    phone.force_stop(PACKAGE)
    assert not phone.app_state().running
    phone.start_app()
    state = phone.app_state()
    assert state.running and state.video not in (None, video) and state.feedback == ()
    assert phone.store.login("acct-1", 11).feedback_count == 1  # the server remembers


def test_watch_time_pauses_in_background(phone: VirtualPhone) -> None:
    phone.keyevent(3)
    asyncio.run(phone.device_sleep(10.0))
    phone.start_app()
    assert phone.app_state().position_s < 3.0


def test_power_key_turns_the_screen_off_and_on(phone: VirtualPhone) -> None:
    phone.keyevent(26)
    assert not phone.screen_on and phone.render_frame().max() == 0
    phone.keyevent(26)
    assert phone.screen_on and phone.foreground()[0] == PACKAGE


def test_account_state_survives_a_new_phone(tmp_path: Path) -> None:
    first = make_phone(tmp_path)
    first.start_app()
    seen = set()
    for _ in range(4):
        seen.add(first.app_state().video)
        tap_view(first, "like_button")
        swipe_up(first)
    path = tmp_path / "douyin-like" / "acct-1.json"
    saved = json.loads(path.read_text())
    assert saved["feedback_count"] == 4 and seen <= set(saved["seen"])
    assert not list(path.parent.glob("*.tmp"))  # atomic writes leave no temporaries
    learned = list(saved["interest_main"])
    del first  # the phone process is gone; the platform's database stays

    second = make_phone(tmp_path)
    second.start_app()
    state = second.store.login("acct-1", 11)
    assert state.feedback_count == 4
    assert list(state.interest_main) == learned
    assert seen <= state.seen and second.app_state().video not in seen

    fresh = make_phone(None)  # without a state_dir a new phone is a new account
    fresh.start_app()
    assert fresh.store.login("acct-1", 11).feedback_count == 0


def test_begin_phase_reaches_the_platform(phone: VirtualPhone) -> None:
    phone.begin_phase()
    assert phone.store.login("acct-1", 11).phases_begun == 1


def test_rejects_unknown_platform_and_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="douyin-like"):
        VirtualPhone("s", SimWorld(), "nope", "a", 1)
    phone = VirtualPhone("s", SimWorld(), "douyin-like", "../escape", 1, state_dir=tmp_path)
    with pytest.raises(ValueError, match="cannot name a state file"):
        phone.start_app()


def test_the_phone_shows_what_the_in_process_device_reads(phone: VirtualPhone) -> None:
    """One feed-screen model: the virtual phone's views carry the same lines, in the same
    order, as the in-process device's observation text for the video on screen."""
    truth = phone.truth()
    assert truth is not None
    video = int(truth.video_id.rsplit("-", 1)[1])
    expected = observe_video(phone.catalogue, video, SIM_EPOCH).on_screen_text
    tree = phone.view_tree()
    roles = ("title", "author", "caption", "like_count", "comment_count", "share_count")
    shown = [tree.find(role).text for role in roles]
    title, author, caption, counters = expected.split("\n")
    assert shown[:3] == [title, author, caption]
    assert counters == "{} likes  {} comments  {} shares".format(*shown[3:])
    tap_view(phone, "like_button")  # the phone adds the user's own like; the model counts it
    assert int(phone.view_tree().find("like_count").text) == int(shown[3]) + 1
