"""The files under deploy/: systemd units that systemd accepts, proxy limits that match SKVO's."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from voservice.config import load_config
from voservice.limits import max_body_bytes
from voservice.protocols.uws import WAIT_CAP_SECONDS

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SKVO = str(Path(sys.executable).with_name("skvo"))


def test_systemd_units_are_valid(tmp_path: Path) -> None:
    """systemd-analyze verify: syntax, the timer's calendar, the timer's service."""
    units = sorted((DEPLOY / "systemd").iterdir())
    assert {u.name for u in units} == {"skvo.service", "skvo-ingest.service",
                                       "skvo-ingest.timer"}
    for unit in units:  # verify wants the executable to exist: this venv's skvo
        (tmp_path / unit.name).write_text(
            unit.read_text().replace("/srv/skvo/.venv/bin/skvo", SKVO))
    assert shutil.which("systemd-analyze"), "systemd-analyze (Debian: systemd) is missing"
    result = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / u.name)
                                                            for u in units)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    problems = [line for line in result.stderr.splitlines() if str(tmp_path) in line]
    assert not problems, problems
    service = (DEPLOY / "systemd" / "skvo.service").read_text()
    assert re.search(r"^ExecStart=\S+/skvo serve$", service, re.M)
    ingest = (DEPLOY / "systemd" / "skvo-ingest.service").read_text()
    assert re.search(r"^ExecStart=\S+/skvo ingest$", ingest, re.M)


def _number(text: str, pattern: str) -> int:
    match = re.search(pattern, text, re.M)
    assert match, pattern
    return int(match.group(1))


@pytest.mark.parametrize("name, body, timeout", [
    ("nginx/skvo.conf", r"^\s*client_max_body_size (\d+);", r"^\s*proxy_read_timeout (\d+)s;"),
    ("apache/skvo.conf", r"^\s*LimitRequestBody (\d+)", r"^\s*ProxyTimeout (\d+)"),
])
def test_proxy_limits_match_the_defaults_of_skvo(tmp_path: Path, name: str, body: str,
                                                 timeout: str) -> None:
    """The proxy passes every body SKVO accepts (TAP_UPLOAD) and waits out a sync query."""
    text = (DEPLOY / name).read_text()
    settings = _defaults(tmp_path)
    assert _number(text, body) == max_body_bytes(settings)
    assert _number(text, timeout) > settings.get("vo", "sync_timeout")
    assert _number(text, timeout) > WAIT_CAP_SECONDS  # the longest a UWS WAIT blocks


def _defaults(tmp_path: Path):  # noqa: ANN202 - Settings
    ini = tmp_path / "skvo.ini"
    ini.write_text("")
    return load_config(ini)
