"""Fetching a URL on behalf of a client without becoming its proxy (SSRF).

``fetch(url, policy)`` GETs an ``http://`` or ``https://`` URL and returns
its body, under these rules:

- The destination must be public: every address the host name resolves to
  is checked, and loopback, private, link-local, multicast, reserved,
  unspecified, shared (100.64/10) and documentation addresses are refused,
  IPv4-mapped and other IPv6 forms of IPv4 addresses included.  Numeric
  spellings (``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``)
  resolve like any name and are checked as the address they mean.
- The connection goes to the address that was checked (a DNS answer cannot
  change between the check and the connect); the Host header and TLS SNI
  and certificate check keep the URL's host name.
- Redirects are followed here, at most ``max_redirects``, each target
  checked again; a redirect to another scheme (file:, ftp:, data:) is refused.
- Nothing from the server's environment is used: no proxies, no .netrc, no
  cookies; the request carries no credentials, and URLs with a user name or
  password are refused.
- The whole download (name lookup, connects, redirects, headers and body)
  has one wall-clock deadline; the body is limited to ``max_bytes``
  (Content-Length is checked first, then the bytes as they arrive).
- An operator may allow some hosts even though they are not public
  (``allow_hosts``: host names, IP addresses or networks such as 10.1.0.0/16).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 65536
#: IPv4 ranges that are not public but that Python's ``is_global`` lets through
_NOT_PUBLIC_V4 = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
))
#: IPv6 ranges that embed IPv4 addresses or are not routed publicly
_NOT_PUBLIC_V6 = tuple(ipaddress.ip_network(n) for n in (
    "::/96", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001:db8::/32",
    "2002::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
))


class FetchError(ValueError):
    """The URL may not be fetched, or fetching it failed (the message says why)."""


@dataclass(frozen=True)
class FetchPolicy:
    """How a URL may be fetched: size, time, redirects and allowed private hosts."""

    max_bytes: int
    timeout: float = 10.0  # seconds for the whole download
    connect_timeout: float = 5.0
    max_redirects: int = 5
    allow_hosts: tuple[str, ...] = ()


def parse_allow_hosts(text: str) -> tuple[str, ...]:
    """The entries of a comma-separated allow-list, trimmed and lower-cased."""
    return tuple(e.strip().lower().rstrip(".") for e in text.split(",") if e.strip())


def address_kind(ip: IPAddress) -> str | None:
    """Why an address is not public (``loopback``, ``private``...), None if it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return address_kind(embedded) or "IPv4-in-IPv6"
    for kind in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    nets = _NOT_PUBLIC_V4 if isinstance(ip, ipaddress.IPv4Address) else _NOT_PUBLIC_V6
    if any(ip in net for net in nets) or not ip.is_global:
        return "reserved"
    return None


def _allowed_networks(entries: Iterable[str]) -> list[IPNetwork]:
    nets = []
    for entry in entries:
        try:
            nets.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            continue  # a host name
    return nets


class _Deadline:
    """One wall-clock budget for the whole download."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left (FetchError when none are)."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise FetchError(f"the download took longer than {self.seconds:g} s")
        return left


def _resolve(host: str, port: int, deadline: _Deadline) -> list[IPAddress]:
    """Every address of ``host`` (in a thread, so that the deadline holds)."""
    result: dict[str, object] = {}

    def lookup() -> None:
        try:
            result["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                 proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            result["error"] = exc

    thread = threading.Thread(target=lookup, daemon=True)
    thread.start()
    thread.join(deadline.left())
    if thread.is_alive():
        raise FetchError(f"looking up {host!r} took longer than {deadline.seconds:g} s")
    if "error" in result:
        raise FetchError(f"the host name {host!r} does not resolve")
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in result["infos"]:  # type: ignore[union-attr]
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise FetchError(f"the host name {host!r} does not resolve")
    return addresses


def vetted_addresses(host: str, port: int, policy: FetchPolicy,
                     deadline: _Deadline | None = None) -> list[IPAddress]:
    """The addresses of ``host`` the service may connect to (FetchError if any is refused)."""
    deadline = deadline or _Deadline(policy.timeout)
    name = host.lower().rstrip(".")
    addresses = _resolve(host, port, deadline)
    if name in policy.allow_hosts:
        return addresses
    allowed = _allowed_networks(policy.allow_hosts)
    for ip in addresses:
        kind = address_kind(ip)
        if kind is not None and not any(ip.version == n.version and ip in n for n in allowed):
            raise FetchError(f"{host!r} is not a public address ({kind}); uploads are only "
                             "fetched from public hosts")
    return addresses


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to a vetted address; Host stays the URL's host."""

    def __init__(self, host: str, port: int, addresses: Sequence[IPAddress],
                 connect_timeout: float) -> None:
        super().__init__(host, port, timeout=connect_timeout)
        self.addresses = addresses

    def _tcp(self) -> socket.socket:
        error: OSError | None = None
        for ip in self.addresses:
            try:
                return socket.create_connection((str(ip), self.port), self.timeout)
            except OSError as exc:
                error = exc
        raise error or OSError("no address")

    def connect(self) -> None:
        """Connect to the first vetted address that answers."""
        self.sock = self._tcp()


