"""Accounts, grants and authentication (`skvo user ...`)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import sqlalchemy as sa

from voservice import users
from voservice.access import ANONYMOUS, authenticate, check_password, hash_password
from voservice.cli import main
from voservice.stores.metadata import initdb, make_engine


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    eng = make_engine(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    initdb(eng)
    return eng


def basic(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


def test_password_hashes_are_salted_and_verify() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second and "s3cret" not in first
    assert check_password("s3cret", first) and check_password("s3cret", second)
    assert not check_password("S3cret", first)
    assert not check_password("s3cret", "garbage")


def test_basic_and_bearer_authentication(engine: sa.Engine) -> None:
    users.add_user(engine, "alice", password="wonderland")
    users.grant(engine, "alice", "upjs")
    users.grant(engine, "alice", "upjs")  # granting twice is harmless
    users.set_token(engine, "alice", "tok-123")
    who = authenticate(engine, basic("alice", "wonderland"))
    assert who is not None and who.name == "alice" and who.sources == {"upjs"}
    assert authenticate(engine, "Bearer tok-123") == who
    assert authenticate(engine, basic("alice", "wrong")) is None
    assert authenticate(engine, basic("nobody", "x")) is None
    assert authenticate(engine, "Bearer nope") is None
    assert authenticate(engine, "Basic !!!notbase64") is None
    assert authenticate(engine, "Digest abc") is None
    assert authenticate(engine, None) is ANONYMOUS
    users.revoke(engine, "alice", "upjs")
    assert authenticate(engine, "Bearer tok-123").sources == frozenset()


def test_duplicate_and_unknown_users_are_clear_errors(engine: sa.Engine) -> None:
    users.add_user(engine, "bob")
    with pytest.raises(users.UserError, match="exists already"):
        users.add_user(engine, "bob")
    with pytest.raises(users.UserError, match="no user named 'carol'"):
        users.grant(engine, "carol", "upjs")


def test_user_commands(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ini = tmp_path / "skvo.ini"
    ini.write_text("[metadata]\nurl = sqlite:///meta.sqlite\n")
    cfg = ["--config", str(ini)]
    assert main(["user", "add", "alice", "--password", "pw", *cfg]) == 0
    assert main(["user", "grant", "alice", "vhao", "upjs", "skalnate", *cfg]) == 0
    assert main(["user", "revoke", "alice", "upjs", "skalnate", *cfg]) == 0
    assert main(["user", "token", "alice", *cfg]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["user", "list", *cfg]) == 0
    assert "alice\ttoken\tvhao" in capsys.readouterr().out
    engine = make_engine(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    assert authenticate(engine, f"Bearer {token}").sources == {"vhao"}
    with pytest.raises(SystemExit):  # a source where none belongs
        main(["user", "passwd", "alice", "vhao", *cfg])
    assert main(["user", "add", "alice", *cfg]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["user", "remove", "alice", *cfg]) == 0
    assert authenticate(engine, f"Bearer {token}") is None
