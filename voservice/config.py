"""skvo.ini -> typed, validated settings.

Every key the service understands is declared once in ``KEYS`` below with its
type, default and help text; the README's configuration table says the same.
Unknown sections or keys and bad values fail at start with a message that
names the key.  Relative paths resolve against the folder of the ini file.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_NAME = "skvo.ini"
#: ``[server] host`` values that listen on every interface (never a URL's host)
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]", "*"})
CONFIG_ENV = "SKVO_CONFIG"


class ConfigError(ValueError):
    """A setting is missing, unknown or has a bad value."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be zero or a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be a positive number")
    return value


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return parse


def _text(text: str) -> str:
    return text.strip()


def _url(text: str) -> str:
    value = text.strip().rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise ValueError("must be true or false")


def _networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


def _authority(text: str) -> str:
    value = text.strip()
    if not value or any(c in value for c in "/?#: "):
        raise ValueError("must be a bare IVOA authority such as 'skvo.science.upjs.sk'")
    return value


@dataclass(frozen=True)
class Key:
    """One ini key: how to parse it, its default and what it means."""

    parse: Callable[[str], Any]
    default: str | None
    help: str
    path: bool = False  # a filesystem path, resolved against the ini's folder


KEYS: dict[str, dict[str, Key]] = {
    "general": {
        "base_path": Key(_text, "data", "root of the upload tree that `skvo ingest` reads", True),
    },
    "metadata": {
        "url": Key(
            _text,
            "sqlite:///var/skvo.sqlite",
            "SQLAlchemy URL of the metadata database (sqlite:///file or "
            "mysql+pymysql://user:password@host:3306/db); a relative SQLite path "
            "resolves against the ini's folder",
        ),
        "query_url": Key(
            _text,
            "",
            "optional URL of a SELECT-only account the VO endpoints query with "
            "(default: the same as url)",
        ),
        "pool_timeout": Key(
            _positive_float, "3", "seconds a request waits for a pooled database connection "
            "before it is answered 503 with Retry-After (the pool holds [server] threads + "
            "4 connections per process)"
        ),
    },
    "timeseries": {
        "backend": Key(_choice("sql", "opentsdb"), "sql", "where light-curve points live"),
        "url": Key(_url, "", "OpenTSDB base URL, e.g. http://tsdb:4242 (backend = opentsdb)"),
        "batch_size": Key(_positive_int, "50", "at most this many points per /api/put "
                          "request (opentsdb; max_body applies too)"),
        "max_body": Key(_positive_int, "8192", "largest /api/put body in bytes (opentsdb; "
                        "stock OpenTSDB refuses more unless tsd.http.request.enable_chunked "
                        "and max_chunk allow it)"),
        "assign_uids": Key(_bool, "false", "assign unknown metric and tag names through "
                           "/api/uid/assign (opentsdb; for tsd.core.auto_create_metrics = "
                           "false)"),
        "timeout": Key(_positive_float, "30", "HTTP timeout in seconds, also the put's "
                       "sync_timeout and the wait for a delete (opentsdb)"),
    },
    "media": {
        "backend": Key(_choice("files", "hbase"), "files", "where image frames live"),
        "path": Key(_text, "var/media", "folder of the content-addressed frame files", True),
        "host": Key(_text, "localhost", "HBase Thrift server host (backend = hbase)"),
        "port": Key(_positive_int, "9090", "HBase Thrift server port"),
        "table": Key(_text, "skvo_frames", "HBase table of the frames"),
        "transport": Key(_choice("buffered", "framed"), "buffered", "Thrift transport"),
        "protocol": Key(_choice("binary", "compact"), "binary", "Thrift protocol"),
        "timeout": Key(_positive_float, "30", "Thrift timeout in seconds"),
    },
    "server": {
        "public_url": Key(_url, "", "base URL clients see, e.g. https://vo.example.org/skvo "
                          "(empty: each request's scheme, Host and X-Forwarded-Prefix)"),
        "trusted_proxies": Key(
            _networks, "", "comma list of reverse-proxy addresses or networks "
            "(10.0.0.5, 192.168.0.0/16) whose forwarded headers are believed: client "
            "address and, without public_url, scheme, host, port and prefix (empty = none)"
        ),
        "proxy_headers": Key(
            _choice("x-forwarded", "forwarded"), "x-forwarded", "which headers the trusted "
            "proxies set: X-Forwarded-For/-Proto/-Host/-Port, or RFC 7239 Forwarded "
            "(X-Forwarded-Prefix either way)"
        ),
        "host": Key(_text, "127.0.0.1", "interface `skvo serve` listens on"),
        "port": Key(_positive_int, "8080", "port `skvo serve` listens on"),
        "workers": Key(_positive_int, "2", "web worker processes `skvo serve` forks"),
        "threads": Key(
            _positive_int, "8", "request threads per worker process (the database pool "
            "is sized from it; slow or idle clients do not hold a thread)"
        ),
        "max_body_bytes": Key(
            _non_negative_int, "0", "largest request body in bytes, answered 413 beyond "
            "(0 = [vo] upload_max_bytes + 1 MiB for multipart framing and form fields)"
        ),
        "jobs_path": Key(_text, "var/jobs", "folder of async job results and uploads (job "
                         "state is in the metadata database); with several hosts, a folder "
                         "they all mount (NFS, CephFS)", True),
        "job_workers": Key(_positive_int, "2", "async TAP jobs run at once (per host)"),
        "job_lease": Key(_positive_int, "30", "seconds without a heartbeat of its host after "
                         "which an EXECUTING job is put into ERROR (the runner renews the "
                         "lease every third of it)"),
        "node": Key(_text, "", "name of this host among those serving one archive "
                    "(default: host name:port); its jobs are recovered when it restarts"),
        "cache_path": Key(_text, "var/cache", "folder of cached preview plots", True),
        "login_failures_per_name": Key(
            _non_negative_int, "5", "failed logins of one account name before they are "
            "answered 429 with a doubling backoff (0 = no per-name throttle)"
        ),
        "login_failures_per_address": Key(
            _non_negative_int, "50", "failed logins from one client address before the "
            "backoff (0 = no per-address throttle, e.g. behind a reverse proxy)"
        ),
        "login_backoff_max": Key(
            _positive_int, "300", "longest login backoff in seconds (it doubles from 1 s)"
        ),
    },
    "vo": {
        "authority": Key(_authority, "skvo.example.org", "IVOA authority of publisher DIDs"),
        "title": Key(_text, "SKVO photometry archive", "service title in VOSI and pages"),
        "publisher": Key(_text, "SKVO", "publisher (data centre) named in the DataOrigin INFO "
                         "of light curves"),
        "contact": Key(_text, "skvo@example.org", "e-mail or URL of the publisher's contact "
                       "in the DataOrigin INFO of light curves"),
        "citation": Key(_text, "", "how to cite the data (bibcode, DOI or URL) in the "
                        "DataOrigin INFO of light curves (empty = title and resource IVOID)"),
        "maxrec_default": Key(_positive_int, "10000", "rows returned when MAXREC is absent"),
        "maxrec_hard": Key(_positive_int, "10000000", "largest MAXREC honoured"),
        "execution_duration": Key(
            _non_negative_int, "600", "seconds an async job may run (0 = unlimited)"
        ),
        "sync_timeout": Key(_positive_int, "60", "seconds a sync query may run"),
        "destruction_days": Key(_positive_int, "7", "days before an async job is deleted"),
        "job_quota_existing": Key(
            _non_negative_int, "100", "async jobs one account may keep (0 = no limit; "
            "more: HTTP 403)"
        ),
        "job_quota_existing_anonymous": Key(
            _non_negative_int, "20", "async jobs anonymous clients of one address (IPv6: "
            "one /64) may keep (0 = no limit; more: HTTP 403)"
        ),
        "job_quota_active": Key(
            _non_negative_int, "10", "async jobs one account or anonymous address may have "
            "QUEUED or EXECUTING (0 = no limit; more: HTTP 429 with Retry-After)"
        ),
        "upload_max_rows": Key(_positive_int, "100000", "rows per uploaded table"),
        "upload_max_bytes": Key(_positive_int, "20000000", "bytes per uploaded table"),
        "upload_max_columns": Key(_positive_int, "1000", "columns (FIELDs) per uploaded table"),
        "upload_allow_hosts": Key(
            _text, "", "comma list of host names, IP addresses or networks (10.1.0.0/16) "
            "that UPLOAD=name,http(s)://... may fetch from although they are not public"
        ),
        "upload_fetch_timeout": Key(
            _positive_float, "10", "seconds fetching one UPLOAD URL may take in all "
            "(lookup, connects, redirects and body)"
        ),
        "scs_max_sr": Key(_positive_float, "10", "largest cone-search radius in degrees"),
    },
    "names": {
        "sesame_url": Key(_url, "", "Sesame (CDS) name resolver for names the archive does not "
                          "know, e.g. https://cds.unistra.fr/cgi-bin/nph-sesame/-oxp/SNV (the "
                          "name is appended after ?; empty = off)"),
        "sesame_timeout": Key(_positive_float, "3", "seconds Sesame may take to connect and "
                              "to answer (then: not found, with a note)"),
        "cone_radius": Key(_positive_float, "10", "arcsec around a Sesame position within "
                           "which archive targets match the name"),
    },
}