class _PinnedHTTPS(_PinnedHTTP):
    """HTTPS to a vetted address; SNI and the certificate check use the URL's host."""

    default_port = 443

    def connect(self) -> None:
        """Connect, then wrap in TLS for the URL's host name."""
        context = ssl.create_default_context()
        self.sock = context.wrap_socket(self._tcp(), server_hostname=self.host)


def _split(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of an http(s) URL (FetchError otherwise)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchError("the URL is malformed") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"the scheme {scheme or '(none)'!r} is not fetched; "
                         "only http:// and https://")
    if parts.username is not None or parts.password is not None:
        raise FetchError("URLs with credentials (a user name or password) are not fetched")
    if not parts.hostname:
        raise FetchError("the URL has no host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80), path


def _get(url: str, policy: FetchPolicy, deadline: _Deadline) -> tuple[str | None, bytes]:
    """One GET: (redirect target, b"") or (None, body)."""
    scheme, host, port, path = _split(url)
    addresses = vetted_addresses(host, port, policy, deadline)
    cls = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    conn = cls(host, port, addresses, min(policy.connect_timeout, deadline.left()))
    killed = threading.Event()
    held: list[socket.socket] = []

    def kill() -> None:  # the deadline passed: cut whatever the connection is doing
        killed.set()
        for sock in held:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(deadline.left(), kill)
    timer.daemon = True
    timer.start()
    try:
        conn.connect()
        sock = conn.sock
        held.append(sock)
        if killed.is_set():
            raise TimeoutError
        sock.settimeout(deadline.left())
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.putheader("Accept", "application/x-votable+xml, text/xml, */*")
        conn.putheader("Accept-Encoding", "identity")
        conn.putheader("User-Agent", "SKVO TAP upload fetcher")
        conn.putheader("Connection", "close")
        conn.endheaders()
        response = conn.getresponse()
        if response.status in _REDIRECTS:
            location = response.getheader("Location")
            if not location:
                raise FetchError(f"HTTP {response.status} without a Location")
            return urljoin(url, location.strip()), b""
        if response.status != 200:
            raise FetchError(f"the server answered HTTP {response.status}")
        length = response.getheader("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > policy.max_bytes:
            raise FetchError(f"the table has {int(length)} bytes; the limit is "
                             f"{policy.max_bytes} bytes")
        chunks, size = [], 0
        while True:
            sock.settimeout(deadline.left())
            chunk = response.read1(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > policy.max_bytes:
                raise FetchError(f"the table is larger than the limit of {policy.max_bytes} "
                                 "bytes")
            chunks.append(chunk)
        deadline.left()
        return None, b"".join(chunks)
    except FetchError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if killed.is_set() or isinstance(exc, TimeoutError):
            raise FetchError(f"the download took longer than {deadline.seconds:g} s") from None
        if isinstance(exc, ssl.SSLError):
            raise FetchError("the TLS connection failed") from None
        if isinstance(exc, http.client.HTTPException):
            raise FetchError("the server's answer is not valid HTTP") from None
        raise FetchError("could not connect to the server") from None
    finally:
        timer.cancel()
        conn.close()


def fetch(url: str, policy: FetchPolicy) -> bytes:
    """The body of ``url`` under ``policy`` (FetchError with the reason otherwise)."""
    deadline = _Deadline(policy.timeout)
    for _ in range(policy.max_redirects + 1):
        target, body = _get(url, policy, deadline)
        if target is None:
            return body
        scheme = urlsplit(target).scheme.lower()
        if scheme not in ("http", "https"):
            raise FetchError(f"a redirect to a {scheme or 'relative'}: URL is not followed")
        url = target
    raise FetchError(f"more than {policy.max_redirects} redirects")
