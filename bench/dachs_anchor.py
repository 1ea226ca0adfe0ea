#!/usr/bin/env python3
"""GAVO DaCHS 2.7 as the same-run anchor of the TAP and cone search benchmarks.

Sets DaCHS up idempotently on this machine and runs it on loopback:

1. installs Debian's ``gavodachs2-server`` with apt-get if it is missing
   (saying so on stderr), after making sure PostgreSQL runs;
2. copies our resource descriptor ``bench/dachs/q.rd`` (configuration, not
   DaCHS code) to ``<DaCHS inputs>/skvobench/q.rd`` and writes beside it the
   same synthetic targets ``bench_tap.py`` loads (same seed, same columns);
3. imports and publishes it (``dachs imp``, ``dachs pub``) unless the table
   already holds exactly these targets;
4. runs ``dachs serve start --foreground`` on a free loopback port and waits
   until ``/tap/availability`` answers.

:func:`running` is the context manager the benchmarks use; it yields the base
URL and stops the server afterwards.  :func:`anchor` wraps it for them: it
yields ``None`` (and says why on stderr) when DaCHS cannot be had, and the
benchmarks then fall back to the figures from an earlier machine, labelled as
not measured in this run.

    python bench/dachs_anchor.py [--targets N] [--serve]

sets DaCHS up, checks that TAP and SCS answer and stops it again, or with
``--serve`` keeps it running until interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import requests

PACKAGE = "gavodachs2-server"
#: our resource descriptor, kept in the repository
RD_SOURCE = Path(__file__).resolve().parent / "dachs" / "q.rd"
RESDIR = "skvobench"
RD_ID = f"{RESDIR}/q"
#: the targets table as TAP sees it
TAP_TABLE = "skvobench.target"
#: the Simple Cone Search endpoint below the base URL
SCS_PATH = f"/{RD_ID}/cone/scs.xml"
#: the Unix account DaCHS's Debian package sets up for handling data
DACHS_USER = "dachsroot"
#: what the import stamp records; a change here forces a re-import
STAMP = "imported.json"


class DachsUnavailable(RuntimeError):
    """DaCHS cannot be measured in this run; the message says why."""


def say(message: str) -> None:
    """Progress and problems go to stderr: the benchmarks' figures go to stdout."""
    print(f"dachs: {message}", file=sys.stderr, flush=True)


def targets(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """RA and Dec (deg) of n targets uniform on the sphere: the draws of bench_tap.py."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    return ra, dec


def _run(cmd: list[str], *, user: str | None = None, timeout: float = 3600,
         env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command (as user, via runuser, when given); its output is kept for errors."""
    if user is not None and os.geteuid() == 0 and user != "root":
        cmd = ["runuser", "-u", user, "--", *cmd]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=env, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DachsUnavailable(f"{' '.join(cmd)}: {exc}") from exc
    if check and done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise DachsUnavailable(f"{' '.join(cmd)} failed ({done.returncode}):\n{tail}")
    return done


# --------------------------------------------------------------------------
# PostgreSQL and the Debian package


def _package_status(name: str) -> str:
    """dpkg's status of a package: 'installed', 'half-configured', ... or '' if unknown."""
    if not shutil.which("dpkg-query"):
        return ""
    done = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", name],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def _postgres_ready() -> bool:
    done = subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"],
                          capture_output=True, check=False) if shutil.which("pg_isready") else None
    return done is not None and done.returncode == 0


def ensure_postgres() -> None:
    """PostgreSQL on 127.0.0.1:5432 (installed from Debian and started if need be)."""
    if _postgres_ready():
        return
    if not Path("/etc/postgresql").is_dir():
        _apt_install(["postgresql"], "PostgreSQL (DaCHS's database)")
    for version in sorted(os.listdir("/etc/postgresql")):
        say(f"starting PostgreSQL {version} (pg_ctlcluster)")
        _run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
             check=False, timeout=120)
    for _ in range(60):
        if _postgres_ready():
            return
        time.sleep(0.5)
    raise DachsUnavailable("PostgreSQL does not answer on 127.0.0.1:5432")


_apt_updated = False


