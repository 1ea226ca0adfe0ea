"""Behind a reverse proxy: the base URL of each request and the client's address.

Two ways to say where clients reach the service:

- ``[server] public_url`` set: every URL starts with it, whatever the request
  says (the registry records and async job results need a fixed one).  Its
  path (``https://vo.example.org/skvo`` -> ``/skvo``) is where the pages are
  mounted: a request path that starts with it has it removed, so a proxy may
  pass the path unchanged or strip the prefix.
- ``public_url`` empty: each request's base URL is its scheme, ``Host`` and
  mount point.  A request from an address in ``[server] trusted_proxies``
  (addresses and networks; empty = trust none) has these taken from the
  forwarded headers its proxy sets (``[server] proxy_headers``:
  ``X-Forwarded-Proto/-Host/-Port/-Prefix``, or RFC 7239 ``Forwarded`` plus
  ``X-Forwarded-Prefix``), the last value of each: the one the nearest proxy
  added.  A request from any other address has its forwarded headers removed
  unread: a client cannot change the URLs others get, nor its own address.

The client's address (``REMOTE_ADDR``, used by the login throttle, the job
quotas and the WAIT limit) is, from a trusted proxy, the rightmost address of
``X-Forwarded-For`` (or ``Forwarded: for=``) that is not itself a trusted
proxy.  The proxy's own address stays in ``environ["skvo.peer_addr"]``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from voservice.config import WILDCARD_HOSTS, Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: the default port of each scheme (left out of URLs)
DEFAULT_PORTS = {"http": "80", "https": "443"}
#: forwarded headers (WSGI names) removed from requests that do not come from a trusted proxy
FORWARDED_HEADERS = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO",
                     "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX",
                     "HTTP_X_FORWARDED_SERVER", "HTTP_X_FORWARDED_SCHEME")

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
#: a host name, IPv4 address or bracketed IPv6 address, with an optional port
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9A-Fa-f:.]+\])(?::(\d{{1,5}}))?")
#: a mount point: path segments of unreserved characters, no dot segments
_PREFIX = re.compile(r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._~-]+)*")
#: one ``name=value`` pair of an RFC 7239 element (value a token or a quoted string)
_PAIR = re.compile(r'\s*([A-Za-z0-9!#$%&\'*+.^_`|~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)\s*')


def is_trusted(address: str | None, trusted: Sequence[Network]) -> bool:
    """Whether a peer address lies in one of the trusted networks."""
    ip = _address(address or "")
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in trusted)


def _address(text: str) -> Address | None:
    """An address as X-Forwarded-For or ``for=`` give it: bare, bracketed, with a port."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """RFC 7239 ``Forwarded`` -> one dict per element (names lower-case, quotes removed).

    Parsing stops at the first malformed element (what came before is kept)."""
    elements: list[dict[str, str]] = []
    pos, end = 0, len(value)
    while pos < end:
        element: dict[str, str] = {}
        while True:
            match = _PAIR.match(value, pos)
            if not match:
                return elements
            name, raw = match.group(1).lower(), match.group(2)
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            element[name] = raw
            pos = match.end()
            if pos >= end or value[pos] == ",":
                break
            if value[pos] != ";":
                return elements
            pos += 1
        elements.append(element)
        pos += 1  # the comma
    return elements


def _last(value: str | None) -> str | None:
    """The last item of a comma list (the value the nearest proxy added)."""
    if not value:
        return None
    item = value.rsplit(",", 1)[-1].strip()
    return item or None


def _client(hops: Sequence[str], peer: str, trusted: Sequence[Network]) -> str:
    """The rightmost hop that is not a trusted proxy (garbage ends the walk)."""
    client = peer
    for hop in reversed(hops):
        ip = _address(hop)
        if ip is None:
            break
        client = str(ip)
        if not is_trusted(client, trusted):
            break
    return client


def valid_host(host: str) -> bool:
    """A Host value fit for a URL: a name or address, an optional port, nothing else."""
    return len(host) <= 260 and _HOST.fullmatch(host) is not None


def clean_prefix(prefix: str) -> str | None:
    """A mount point without its trailing slash ('' for the root); None if malformed."""
    prefix = prefix.strip()
    if prefix in ("", "/"):
        return ""
    if not prefix.startswith("/"):
        prefix = "/" + prefix
    prefix = prefix.rstrip("/")
    return prefix if _PREFIX.fullmatch(prefix) else None


def _forwarded_values(environ: dict[str, Any], mode: str) -> tuple[dict[str, str], list[str]]:
    """(proto/host/port/prefix the nearest proxy forwarded, the client hops)."""
    values: dict[str, str] = {}
    if mode == "forwarded":
        elements = parse_forwarded(environ.get("HTTP_FORWARDED", ""))
        hops = [e["for"] for e in elements if "for" in e]
        last = elements[-1] if elements else {}
        for name in ("proto", "host"):
            if last.get(name):
                values[name] = last[name]
    else:
        hops = [h for h in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        for name in ("proto", "host", "port"):
            value = _last(environ.get(f"HTTP_X_FORWARDED_{name.upper()}"))
            if value:
                values[name] = value
    prefix = _last(environ.get("HTTP_X_FORWARDED_PREFIX"))
    if prefix:
        values["prefix"] = prefix
    return values, hops


def _apply_host(environ: dict[str, Any], values: dict[str, str]) -> None:
    """Set scheme, Host, SERVER_NAME and SERVER_PORT from forwarded values that are valid."""
    proto = values.get("proto", "").lower()
    if proto in DEFAULT_PORTS:
        environ["wsgi.url_scheme"] = proto
    scheme = environ.get("wsgi.url_scheme", "http")
    host = values.get("host")
    if host is not None and not valid_host(host):
        host = None
    port = values.get("port")
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        port = None
    if host is None and port is None:
        if proto in DEFAULT_PORTS:  # the scheme changed: so does the default port
            environ["SERVER_PORT"] = DEFAULT_PORTS[proto]
        return
    name, _, own_port = _split_host(host or environ.get("HTTP_HOST", "")
                                    or environ.get("SERVER_NAME", ""))
    port = port or own_port or DEFAULT_PORTS.get(scheme, "80")
    environ["SERVER_NAME"] = name
    environ["SERVER_PORT"] = port
    environ["HTTP_HOST"] = name if DEFAULT_PORTS.get(scheme) == port else f"{name}:{port}"


def _split_host(host: str) -> tuple[str, str, str]:
    """``name:port`` -> (name, ':', port); IPv6 brackets kept."""
    if host.startswith("["):
        name, _, rest = host.partition("]")
        return name + "]", ":" if rest else "", rest[1:]
    return host.partition(":")


def _mount(environ: dict[str, Any], prefix: str) -> None:
    """Serve under ``prefix``: SCRIPT_NAME is it, and PATH_INFO loses it if it has it."""
    if not prefix or environ.get("SCRIPT_NAME", "") == prefix:
        return
    path = environ.get("PATH_INFO", "")
    if path == prefix or path.startswith(prefix + "/"):
        path = path[len(prefix):]
    environ["SCRIPT_NAME"] = prefix
    environ["PATH_INFO"] = path or "/"


class ProxyHeaders:
    """WSGI middleware: forwarded headers from trusted proxies only; the mount point."""

    def __init__(self, app: WsgiApp, settings: Settings) -> None:
        self.app = app
        self.trusted: tuple[Network, ...] = tuple(settings.get("server", "trusted_proxies"))
        self.mode: str = settings.get("server", "proxy_headers")
        fixed = settings.get("server", "public_url")
        self.fixed_prefix = (clean_prefix(urlsplit(fixed).path) or "") if fixed else None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        """Rewrite the request's environ, then call the application."""
        peer = environ.get("REMOTE_ADDR", "")
        environ["skvo.peer_addr"] = peer
        prefix = self.fixed_prefix or ""
        if self.trusted and is_trusted(peer, self.trusted):
            values, hops = _forwarded_values(environ, self.mode)
            environ["REMOTE_ADDR"] = _client(hops, peer, self.trusted)
            if self.fixed_prefix is None:
                _apply_host(environ, values)
                prefix = clean_prefix(values.get("prefix", "")) or ""
        for name in FORWARDED_HEADERS:
            environ.pop(name, None)
        _mount(environ, prefix)
        return self.app(environ, start_response)


