"""What the console's settings allow: the demo sign-in only for a machine's own use, and a
session cookie that is Secure wherever the console is served beyond the loopback interface."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.spa.console.sessions import CookiePolicy
from services.spa.settings import SpaSettings


@pytest.mark.parametrize(
    "address",
    [
        "https://spa.example.org",
        "http://spa.example.org",
        "http://10.0.0.5:8001",
        "http://0.0.0.0:8001",
    ],
)
def test_the_demo_sign_in_cannot_be_enabled_where_others_reach_the_console(address: str) -> None:
    with pytest.raises(ValidationError, match="only for a machine's own use"):
        SpaSettings(public_base_url=address, console_demo_password="anything-at-all")


@pytest.mark.parametrize(
    "address", ["http://127.0.0.1:8001", "http://localhost:9000", "http://[::1]:8001"]
)
def test_the_demo_sign_in_may_be_enabled_on_loopback(address: str) -> None:
    settings = SpaSettings(public_base_url=address, console_demo_password="anything-at-all")
    assert settings.console_demo_password is not None


def test_the_cookie_is_secure_with_the_host_prefix_beyond_loopback() -> None:
    deployed = CookiePolicy.of(SpaSettings(public_base_url="https://spa.example.org"))
    local = CookiePolicy.of(SpaSettings(public_base_url="http://127.0.0.1:8001"))

    assert deployed.secure
    assert deployed.name.startswith("__Host-")
    assert not local.secure
