"""SKVO behind Debian's nginx (deploy/nginx/skvo.conf) and Apache (deploy/apache/skvo.conf).

nginx (and Apache) runs as an unprivileged process (user nobody when the tests run as root)
on free loopback ports, with the sample site configuration: only its ports,
file paths and host name are replaced (``site_config``).  Behind it, under the
prefix ``/skvo``, two ``skvo serve`` processes on different ports serve one
deployment (one MariaDB database, one ini file); they build their URLs from
nginx's X-Forwarded-* headers ([server] public_url is empty, 127.0.0.1 is a
trusted proxy).  pyvo and STILTS talk TLS to nginx.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import io
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pyvo
import requests
from astropy.io.votable import parse as parse_votable
from astropy.table import Table
from conftest import Deployment, deploy, free_port, mariadb_database, taplint_problems
from lxml import etree

SAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "skvo.conf"
NGINX = "/usr/sbin/nginx"
NAME = "localhost"  # the certificate's name; clients send it as SNI
#: a client address that is no trusted proxy (loopback, but not 127.0.0.1)
STRANGER = "127.0.0.2"
BETA_LYR = (282.519975, 33.362667)


def site_config(sample: str, *, https_port: int, http_port: int, hosts: list[int],
                cert: Path, key: Path, name: str) -> str:
    """The sample with its ports, certificate paths and host name replaced (nothing else)."""
    replacements = [
        ("listen 443 ", f"listen 127.0.0.1:{https_port} "),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("server 127.0.0.1:8081 ", f"server 127.0.0.1:{hosts[0]} "),
        ("server 127.0.0.1:8082 ", f"server 127.0.0.1:{hosts[1]} "),
        ("/etc/letsencrypt/live/skvo.example.org/fullchain.pem", str(cert)),
        ("/etc/letsencrypt/live/skvo.example.org/privkey.pem", str(key)),
        ("skvo.example.org", name),
    ]
    for old, new in replacements:
        assert old in sample, f"deploy/nginx/skvo.conf no longer has {old!r}"
        sample = sample.replace(old, new)
    return sample


def main_config(folder: Path, site: Path) -> str:
    """The process-level nginx.conf around the site file (Debian's nginx.conf has these)."""
    temp = folder / "temp"
    return f"""daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log notice;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {folder}/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {site};
}}
"""


def make_certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` (and 127.0.0.1), for this run only."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert, key


def java_truststore(folder: Path, cert: Path) -> Path:
    """A PKCS12 trust store holding the certificate (for STILTS)."""
    store = folder / "trust.p12"
    subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "skvo", "-file", str(cert),
                    "-keystore", str(store), "-storetype", "PKCS12", "-storepass", "changeit"],
                   check=True, capture_output=True)
    return store


class Host:
    """One ``skvo serve`` of the deployment, on a port of its own."""

    def __init__(self, dep: Deployment, port: int, label: str) -> None:
        self.dep = dep
        self.port = port
        self.log = dep.root / f"host-{label}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The host's own address (not the public URL)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start ``skvo serve --port`` and wait until it answers."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "voservice.cli", "serve", "--config",
                 str(self.dep.config), "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until_up(self.url + "/tap/availability", self.proc, self.log)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after 20 s."""
        if self.proc is not None:
            stop_group(self.proc)
            self.proc = None

    def log_lines(self) -> list[str]:
        """The access-log lines written so far."""
        return [line for line in self.log.read_text(errors="replace").splitlines()
                if '" ' in line and " - - [" in line]


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path,
                  verify: str | bool = True) -> None:
    """Poll ``url`` until it answers (fails with the log when the process exits)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited: {log.read_text()[-3000:]}")
        with contextlib.suppress(requests.ConnectionError, requests.Timeout):
            requests.get(url, timeout=2, verify=verify)
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in 60 s: {log.read_text()[-3000:]}")


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started with its own session (SIGTERM, then SIGKILL)."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def unprivileged() -> list[str]:
    """The command prefix that drops root (nobody/nogroup); nothing for other users."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@dataclass
class Stack:
    """nginx in front of two hosts."""

    base: str  # the public base URL: https://localhost:<port>/skvo
    https_port: int
    http_port: int
    hosts: list[Host]
    cert: Path
    truststore: Path
    folder: Path


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory, demo_tree: Path) -> Iterator[list[Host]]:
    """Two `skvo serve` hosts of one deployment (one MariaDB database, one ini file)."""
    root = tmp_path_factory.mktemp("proxied-deployment")
    dep = deploy(root, demo_tree, mariadb_database("skvo_nginx"), server={
        "public_url": "", "trusted_proxies": "127.0.0.1", "workers": "1", "threads": "4"})
    started = [Host(dep, dep.port, "a"), Host(dep, free_port(), "b")]
    try:
        for host in started:
            host.start()
        yield started
    finally:
        for host in started:
            host.stop()


def proxy_folder(prefix: str) -> tuple[Path, Path, Path]:
    """(folder, certificate, key) for a proxy that runs as nobody: outside pytest's
    root-only temporary tree."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(folder, 0o755)
    cert, key = make_certificate(folder, NAME)
    return folder, cert, key


def give_to_nobody(folder: Path) -> None:
    """Hand the folder to the unprivileged user the proxy runs as (when we are root)."""
    if os.geteuid() == 0:
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, 65534, 65534)


@contextlib.contextmanager
def running(command: list[str], folder: Path, cert: Path, https_port: int, http_port: int,
            hosts: list[Host], error_log: Path) -> Iterator[Stack]:
    """Run a proxy in the foreground until the block ends; yields its Stack."""
    with (folder / "proxy.out").open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"https://{NAME}:{https_port}/skvo"
    try:
        wait_until_up(base + "/tap/availability", proc, error_log, verify=str(cert))
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("REQUESTS_CA_BUNDLE", str(cert))  # pyvo's and requests' sessions
            yield Stack(base=base, https_port=https_port, http_port=http_port, hosts=hosts,
                        cert=cert, truststore=java_truststore(folder, cert), folder=folder)
    finally:
        stop_group(proc)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(hosts: list[Host]) -> Iterator[Stack]:
    """Debian's nginx with the sample config in front of the two hosts."""
    assert os.access(NGINX, os.X_OK), "nginx is missing: apt-get install nginx (tests/run does)"
    folder, cert, key = proxy_folder("skvo-nginx-")
    https_port, http_port = free_port(), free_port()
    site = folder / "skvo.conf"
    site.write_text(site_config(SAMPLE.read_text(), https_port=https_port, http_port=http_port,
                                hosts=[h.port for h in hosts], cert=cert, key=key, name=NAME))
    conf = folder / "nginx.conf"
    conf.write_text(main_config(folder, site))
    (folder / "temp").mkdir()
    give_to_nobody(folder)
    command = [*unprivileged(), NGINX, "-p", str(folder), "-e", str(folder / "error.log"),
               "-c", str(conf)]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    with running(command, folder, cert, https_port, http_port, hosts,
                 folder / "error.log") as proxied:
        yield proxied


def raw_request(stack: Stack, method: str, path: str, headers: dict[str, str],
                source: str = STRANGER, body: bytes | None = None,
                port: int | None = None, tls: bool = True) -> tuple[int, dict[str, str], bytes]:
    """One request from a chosen loopback source address (http.client)."""
    if tls:
        context = ssl.create_default_context(cafile=str(stack.cert))
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            NAME, port or stack.https_port, context=context, timeout=60,
            source_address=(source, 0))
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port or stack.https_port, timeout=60,
                                          source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def access_urls(xml: bytes) -> list[str]:
    """Every accessURL of a VOSI capabilities document."""
    return [e.text or "" for e in etree.fromstring(xml).iter("accessURL")]


# --------------------------------------------------------------------------
# Pages, static files and generated URLs under the prefix


def page_links(html: str, attributes: str = "href|src|data-[a-z-]+") -> list[str]:
    """The URLs (root-relative or absolute) in some attributes of a page."""
    return re.findall(rf'(?:{attributes})="(/[^"]*|https?://[^"]*)"', html)


def test_pages_links_and_static_files_under_the_prefix(stack: Stack) -> None:
    """Every link of the home page and a search result page stays under /skvo and works."""
    origin = f"https://{NAME}:{stack.https_port}"
    home = requests.get(stack.base + "/", timeout=30)
    assert home.status_code == 200 and "text/html" in home.headers["Content-Type"]
    search = requests.get(stack.base + "/search", params={"q": "bet Lyr"}, timeout=30)
    assert search.status_code == 200
    links = set(page_links(home.text)) | set(page_links(search.text))
    assert any("/static/" in link for link in links), links
    ours = {link for link in links if link.startswith("/") or link.startswith(origin)}
    forms = set(page_links(home.text + search.text, "action"))
    wrong = sorted(u for u in ours | forms
                   if not (u.startswith("/skvo/") or u.startswith(stack.base)))
    assert not wrong, f"links outside the prefix: {wrong}"
    for link in sorted(ours):
        url = origin + link if link.startswith("/") else link
        got = requests.get(url.replace("&amp;", "&"), timeout=60, stream=True)
        assert got.status_code < 400, (url, got.status_code)
        got.close()
    bare = requests.get(f"{origin}/skvo", allow_redirects=False, timeout=30)
    assert bare.status_code == 301 and bare.headers["Location"].endswith("/skvo/")
    plain = requests.get(f"http://{NAME}:{stack.http_port}/skvo/tap", allow_redirects=False,
                         timeout=30)
    assert plain.status_code == 301 and plain.headers["Location"].startswith(
        f"https://{NAME}")


@pytest.mark.parametrize("service", ["tap", "scs", "ssa", "sia", "datalink"])
def test_capabilities_name_the_public_urls(stack: Stack, service: str) -> None:
    response = requests.get(f"{stack.base}/{service}/capabilities", timeout=30)
    assert response.status_code == 200
    urls = access_urls(response.content)
    assert urls and all(u.startswith(f"{stack.base}/") for u in urls), urls


def test_portal_in_a_browser_under_the_prefix(stack: Stack, browser: object) -> None:
    """Search, star page, plot and periodogram through nginx: every request the page
    scripts make stays under /skvo and succeeds, and no script fails."""
    from conftest import BrowserPage

    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280,
                                                                     "height": 800})
    try:
        page = BrowserPage(context.new_page(), "deploy-nginx-portal")
        p = page.page
        p.set_default_timeout(60_000)
        seen: list[tuple[str, int]] = []
        p.on("response", lambda r: seen.append((r.url, r.status)))
        p.goto(stack.base + "/")
        p.wait_for_selector("#sky[data-count]")
        p.fill("#q", "beta Lyr")
        p.press("#q", "Enter")
        p.wait_for_url("**/skvo/star/*")
        p.wait_for_selector("#curve[data-ready='1']")
        p.select_option("#pg-band", "johnson.v")
        p.click("#pg-run")
        p.wait_for_selector("#peaks:not([hidden])", timeout=120_000)
        page.shoot("star-periodogram")
    finally:
        context.close()
    assert not page.errors, page.errors
    origin = f"https://{NAME}:{stack.https_port}"
    ours = [(u, code) for u, code in seen if u.startswith(origin)]
    assert any("/analysis/periodogram" in u for u, _ in ours), ours
    assert all(u.startswith(stack.base + "/") for u, _ in ours), ours
    assert all(code < 400 for _, code in ours), [x for x in ours if x[1] >= 400]


# --------------------------------------------------------------------------
# VO clients through nginx


def test_pyvo_tap_sync_obscore_and_datalink(stack: Stack) -> None:
    tap = pyvo.dal.TAPService(f"{stack.base}/tap")
    rows = tap.run_sync("SELECT TOP 3 obs_publisher_did, access_url FROM ivoa.obscore "
                        "WHERE dataproduct_type = 'timeseries'").to_table()
    assert len(rows) == 3
    for row in rows:
        assert str(row["access_url"]).startswith(f"{stack.base}/datalink?ID=")
    links = pyvo.dal.adhoc.DatalinkResults.from_result_url(str(rows[0]["access_url"]))
    assert all(str(u).startswith(f"{stack.base}/") for u in links.to_table()["access_url"]
               if str(u))
    this = list(links.bysemantics("#this", include_narrower=False))
    assert this and this[0].access_url.startswith(f"{stack.base}/lightcurve/")
    curve = parse_votable(io.BytesIO(this[0].getdataset().read())).get_first_table()
    assert len(curve.array) > 0


def test_pyvo_tap_upload(stack: Stack) -> None:
    mine = Table({"ra": [BETA_LYR[0]], "dec": [BETA_LYR[1]]})
    tap = pyvo.dal.TAPService(f"{stack.base}/tap")
    found = tap.run_sync(
        "SELECT t.target FROM skvo.target AS t JOIN TAP_UPLOAD.mine AS m ON "
        "1 = CONTAINS(POINT('ICRS', t.right_ascension, t.declination), "
        "CIRCLE('ICRS', m.ra, m.dec, 0.01))", uploads={"mine": mine}).to_table()
    assert len(found) == 1


def test_pyvo_cone_search(stack: Stack) -> None:
    targets = pyvo.dal.SCSService(f"{stack.base}/scs").search(pos=BETA_LYR, radius=0.1,
                                                                 verbosity=3)
    table = targets.to_table()
    assert len(table) == 1
    for column in ("observations_url", "ssa_url"):
        assert str(table[column][0]).startswith(f"{stack.base}/"), table[column][0]


def test_pyvo_ssa_and_its_light_curves(stack: Stack) -> None:
    records = pyvo.dal.SSAService(f"{stack.base}/ssa").search(pos=BETA_LYR, diameter=0.1)
    assert len(records) > 0
    urls = [r.getdataurl() for r in records]
    assert all(u.startswith(f"{stack.base}/lightcurve/") for u in urls), urls[:3]
    curve = parse_votable(io.BytesIO(requests.get(urls[0], timeout=60).content))
    assert len(curve.get_first_table().array) > 0


def test_sia_access_urls(stack: Stack) -> None:
    images = pyvo.dal.SIA2Service(f"{stack.base}/sia").search(pos=(*BETA_LYR, 1.0))
    urls = [str(r["access_url"]) for r in images]
    assert urls and all(u.startswith(f"{stack.base}/frame/") for u in urls)
    frame = requests.get(urls[0], timeout=60)
    assert frame.status_code == 200 and frame.content.startswith(b"\x89PNG")
    assert "Content-Encoding" not in frame.headers  # PNG is not gzipped


def test_async_job_urls_through_nginx(stack: Stack) -> None:
    """A job created through nginx lives at public URLs, whichever host takes each call."""
    tap = pyvo.dal.TAPService(f"{stack.base}/tap")
    job = tap.submit_job("SELECT TOP 2 target FROM skvo.target ORDER BY target")
    try:
        assert job.url.startswith(f"{stack.base}/tap/async/"), job.url
        job.run()
        job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
        assert job.phase == "COMPLETED", job.phase
        assert job.result_uri.startswith(f"{stack.base}/tap/async/")
        assert len(job.fetch_result().to_table()) == 2
    finally:
        job.delete()


def test_taplint_through_nginx(stack: Stack) -> None:
    result = subprocess.run(
        ["stilts", f"-Djavax.net.ssl.trustStore={stack.truststore}",
         "-Djavax.net.ssl.trustStorePassword=changeit",
         "taplint", f"tapurl={stack.base}/tap", "report=EWF", "maxrepeat=3"],
        capture_output=True, text=True, timeout=600)
    totals = re.search(r"Totals: Errors: (\d+); Warnings: (\d+); Failures: (\d+)", result.stdout)
    assert totals, result.stdout[-3000:] + result.stderr[-2000:]
    assert taplint_problems(result.stdout) == [], result.stdout[-3000:]


# --------------------------------------------------------------------------
# Two hosts, client addresses, spoofing


def test_both_hosts_answer(stack: Stack) -> None:
    before = [len(h.log_lines()) for h in stack.hosts]
    for _ in range(12):
        assert requests.get(f"{stack.base}/tap/availability", timeout=30).status_code == 200
    time.sleep(0.3)
    after = [len(h.log_lines()) for h in stack.hosts]
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)


SPOOF = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http",
         "X-Forwarded-Port": "666", "X-Forwarded-Prefix": "/evil",
         "Forwarded": "for=6.6.6.6;host=evil.example;proto=http",
         "X-Forwarded-For": "6.6.6.6"}


def _logged_address(stack: Stack, marker: str) -> str:
    for _ in range(20):
        for host in stack.hosts:
            for line in host.log_lines():
                if marker in line:
                    return line.split(" ", 1)[0]
        time.sleep(0.1)
    raise AssertionError(f"no host logged {marker}")


def test_clients_cannot_change_urls_through_nginx(stack: Stack) -> None:
    marker = "spoof-through-nginx"
    status, _, body = raw_request(stack, "GET", f"/skvo/tap/capabilities?m={marker}",
                                  {"Host": f"{NAME}:{stack.https_port}", **SPOOF})
    assert status == 200
    urls = access_urls(body)
    assert urls and all(u.startswith(f"{stack.base}/tap") for u in urls), urls
    # nginx appends the real address to X-Forwarded-For; SKVO takes it, not the client's claim
    assert _logged_address(stack, marker) == STRANGER
    # another name in Host (which nginx would forward as X-Forwarded-Host) is refused
    status, _, _ = raw_request(stack, "GET", "/skvo/tap/capabilities",
                               {"Host": "evil.example"})
    assert status == 421


def test_untrusted_client_cannot_change_urls_at_a_host(stack: Stack) -> None:
    """Straight to a host from an address that is no trusted proxy: headers ignored."""
    host = stack.hosts[1]
    marker = "spoof-direct"
    status, _, body = raw_request(stack, "GET", f"/tap/capabilities?m={marker}",
                                  {"Host": f"127.0.0.1:{host.port}", **SPOOF},
                                  port=host.port, tls=False)
    assert status == 200
    urls = access_urls(body)
    assert urls and all(u.startswith(f"http://127.0.0.1:{host.port}/tap") for u in urls), urls
    assert _logged_address(stack, marker) == STRANGER


# --------------------------------------------------------------------------
# Compression and request limits


def test_gzip_for_text_formats_only(stack: Stack) -> None:
    query = {"REQUEST": "doQuery", "LANG": "ADQL",
             "QUERY": "SELECT TOP 50 * FROM ivoa.obscore"}
    votable = requests.get(f"{stack.base}/tap/sync", params=query,
                           headers={"Accept-Encoding": "gzip"}, stream=True, timeout=60)
    assert votable.headers.get("Content-Encoding") == "gzip"
    assert b"<VOTABLE" in gzip.decompress(votable.raw.read())
    fits = requests.get(f"{stack.base}/tap/sync", params={**query, "RESPONSEFORMAT": "fits"},
                        headers={"Accept-Encoding": "gzip"}, stream=True, timeout=60)
    assert fits.status_code == 200 and "Content-Encoding" not in fits.headers
    assert fits.raw.read(9) == b"SIMPLE  ="


def test_too_large_body_is_a_dali_error(stack: Stack) -> None:
    """nginx refuses a body beyond client_max_body_size at once, as a DALI error."""
    context = ssl.create_default_context(cafile=str(stack.cert))
    conn = http.client.HTTPSConnection(NAME, stack.https_port, context=context, timeout=30)
    try:
        conn.putrequest("POST", "/skvo/tap/sync")
        conn.putheader("Content-Type", "application/x-www-form-urlencoded")
        conn.putheader("Content-Length", str(20_000_000 + 1024 * 1024 + 1))
        conn.endheaders()  # no body sent: the limit is decided on the header
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 413
    assert response.getheader("Content-Type").startswith("application/x-votable+xml")
    info = etree.fromstring(body).find(".//{*}INFO[@name='QUERY_STATUS']")
    assert info.get("value") == "ERROR" and "21048576 bytes" in info.text


# --------------------------------------------------------------------------
# Apache httpd with deploy/apache/skvo.conf, in front of the same two hosts

APACHE_SAMPLE = SAMPLE.parent.parent / "apache" / "skvo.conf"
APACHE = "/usr/sbin/apache2"
APACHE_MODULES = ("mpm_event", "authz_core", "alias", "rewrite", "headers", "deflate",
                  "filter", "ssl", "socache_shmcb", "proxy", "proxy_http", "proxy_balancer",
                  "slotmem_shm", "lbmethod_byrequests")


def apache_site_config(sample: str, *, https_port: int, http_port: int, hosts: list[int],
                       cert: Path, key: Path, name: str) -> str:
    """The Apache sample with its ports, certificate paths and host name replaced."""
    replacements = [
        ("<VirtualHost *:80>", f"<VirtualHost *:{http_port}>"),
        ("<VirtualHost *:443>", f"<VirtualHost *:{https_port}>"),
        ("(:443)?", f"(:{https_port})?"),
        ('X-Forwarded-Port "443"', f'X-Forwarded-Port "{https_port}"'),
        ('"http://127.0.0.1:8081"', f'"http://127.0.0.1:{hosts[0]}"'),
        ('"http://127.0.0.1:8082"', f'"http://127.0.0.1:{hosts[1]}"'),
        ("/etc/letsencrypt/live/skvo.example.org/fullchain.pem", str(cert)),
        ("/etc/letsencrypt/live/skvo.example.org/privkey.pem", str(key)),
        (r"skvo\.example\.org", re.escape(name)),
        ("skvo.example.org", name),
    ]
    for old, new in replacements:
        assert old in sample, f"deploy/apache/skvo.conf no longer has {old!r}"
        sample = sample.replace(old, new)
    return sample


def apache_main_config(folder: Path, site: Path, https_port: int, http_port: int) -> str:
    """The server-level httpd.conf around the site (Debian's apache2.conf has these)."""
    modules = "\n".join(f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so"
                        for m in APACHE_MODULES)
    return f"""ServerRoot "{folder}"
ServerName {NAME}
Listen 127.0.0.1:{https_port}
Listen 127.0.0.1:{http_port}
PidFile {folder}/apache.pid
DefaultRuntimeDir {folder}
Mutex file:{folder} default
ErrorLog {folder}/error.log
LogLevel warn
{modules}
LogFormat "%h %l %u %t \\"%r\\" %>s %b" common
CustomLog {folder}/access.log common
Include {site}
"""


@pytest.fixture(scope="module")
def apache(hosts: list[Host]) -> Iterator[Stack]:
    """Debian's Apache httpd with the sample site in front of the two hosts."""
    assert os.access(APACHE, os.X_OK), "apache2 is missing: apt-get install apache2 (tests/run)"
    folder, cert, key = proxy_folder("skvo-apache-")
    https_port, http_port = free_port(), free_port()
    site = folder / "skvo.conf"
    site.write_text(apache_site_config(
        APACHE_SAMPLE.read_text(), https_port=https_port, http_port=http_port,
        hosts=[h.port for h in hosts], cert=cert, key=key, name=NAME))
    conf = folder / "httpd.conf"
    conf.write_text(apache_main_config(folder, site, https_port, http_port))
    give_to_nobody(folder)
    command = [*unprivileged(), APACHE, "-f", str(conf), "-DFOREGROUND"]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    with running(command, folder, cert, https_port, http_port, hosts,
                 folder / "error.log") as proxied:
        yield proxied


def test_apache_urls_carry_the_public_prefix(apache: Stack) -> None:
    capabilities = requests.get(f"{apache.base}/tap/capabilities", timeout=30)
    urls = access_urls(capabilities.content)
    assert urls and all(u.startswith(f"{apache.base}/tap") for u in urls), urls
    rows = pyvo.dal.TAPService(f"{apache.base}/tap").run_sync(
        "SELECT TOP 2 access_url FROM ivoa.obscore").to_table()
    assert all(str(u).startswith(f"{apache.base}/datalink?ID=") for u in rows["access_url"])
    links = pyvo.dal.adhoc.DatalinkResults.from_result_url(str(rows["access_url"][0]))
    this = list(links.bysemantics("#this", include_narrower=False))
    assert this and this[0].access_url.startswith(f"{apache.base}/lightcurve/")
    assert len(parse_votable(io.BytesIO(this[0].getdataset().read())).get_first_table().array)
    records = pyvo.dal.SSAService(f"{apache.base}/ssa").search(pos=BETA_LYR, diameter=0.1)
    assert records and all(r.getdataurl().startswith(f"{apache.base}/lightcurve/")
                           for r in records)
    page = requests.get(f"{apache.base}/", timeout=30)
    assert page.status_code == 200 and 'href="/skvo/static/' in page.text


def test_apache_gzip_for_text_formats_only(apache: Stack) -> None:
    query = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": "SELECT TOP 50 * FROM ivoa.obscore"}
    votable = requests.get(f"{apache.base}/tap/sync", params=query,
                           headers={"Accept-Encoding": "gzip"}, stream=True, timeout=60)
    assert votable.headers.get("Content-Encoding") == "gzip"
    assert b"<VOTABLE" in gzip.decompress(votable.raw.read())
    fits = requests.get(f"{apache.base}/tap/sync", params={**query, "RESPONSEFORMAT": "fits"},
                        headers={"Accept-Encoding": "gzip"}, stream=True, timeout=60)
    assert fits.status_code == 200 and "Content-Encoding" not in fits.headers


def test_apache_clients_cannot_change_urls(apache: Stack) -> None:
    marker = "spoof-through-apache"
    status, headers, body = raw_request(apache, "GET", f"/skvo/tap/capabilities?m={marker}",
                                        {"Host": f"{NAME}:{apache.https_port}", **SPOOF})
    assert status == 200
    assert headers.get("server") == "SKVO"
    urls = access_urls(body)
    assert urls and all(u.startswith(f"{apache.base}/tap") for u in urls), urls
    assert _logged_address(apache, marker) == STRANGER
    status, _, _ = raw_request(apache, "GET", "/skvo/tap/capabilities", {"Host": "evil.example"})
    assert status == 403


def test_apache_refuses_a_too_large_body(apache: Stack) -> None:
    """A Content-Length beyond SKVO's limit is answered 413 before any body is read."""
    context = ssl.create_default_context(cafile=str(apache.cert))
    conn = http.client.HTTPSConnection(NAME, apache.https_port, context=context, timeout=30)
    try:
        conn.putrequest("POST", "/skvo/tap/sync")
        conn.putheader("Content-Type", "application/x-www-form-urlencoded")
        conn.putheader("Content-Length", str(20_000_000 + 1024 * 1024 + 1))
        conn.endheaders()  # no body sent
        assert conn.getresponse().status == 413
    finally:
        conn.close()
