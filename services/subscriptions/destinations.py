"""Where a webhook may point: public http(s) receivers only, unless allow-listed.

A webhook makes the alerter send requests wherever a subscription says, so without a
check anyone who can create a subscription could reach what only the alerter's host
can: Prometheus's admin API, Redis, a cloud metadata service, the API itself. Refused:
loopback, private, link-local (cloud metadata 169.254.169.254), unspecified,
multicast, reserved and shared (100.64/10) addresses, any address this host itself
holds, in every spelling (`2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`, NAT64, 6to4,
Teredo): names and odd spellings are resolved first, and every address a name resolves
to must pass. `webhook_allow_networks` names exceptions.

Checked twice: when a subscription is created or updated (the API answers 422), and at
every delivery (DNS can change: `GuardedResolver` checks what the connection will
actually use, so a name that later resolves inside is refused then).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import re
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class DestinationError(OSError):
    """A webhook destination that is refused (an OSError, so aiohttp reports it)."""

    def __init__(self, message: str) -> None:
        # errno and strerror set: aiohttp shows strerror in its connection error.
        super().__init__(errno.EACCES, message)

    def __str__(self) -> str:
        return str(self.strerror)


def parse_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; the scheme lower-cased."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationError(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise DestinationError("only http and https URLs are allowed")
    host = parts.hostname
    if not host:
        raise DestinationError("the URL names no host")
    return scheme, host, port or (443 if scheme == "https" else 80)


def _embedded(ip: IPAddress) -> list[IPAddress]:
    """The address and any IPv4 address it carries (mapped, NAT64, 6to4, Teredo)."""
    found: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            found.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            found.append(ip.sixtofour)
        if ip.teredo is not None:
            found.append(ip.teredo[1])
        if ip in NAT64:
            found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def refusal(ip: IPAddress, allow: Sequence[Network] = ()) -> str | None:
    """Why `ip` is not a webhook destination, or None if it may be one."""
    if any(ip.version == net.version and ip in net for net in allow):
        return None
    for addr in _embedded(ip):
        for attribute in (
            "is_loopback",
            "is_unspecified",
            "is_link_local",
            "is_multicast",
            "is_private",
            "is_reserved",
        ):
            if getattr(addr, attribute):
                return f"{addr} is {attribute.removeprefix('is_').replace('_', '-')}"
        if not addr.is_global:
            return f"{addr} is not a public address"
    if _held_here(ip):
        return f"{ip} is an address of this host"
    return None


def _held_here(ip: IPAddress) -> bool:
    """True if this host holds `ip` (binding to it succeeds only then)."""
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(ip), 0))
    except OSError:
        return False
    return True


def literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


async def check_url(url: str, allow: Sequence[Network] = ()) -> None:
    """Raise DestinationError unless `url` is http(s) and every address of its host passes."""
    _, host, port = parse_url(url)
    ip = literal(host)
    if ip is not None:
        why = refusal(ip, allow)
        if why:
            raise DestinationError(f"refused destination: {why}")
        return
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DestinationError(f"host {host!r} does not resolve ({exc.strerror})") from None
    except (UnicodeError, ValueError):
        raise DestinationError("the host is not a valid domain name") from None
    _check_all(host, [str(info[4][0]) for info in infos], allow)


def _check_all(host: str, addresses: Sequence[str], allow: Sequence[Network]) -> None:
    if not addresses:
        raise DestinationError(f"host {host!r} has no address")
    for text in addresses:
        ip = literal(text)
        why = "unparsable address" if ip is None else refusal(ip, allow)
        if why:
            raise DestinationError(f"refused destination: {host} resolves to {text}: {why}")


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing a name that resolves to a refused address.

    Every address of the answer must pass (a name answering one public and one private
    address is refused, not half-used). Literal addresses never reach a resolver in
    aiohttp: the webhook worker checks those with `refusal` before connecting.
    """

    def __init__(self, allow: Sequence[Network] = ()) -> None:
        self.allow = tuple(allow)
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        _check_all(host, [r["host"] for r in results], self.allow)
        return results

    async def close(self) -> None:
        await self._inner.close()


_USERINFO = re.compile(r"(?i)(https?://)[^/@\s]*@")


def describe(exc: BaseException) -> str:
    """An error's text without a URL's credentials (aiohttp errors can quote the URL)."""
    return _USERINFO.sub(r"\1***@", f"{type(exc).__name__}: {exc}")
