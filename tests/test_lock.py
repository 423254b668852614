"""requirements.lock, which ``make install`` installs with every hash checked, pins every
dependency pyproject.toml declares at a version it allows: change one without the other (and
without ``make lock``) and this fails."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
# A pin opens an entry: `name==version`, perhaps ` ; marker`, then its hashes, one a line.
PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)(?:\s*;\s*(?P<marker>[^\\]+))?"
)
HASH = re.compile(r"^\s+--hash=(?P<digest>\S+)")


@dataclass
class Pin:
    name: str
    version: Version
    marker: Marker | None
    hashes: list[str] = field(default_factory=list)


def declared() -> list[Requirement]:
    """What pyproject.toml asks for: the dependencies and the dev extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return [Requirement(line) for line in lines]


def pins_of(lock: str) -> list[Pin]:
    pins: list[Pin] = []
    for line in lock.splitlines():
        if pin := PIN.match(line):
            marker = Marker(pin["marker"].strip()) if pin["marker"] else None
            pins.append(Pin(canonicalize_name(pin["name"]), Version(pin["version"]), marker))
        elif (digest := HASH.match(line)) and pins:
            pins[-1].hashes.append(digest["digest"])
    return pins


def disagreements(requirements: list[Requirement], lock: str) -> list[str]:
    """Each way the lock fails the requirements, for a Python and platform like this one."""
    applying: dict[str, list[Pin]] = {}
    found: list[str] = []
    for pin in pins_of(lock):
        if not pin.hashes:
            found.append(f"{pin.name}=={pin.version} has no hash")
        if pin.marker is None or pin.marker.evaluate():
            applying.setdefault(pin.name, []).append(pin)
    for name, pins in applying.items():
        if len(pins) > 1:
            found.append(f"{name} is pinned {len(pins)} times")
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        pins = applying.get(canonicalize_name(requirement.name), [])
        if not pins:
            found.append(f"{requirement.name} is not pinned")
        found.extend(
            f"{pin.name}=={pin.version} is refused by {requirement}"
            for pin in pins
            if not requirement.specifier.contains(pin.version, prereleases=True)
        )
    return found


def test_the_lock_pins_every_declared_dependency_at_a_version_it_allows() -> None:
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")

    assert disagreements(declared(), lock) == [], "pyproject.toml changed: run make lock"
    assert len(pins_of(lock)) > 50


def test_every_pin_has_sha256_hashes() -> None:
    for pin in pins_of((ROOT / "requirements.lock").read_text(encoding="utf-8")):
        assert pin.hashes, f"{pin.name} has no hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", digest) for digest in pin.hashes)


def test_a_lock_that_lags_behind_pyproject_is_found_out() -> None:
    digest = "    --hash=sha256:" + "0" * 64
    lock = "\n".join(
        [
            "fastapi==0.100.0 \\",
            digest,
            "httpx==0.28.1 \\",
            digest,
            "colorama==0.4.6 ; sys_platform == 'no-such-platform' \\",
            digest,
            "pyyaml==6.0.2",
        ]
    )
    requirements = [Requirement(line) for line in ("fastapi>=0.115", "httpx>=0.27")]
    requirements += [Requirement(line) for line in ("aiohttp>=3.11", "colorama", "pyyaml")]

    assert disagreements(requirements, lock) == [
        "pyyaml==6.0.2 has no hash",
        "fastapi==0.100.0 is refused by fastapi>=0.115",
        "aiohttp is not pinned",
        "colorama is not pinned",
    ]
