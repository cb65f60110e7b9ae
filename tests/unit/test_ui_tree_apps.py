"""Reading UI dumps and finding an app's views in them (the simulated app and real apps)."""

from __future__ import annotations

import pytest

from bubblescope.devices.app_drivers import app_driver, app_drivers
from bubblescope.devices.errors import UiTreeError
from bubblescope.devices.ui_tree import parse_ui_dump
from bubblescope.errors import ConfigError
from bubblescope.sim.android.layout import PACKAGE
from bubblescope.sim.android.phone import VirtualPhone
from bubblescope.sim.in_process_device import SimWorld

HEADER = "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>"


def node(**attrs) -> str:
    base = {"index": "0", "text": "", "resource-id": "", "class": "android.view.View",
            "package": "com.ss.android.ugc.aweme", "content-desc": "", "clickable": "true",
            "bounds": "[0,0][10,10]"}
    base.update(attrs)
    return "<node " + " ".join(f'{k}="{v}"' for k, v in base.items()) + " />"


def test_the_simulated_apps_dump_is_read_and_its_views_found() -> None:
    phone = VirtualPhone("ui", SimWorld(), "null", "a", seed=1)
    phone.start_app()
    nodes = parse_ui_dump(phone.dump_ui())
    driver = app_driver("bubblescope-sim")
    like = driver.locate("like_button", nodes, (720, 1280))
    assert like is not None and like.node is not None and like.node.package == PACKAGE
    assert like.node.bounds == phone.view_tree().find("like_button").bounds
    title = phone.catalogue.text(phone.app_state().video).title
    assert driver.text_of("title", nodes) == title


def test_real_app_views_by_content_description_then_fallback_position() -> None:
    xml = (HEADER + '<hierarchy rotation="0">'
           + node(**{"content-desc": "赞 1.2万", "bounds": "[980,1100][1060,1180]"})
           + node(**{"content-desc": "评论 345", "bounds": "[980,1250][1060,1330]"})
           + "</hierarchy>")
    nodes = parse_ui_dump(xml)
    douyin = app_driver("douyin")
    assert douyin.locate("like_button", nodes, (1080, 1920)).point == (1020.0, 1140.0)
    assert douyin.locate("comment_button", nodes, (1080, 1920)).node is not None
    share = douyin.locate("share_button", nodes, (1080, 1920))  # no node: the fallback point
    assert share.node is None and share.point == pytest.approx((0.92 * 1080, 0.71 * 1920))
    assert douyin.launch_command("douyin-like", "x", 1) == \
        "am start -n com.ss.android.ugc.aweme/.splash.SplashActivity"
    assert set(app_drivers()) >= {"bubblescope-sim", "douyin", "kuaishou", "bilibili"}


@pytest.mark.parametrize("xml, message", [
    ("", "empty or not XML"),
    ("ERROR: null root node returned by UiTestAutomationBridge.", "empty or not XML"),
    (HEADER + "<hierarchy rotation=\"0\"><node", "does not parse"),
    (HEADER + "<window/>", "not <hierarchy>"),
    (HEADER + '<hierarchy rotation="0"></hierarchy>', "no nodes"),
    (HEADER + '<hierarchy rotation="0"><node bounds="nope"/></hierarchy>', "valid bounds"),
])
def test_broken_dumps_are_errors_not_empty_screens(xml: str, message: str) -> None:
    with pytest.raises(UiTreeError, match=message):
        parse_ui_dump(xml)


def test_unknown_app_driver_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no driver for app 'tiktok'"):
        app_driver("tiktok")
