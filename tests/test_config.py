"""skvo.ini: every key validated at start, errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from voservice.config import KEYS, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "skvo.ini"
    path.write_text(text)
    return path


def test_shipped_ini_loads_and_resolves_paths_against_its_folder() -> None:
    settings = load_config(ROOT / "skvo.ini")
    assert settings.get("timeseries", "backend") == "sql"
    assert settings.get("media", "path") == ROOT / "var" / "media"
    assert settings.get("general", "base_path") == ROOT / "var" / "demo"
    assert settings.metadata_url == f"sqlite:///{ROOT / 'var' / 'skvo.sqlite'}"


def test_every_declared_key_has_a_valid_default(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, ""))
    for section, keys in KEYS.items():
        for key in keys:
            settings.get(section, key)  # present and parsed


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[timeseries]\nbackend = influx\n",
         ["[timeseries]", "backend", "influx", "sql, opentsdb"]),
        ("[server]\nport = -1\n", ["[server]", "port"]),
        ("[server]\nport = http\n", ["[server]", "port"]),
        ("[media]\nbakend = files\n", ["[media]", "bakend", "backend"]),
        ("[nosuch]\nx = 1\n", ["[nosuch]"]),
        ("[vo]\nauthority = ivo://x/y\n", ["[vo]", "authority"]),
        ("[timeseries]\nurl = tsdb:4242\n", ["[timeseries]", "url"]),
        ("[server]\ntrusted_proxies = 10.0.0.1, nginx\n", ["[server]", "trusted_proxies", "nginx"]),
        ("[server]\nproxy_headers = x-real-ip\n", ["[server]", "proxy_headers", "forwarded"]),
    ],
)
def test_bad_settings_fail_naming_the_key(tmp_path: Path, text: str, names: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    for name in names:
        assert name in message
    assert str(tmp_path / "skvo.ini") in message


def test_public_url_defaults_to_host_and_port(tmp_path: Path) -> None:
    import socket

    settings = load_config(write(tmp_path, "[server]\nhost = 10.1.2.3\nport = 9000\n"))
    assert settings.public_url == "http://10.1.2.3:9000"
    for wildcard in ("0.0.0.0", "::"):  # every interface: the machine's name, never 0.0.0.0
        settings = load_config(write(tmp_path, f"[server]\nhost = {wildcard}\nport = 9000\n"))
        assert settings.public_url == f"http://{socket.gethostname()}:9000"
    settings = load_config(write(tmp_path, "[server]\nhost = ::1\nport = 9000\n"))
    assert settings.public_url == "http://[::1]:9000"
    settings = load_config(write(tmp_path, "[server]\npublic_url = https://vo.example.org/skvo/\n"))
    assert settings.public_url == "https://vo.example.org/skvo"


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.ini")


def test_cli_reports_configuration_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from voservice.cli import main

    path = write(tmp_path, "[media]\nbackend = s3\n")
    assert main(["initdb", "--config", str(path)]) == 2
    assert "[media] backend = 's3'" in capsys.readouterr().err
