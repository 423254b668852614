"""Where we may send webhooks: HTTPS to public addresses, unless configuration allows more.

A subscriber could otherwise point us at our own network (a database's admin port, a cloud
metadata service). The host is resolved when a subscription is saved, and again whenever a
delivery opens a connection: the delivery client's resolver (``CheckedResolver``) hands the
connector only addresses that passed, so what was checked is what is connected to, and a name
that later resolves elsewhere (DNS rebinding) is refused then. An address literal in the URL is
checked before each delivery, as the connector never looks it up.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
from collections.abc import Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_CONTROL = {chr(code) for code in range(0x21)} | {"\x7f", "\\"}
_REFUSED = "the host resolves to a loopback, private, link-local or reserved address"


class AddressRefused(ValueError):
    """The URL may not receive webhooks; the message says why, for the subscriber."""


@functools.lru_cache(maxsize=4096)
def parse_url(text: str, allow_http_hosts: tuple[str, ...]) -> URL:
    """The URL as it will be requested, or AddressRefused. The same parser reads it here and
    when the request is made, so the host checked is the host connected to."""
    if any(character in _CONTROL for character in text):
        raise AddressRefused("the URL must not contain spaces, backslashes or control characters")
    try:
        url = URL(text)
        host = url.host
    except (ValueError, UnicodeError, TypeError):
        raise AddressRefused("the URL is not valid; it must be an absolute https URL") from None
    if url.scheme not in ("https", "http") or not host or not url.is_absolute():
        raise AddressRefused("the URL must be an absolute https URL")
    if url.user is not None or url.password is not None:
        raise AddressRefused("the URL must not carry credentials")
    if _numeric(host) and literal(host) is None:
        # 127.1, 2130706433, 0x7f.1: forms some resolvers turn into addresses; only the
        # canonical dotted quad is taken, so every check sees the address that is used.
        raise AddressRefused("an IPv4 address must be written as four decimal numbers")
    if url.scheme == "http" and host not in allow_http_hosts:
        raise AddressRefused("the URL must use https")
    return url


_NUMERIC_LABEL = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _numeric(host: str) -> bool:
    """Whether every label is a number (decimal, octal or hex): an address, not a name."""
    return all(_NUMERIC_LABEL.fullmatch(label) for label in host.rstrip(".").split("."))


def _public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 carried inside IPv6 (mapped, 6to4, Teredo, NAT64, the old compatible form) is
        # judged as the IPv4 address.
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is None and (address in _NAT64 or address in _IPV4_COMPATIBLE):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return _public(embedded)
    return address.is_global and not address.is_multicast


def _check(address: IpAddress, allowed: Sequence[IpNetwork]) -> None:
    if not _public(address) and not any(address in network for network in allowed):
        raise AddressRefused(_REFUSED)


def literal(host: str) -> IpAddress | None:
    """The host as an IP address, if it is one (IPv6 without brackets, as URL parsers give)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_literal(url: URL, allowed: Sequence[IpNetwork]) -> None:
    """Refuse an address literal outside what is allowed; names are left to the resolver."""
    address = literal(url.host or "")
    if address is not None:
        _check(address, allowed)


async def check_url(url: URL, allowed: Sequence[IpNetwork]) -> None:
    """Every address the URL's host has now must pass (when a subscription is saved)."""
    host, port = url.host or "", url.port or 443
    address = literal(host)
    if address is not None:
        _check(address, allowed)
        return
    for info in await _lookup(host, port, socket.AF_UNSPEC):
        _check(_address_of(info[4][0]), allowed)


class CheckedResolver(AbstractResolver):
    """The delivery client's resolver: a name that resolves to any address outside what is
    allowed is refused, so the connector never connects to one."""

    def __init__(self, allowed: Sequence[IpNetwork]) -> None:
        self._allowed = list(allowed)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results: list[ResolveResult] = []
        for found_family, _, proto, _, sockaddr in await _lookup(host, port, family):
            address = _address_of(sockaddr[0])
            _check(address, self._allowed)
            results.append(
                ResolveResult(
                    hostname=host,
                    host=str(address),
                    port=int(sockaddr[1]),
                    family=found_family,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        return results

    async def close(self) -> None:
        return None


async def _lookup(host: str, port: int, family: int) -> list[tuple[int, int, int, str, tuple]]:  # type: ignore[type-arg]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, family=family, type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError):
        raise AddressRefused("the host name does not resolve") from None
    if not infos:
        raise AddressRefused("the host name does not resolve")
    return infos  # type: ignore[return-value]


def _address_of(text: str) -> IpAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError:  # a scoped link-local address, say: never public
        raise AddressRefused(_REFUSED) from None


def networks(values: Sequence[str]) -> list[IpNetwork]:
    return [ipaddress.ip_network(value, strict=False) for value in values]