def _apt_install(packages: list[str], why: str) -> None:
    global _apt_updated
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise DachsUnavailable(f"{' '.join(packages)} not installed, and this is no root "
                               "shell with apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        say("apt-get update")
        _run(["apt-get", "update", "-q"], env=env, timeout=900)
        _apt_updated = True
    say(f"installing {why} from Debian: apt-get install -y {' '.join(packages)}")
    _run(["apt-get", "install", "-y", "-q", *packages], env=env, timeout=1800)


#: pgsphere's old compatibility operators for DaCHS 1.x, @(bigint, smoc) and
#: @(spoint, smoc); PostgreSQL's stricter commutator check (15.x minor releases
#: of late 2024 on) refuses them, so CREATE EXTENSION pg_sphere fails
_MOC_COMPAT = re.compile(r"CREATE OPERATOR @ \(\s*LEFTARG\s*=\s*(?:bigint|spoint),\s*"
                         r"RIGHTARG\s*=\s*smoc,.*?\);\n", re.S)


def patch_pgsphere() -> None:
    """Drop the two obsolete operators from Debian's pg_sphere install scripts.

    pgsphere upstream removed them for the same reason (pgsphere PR #92);
    DaCHS 2.7 does not use them.  Bookworm's postgresql-15-pgsphere still has
    them, and with them ``CREATE EXTENSION pg_sphere`` (which the package's
    postinst runs through ``dachs init``) fails with "commutator operator @>
    is already the commutator of operator <@".
    """
    for script in sorted(Path("/usr/share/postgresql").glob("*/extension/pg_sphere--*.sql")):
        text = script.read_text()
        fixed = _MOC_COMPAT.sub("", text)
        if fixed != text:
            say(f"patching {script}: dropping pgsphere's obsolete @(bigint|spoint, smoc) "
                "operators, which this PostgreSQL refuses (as pgsphere upstream did)")
            script.write_text(fixed)


def ensure_installed() -> None:
    """DaCHS 2.x from Debian, its database initialised; PostgreSQL running."""
    ensure_postgres()
    status = _package_status(PACKAGE)
    if status == "installed" and shutil.which("dachs"):
        return
    if os.geteuid() != 0:
        raise DachsUnavailable(f"{PACKAGE} is {status or 'not installed'} and this is no root "
                               "shell to install it")
    if status == "":
        say(f"{PACKAGE} is not installed")
        _apt_install(["postgresql-pgsphere", "postgresql-q3c"], "DaCHS's PostgreSQL extensions")
        patch_pgsphere()
        _apt_install([PACKAGE], "GAVO DaCHS")
    else:  # e.g. half-configured: an earlier postinst failed
        say(f"{PACKAGE} is {status}: patching and finishing its configuration (dpkg)")
        patch_pgsphere()
        _run(["dpkg", "--configure", "-a"],
             env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, timeout=900)
    if _package_status(PACKAGE) != "installed" or not shutil.which("dachs"):
        raise DachsUnavailable(f"{PACKAGE} did not install (dpkg status: "
                               f"{_package_status(PACKAGE) or 'unknown'})")


# --------------------------------------------------------------------------
# Our resource descriptor and its data


def dachs_config(section: str, key: str | None = None) -> str:
    """A value of DaCHS's configuration (``dachs config``)."""
    args = [section] if key is None else [section, key]
    return _run(["dachs", "config", *args], timeout=60).stdout.strip()


def _user() -> str | None:
    """The account to run dachs imp/pub as (DaCHS's data account if there is one)."""
    try:
        import pwd

        pwd.getpwnam(DACHS_USER)
    except (ImportError, KeyError):
        return None
    return DACHS_USER


def _psql(query: str) -> str:
    """One value from DaCHS's database (as the postgres superuser, over the local socket)."""
    done = _run(["psql", "-X", "-A", "-t", "-d", "gavo", "-c", query], user="postgres",
                check=False, timeout=60)
    return done.stdout.strip() if done.returncode == 0 else ""


def table_rows() -> int:
    """Rows in skvobench.target (-1 if there is no such table)."""
    if _psql(f"SELECT to_regclass('{TAP_TABLE}') IS NOT NULL") != "t":
        return -1
    value = _psql(f"SELECT count(*) FROM {TAP_TABLE}")
    return int(value) if value.isdigit() else -1


def write_csv(path: Path, n: int, seed: int = 1) -> None:
    """The targets of bench_tap.py: target_id, target, right_ascension, declination,
    catalogue_value (full double precision: Python's shortest round-trip repr)."""
    ra, dec = targets(n, seed)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as out:
        step = 100_000
        for start in range(0, n, step):
            stop = min(n, start + step)
            out.writelines(f"{i + 1},T{i:07d},{r!r},{d!r},{i}\n" for i, r, d in zip(
                range(start, stop), ra[start:stop].tolist(), dec[start:stop].tolist(),
                strict=True))
    tmp.replace(path)


def _chown(path: Path) -> None:
    user = _user()
    if user is not None and os.geteuid() == 0:
        shutil.chown(path, user, "gavo")


def setup(n: int = 1_000_000, seed: int = 1) -> None:
    """Install DaCHS if need be, then have it serve exactly our n targets (idempotent)."""
    ensure_installed()
    resdir = Path(dachs_config("inputsDir")) / RESDIR
    data = resdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    rd_text = RD_SOURCE.read_text()
    wanted = {"targets": n, "seed": seed, "rd_sha256": hashlib.sha256(rd_text.encode()).hexdigest()}
    stamp = resdir / STAMP
    try:
        have = json.loads(stamp.read_text())
    except (OSError, ValueError):
        have = None
    if have == wanted and table_rows() == n:
        return
    say(f"importing {n:,} targets into DaCHS ({TAP_TABLE}; RD {resdir / 'q.rd'})")
    start = time.perf_counter()
    stamp.unlink(missing_ok=True)
    (resdir / "q.rd").write_text(rd_text)
    write_csv(data / "targets.csv", n, seed)
    for path in (resdir, data, resdir / "q.rd", data / "targets.csv"):
        _chown(path)
    _run(["dachs", "imp", RD_ID], user=_user(), timeout=3600)
    _run(["dachs", "pub", RD_ID], user=_user(), timeout=600)
    rows = table_rows()
    if rows != n:
        raise DachsUnavailable(f"dachs imp left {rows:,} rows in {TAP_TABLE}, not {n:,}")
    stamp.write_text(json.dumps(wanted) + "\n")
    _chown(stamp)
    say(f"imported and published in {time.perf_counter() - start:.0f} s")


# --------------------------------------------------------------------------
# The server


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _available(base: str) -> bool:
    try:
        response = requests.get(f"{base}/tap/availability", timeout=5)
    except requests.RequestException:
        return False
    return response.status_code == 200 and b"available>true<" in response.content


@contextmanager
def running(n: int = 1_000_000, seed: int = 1, timeout: float = 180) -> Iterator[str]:
    """Set DaCHS up for n targets, serve it on a free loopback port, yield its base URL.

    The server is ``dachs serve start --foreground`` (production mode: it drops
    to DaCHS's server account and logs to DaCHS's log directory) with a
    GAVOCUSTOM file that puts it on 127.0.0.1:<port>; /etc/gavo.rc is left alone.
    """
    setup(n, seed)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="skvo-dachs-") as tmp:
        custom = Path(tmp) / "gavorc"
        custom.write_text(f"[web]\nbindAddress: 127.0.0.1\nserverPort: {port}\n"
                          f"serverURL: {base}\n")
        os.chmod(tmp, 0o755)
        log_path = Path(tmp) / "server.log"
        env = {**os.environ, "GAVOCUSTOM": str(custom)}
        with log_path.open("wb") as log:
            proc = subprocess.Popen(["dachs", "serve", "start", "--foreground"], env=env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while not _available(base):
                if proc.poll() is not None:
                    raise DachsUnavailable(f"dachs serve exited ({proc.returncode}):\n"
                                           + log_path.read_text(errors="replace")[-2000:])
                if time.monotonic() > deadline:
                    raise DachsUnavailable(f"dachs serve did not answer on {base}/tap/"
                                           f"availability within {timeout:.0f} s")
                time.sleep(0.5)
            yield base
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server we started (only that process, by its id)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: proc.pid is the group's id
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        proc.wait(timeout=10)


@contextmanager
def anchor(enabled: bool, n: int = 1_000_000, seed: int = 1) -> Iterator[str | None]:
    """:func:`running`, or None (with the reason on stderr) when DaCHS cannot be had."""
    if not enabled:
        say("skipped (--no-dachs): not measured in this run")
        yield None
        return
    with ExitStack() as stack:
        try:
            base: str | None = stack.enter_context(running(n, seed))
        except (DachsUnavailable, OSError) as exc:
            say(f"not measured in this run: {exc}")
            base = None
        yield base


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1_000_000)
    parser.add_argument("--serve", action="store_true", help="keep serving until interrupted")
    args = parser.parse_args()
    start = time.perf_counter()
    try:
        with running(args.targets) as base:
            say(f"serving on {base} ({time.perf_counter() - start:.0f} s to get here)")
            query = f"SELECT COUNT(*) AS n FROM {TAP_TABLE}"
            tap = requests.post(f"{base}/tap/sync", data={
                "LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv"}, timeout=120)
            tap.raise_for_status()
            scs = requests.get(f"{base}{SCS_PATH}", params={"RA": 10, "DEC": 10, "SR": 0.1},
                               timeout=60)
            scs.raise_for_status()
            print(f"TAP  {base}/tap  {query}: {tap.text.split()[-1]}")
            print(f"SCS  {base}{SCS_PATH}  RA=10 DEC=10 SR=0.1: HTTP {scs.status_code}, "
                  f"{len(scs.content):,} bytes")
            if args.serve:
                print("serving; Ctrl-C or SIGTERM stops", flush=True)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.signal(signal.SIGTERM, signal.default_int_handler)
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass
    except DachsUnavailable as exc:
        say(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