@dataclass(frozen=True)
class Settings:
    """Validated settings: ``settings.section['key']`` or ``settings.get(section, key)``."""

    values: Mapping[str, Mapping[str, Any]]
    config_path: Path | None = None
    root: Path = field(default_factory=Path.cwd)

    def get(self, section: str, key: str) -> Any:
        """Return one setting (KeyError for a key the service does not declare)."""
        return self.values[section][key]

    def section(self, name: str) -> Mapping[str, Any]:
        """Return all settings of one section."""
        return self.values[name]

    @property
    def metadata_url(self) -> str:
        """The metadata database URL with a relative SQLite path made absolute."""
        return _absolute_sqlite_url(self.get("metadata", "url"), self.root)

    @property
    def query_url(self) -> str:
        """URL of the account the VO endpoints read with."""
        url = self.get("metadata", "query_url")
        return _absolute_sqlite_url(url, self.root) if url else self.metadata_url

    @property
    def public_url(self) -> str:
        """Base URL of the service as clients reach it: ``public_url``, else
        ``http://host:port`` (the machine's name for a wildcard host such as 0.0.0.0).
        Requests build theirs with :func:`voservice.proxy.request_base_url`."""
        url = self.get("server", "public_url")
        if url:
            return url
        host = str(self.get("server", "host")).strip()
        if host in WILDCARD_HOSTS:  # every interface: never a host in a URL
            host = socket.gethostname()
        elif ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.get('server', 'port')}"

    def with_overrides(self, overrides: Mapping[str, Mapping[str, str]]) -> Settings:
        """Return new settings with some raw values replaced (validated like the ini)."""
        raw: dict[str, dict[str, str]] = {}
        for section, keys in overrides.items():
            raw.setdefault(section, {}).update({k: str(v) for k, v in keys.items()})
        merged = {s: dict(v) for s, v in self.values.items()}
        parsed = _parse_sections(raw, self.root, source="override")
        for section, keys in parsed.items():
            merged[section].update(keys)
        return Settings(merged, self.config_path, self.root)


