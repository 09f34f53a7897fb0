"""The client's address, the one answer for throttling, the sign-in lockout and the audit trail.

`X-Forwarded-For` is written by whoever sends the request, so it is believed only as far as
the proxies that the operator lists in `WINDFLOW_TRUSTED_PROXIES` (addresses or CIDR
networks, comma-separated; empty by default). The header is read from right to left: each
hop added by a trusted proxy is skipped, and the first address that is not a trusted proxy is
the client. With no trusted proxies (the default), the socket address (REMOTE_ADDR) is used
and the header is ignored.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_CACHED_ATTRIBUTE = "_windflow_client_address"


@lru_cache(maxsize=8)
def parse_trusted_proxies(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """Networks from "10.0.0.1", "10.0.0.0/8", "::1"... A bad entry is a configuration error,
    reported at once with the entry named (a silently ignored proxy would be worse)."""
    networks = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                f"WINDFLOW_TRUSTED_PROXIES: {entry!r} is not an IP address or network"
            ) from exc
    return tuple(networks)


def trusted_proxies() -> tuple[Network, ...]:
    value = getattr(settings, "WINDFLOW_TRUSTED_PROXIES", ()) or ()
    if isinstance(value, str):
        value = value.split(",")
    return parse_trusted_proxies(tuple(value))


def parse_address(value: str | None) -> Address | None:
    """An IP address from a header hop or REMOTE_ADDR ("1.2.3.4", "1.2.3.4:5678", "[::1]:80",
    "::1"), or None when it is not one."""
    if not value:
        return None
    value = value.strip()
    if value.startswith("["):  # [v6]:port
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)


def client_address_from(
    remote_addr: str | None, forwarded_for: str | None, networks: tuple[Network, ...]
) -> str | None:
    """The pure rule, for tests and other callers: see the module docstring."""
    remote = parse_address(remote_addr)
    if remote is None:
        return remote_addr or None  # e.g. a unix socket: nothing better to say
    if not networks or not _is_trusted(remote, networks) or not forwarded_for:
        return str(remote)
    client = remote
    for hop in reversed(forwarded_for.split(",")):
        address = parse_address(hop)
        if address is None:
            # Garbage in the chain: the last trusted hop is the best we know.
            break
        client = address
        if not _is_trusted(address, networks):
            break
    return str(client)


def client_address(request) -> str | None:
    """The client's address for a Django (or DRF) request, computed once per request."""
    request = getattr(request, "_request", request)  # DRF's Request wraps Django's
    cached = getattr(request, _CACHED_ATTRIBUTE, None)
    if cached is not None:
        return cached
    meta = request.META
    address = client_address_from(
        meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"), trusted_proxies()
    )
    if address is not None:
        setattr(request, _CACHED_ATTRIBUTE, address)
    return address


# What a proxy tells about the original request besides the address: believed, like
# X-Forwarded-For, only from a trusted proxy (SECURE_PROXY_SSL_HEADER reads the first).
PROXY_HEADERS = ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT")


def from_trusted_proxy(meta) -> bool:
    """Did the request come straight from a proxy of WINDFLOW_TRUSTED_PROXIES?"""
    remote = parse_address(meta.get("REMOTE_ADDR"))
    networks = trusted_proxies()
    return remote is not None and bool(networks) and _is_trusted(remote, networks)


class UntrustedProxyHeadersMiddleware:
    """First of all middleware: drops the proxy headers a client wrote itself, so that a
    forged `X-Forwarded-Proto: https` never makes a plain request look secure."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not from_trusted_proxy(request.META):
            for header in PROXY_HEADERS:
                request.META.pop(header, None)
        return self.get_response(request)
