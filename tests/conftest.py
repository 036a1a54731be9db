"""Test-wide guards: no network but loopback, fake keys only, the emulator fixtures."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

# Exact token counts from the first plan on (the Qwen tokenizer loads on first use, in the
# test thread), so a plan never depends on how far a background load has got.
os.environ.setdefault("HYBRIDSTACK_TOKENIZERS", "sync")

# postgres_fixtures: pg_schema / pg_url on the real server (tests/postgres_fixtures.py).
pytest_plugins = ["hybridstack.testing.pytest_plugin", "postgres_fixtures"]

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


class NetworkBlockedError(RuntimeError):
    """A test tried to reach a non-loopback address."""


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(sock: socket.socket, address: object) -> None:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _is_loopback(host):
        raise NetworkBlockedError(f"tests may only connect to loopback, not {address!r}")


def _guarded_connect(self: socket.socket, address: object) -> None:
    _check(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _check(self, address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if host is not None and not _is_loopback(host if isinstance(host, str) else str(host)):
        raise NetworkBlockedError(f"tests may not resolve non-loopback host {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def _network_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every connection that is not to loopback (the emulator is on 127.0.0.1)."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)


@pytest.fixture(autouse=True)
def _no_real_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real provider keys from the developer's shell never reach a test."""
    import os

    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_SECRET_KEY")) or name == "HYBRIDSTACK_CONFIG":
            monkeypatch.delenv(name, raising=False)