def request_base_url(settings: Settings, environ: dict[str, Any] | None) -> str:
    """The base URL (no trailing slash) for a request's environ, or the fixed/fallback one.

    ``public_url`` when set; else scheme, Host and SCRIPT_NAME of the request (after
    :class:`ProxyHeaders`); else, outside a request or for a malformed Host,
    ``Settings.public_url``."""
    fixed = settings.get("server", "public_url")
    if fixed or environ is None:
        return fixed or settings.public_url
    host = environ.get("HTTP_HOST", "")
    if not valid_host(host):
        return settings.public_url
    scheme = environ.get("wsgi.url_scheme", "http")
    name, colon, port = _split_host(host.lower())
    if port == DEFAULT_PORTS.get(scheme):
        colon = port = ""
    return f"{scheme}://{name}{colon}{port}{environ.get('SCRIPT_NAME', '')}"


def wildcard_warning(settings: Settings) -> str | None:
    """The start-up warning for a server on every interface without ``public_url``."""
    host = str(settings.get("server", "host")).strip()
    if settings.get("server", "public_url") or host not in WILDCARD_HOSTS:
        return None
    trusted = ("and X-Forwarded-* of [server] trusted_proxies"
               if settings.get("server", "trusted_proxies") else
               "no proxy is trusted: [server] trusted_proxies is empty")
    return (f"skvo serve: WARNING: listening on {host or '*'} without [server] public_url: "
            f"URLs are built from each request's Host header ({trusted}); async job results "
            f"and URLs made outside a request use {settings.public_url}. Set [server] "
            "public_url to the URL clients use.")