def _absolute_sqlite_url(url: str, root: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////"):
        rest = url[len(prefix) :]
        if rest and rest != ":memory:" and not rest.startswith("file:"):
            return prefix + str((root / rest).resolve())
    return url


def _parse_sections(
    raw: Mapping[str, Mapping[str, str]], root: Path, source: str
) -> dict[str, dict[str, Any]]:
    parsed: dict[str, dict[str, Any]] = {}
    for section, keys in raw.items():
        declared = KEYS.get(section)
        if declared is None:
            raise ConfigError(
                f"{source}: unknown section [{section}]; known sections: {', '.join(KEYS)}"
            )
        for key, text in keys.items():
            spec = declared.get(key)
            if spec is None:
                raise ConfigError(
                    f"{source}: [{section}] unknown key '{key}'; "
                    f"known keys: {', '.join(declared)}"
                )
            try:
                value = spec.parse(text)
            except ValueError as exc:
                raise ConfigError(f"{source}: [{section}] {key} = {text!r}: {exc}") from None
            if spec.path and value:
                value = (root / value).resolve()
            parsed.setdefault(section, {})[key] = value
    return parsed


def load_config(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate an ini file.

    Without a path: ``$SKVO_CONFIG``, else ``./skvo.ini`` if present, else the
    built-in defaults rooted at the current folder.
    """
    if path is None:
        env = os.environ.get(CONFIG_ENV)
        if env:
            path = env
        elif Path(DEFAULT_CONFIG_NAME).is_file():
            path = DEFAULT_CONFIG_NAME
    raw: dict[str, dict[str, str]] = {}
    config_path: Path | None = None
    root = Path.cwd()
    if path is not None:
        config_path = Path(path).resolve()
        if not config_path.is_file():
            raise ConfigError(f"{config_path}: configuration file not found")
        parser = configparser.ConfigParser(interpolation=None, default_section="__none__")
        try:
            parser.read(config_path, encoding="utf-8")
        except configparser.Error as exc:
            raise ConfigError(f"{config_path}: {exc}") from None
        raw = {s: dict(parser[s]) for s in parser.sections()}
        root = config_path.parent
    defaults = {s: {k: spec.default for k, spec in keys.items()} for s, keys in KEYS.items()}
    values = _parse_sections(defaults, root, source="defaults")
    for section in KEYS:
        values.setdefault(section, {})
    for section, keys in _parse_sections(raw, root, source=str(config_path)).items():
        values[section].update(keys)
    return Settings(values, config_path, root)
