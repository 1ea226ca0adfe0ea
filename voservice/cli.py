"""The ``skvo`` command: initdb, upgrade, ingest, serve, demo, demo-data, user, target."""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from voservice.config import ConfigError, Settings, load_config
from voservice.stores.metadata import SchemaMismatch
from voservice.stores.timeseries.base import StoreError
from voservice.users import UserError

if TYPE_CHECKING:
    from voservice.resolver import TargetMatch


def _settings(args: argparse.Namespace) -> Settings:
    return load_config(args.config)


def cmd_initdb(args: argparse.Namespace) -> int:
    """Create the metadata schema and TAP_SCHEMA (and the stores' schemas); upgrade an
    existing archive of an older schema."""
    from voservice import migrations
    from voservice.stores.metadata import initdb, make_engine

    settings = _settings(args)
    engine = make_engine(settings.metadata_url)  # the writer: never the query account
    before = migrations.state(engine)
    if before == "empty" and args.command == "upgrade":
        raise migrations.SchemaBehind(
            f"{engine.url.render_as_string(hide_password=True)} holds no SKVO archive to "
            "upgrade: run `skvo initdb` to create one")
    with engine.connect() as conn:
        revision = migrations.current(conn)
    initdb(engine, upgrade=True)
    _init_stores(settings, engine)
    _run_upgrade_tasks(settings, engine)
    if before in ("behind", "unfinished"):
        print(f"upgraded from schema revision {revision or migrations.BASELINE + ' (unversioned)'}"
              f" to {migrations.head()}")
    from voservice import resolver

    resolver.prepare(engine)
    added = resolver.backfill_aliases(engine)  # targets loaded before aliases existed
    if added:
        print(f"{added} target aliases added")
    print(f"initialised {engine.url.render_as_string(hide_password=True)}")
    return 0


def _run_upgrade_tasks(settings: Settings, engine: sa.Engine) -> None:
    """Fill in the derived data the applied revisions asked for (voservice.migrations.tasks)."""
    from voservice.migrations import tasks
    from voservice.stores import open_data_stores

    if not tasks.pending(engine):
        return
    timeseries, media = open_data_stores(settings, engine)
    try:
        tasks.run_pending(engine, timeseries, stream=sys.stdout)
    finally:
        timeseries.close()
        media.close()


def _init_stores(settings: Settings, engine: sa.Engine) -> None:
    from voservice.stores import open_data_stores

    for store in open_data_stores(settings, engine):
        store.create_schema()
        store.close()


def cmd_ingest(args: argparse.Namespace) -> int:
    """Validate and load an upload tree."""
    from voservice.ingest import run_ingest

    settings = _settings(args)
    path = Path(args.path) if args.path else None
    return run_ingest(settings, path, dry_run=args.dry_run, replace=args.replace,
                      stream=sys.stderr)


def cmd_demo_data(args: argparse.Namespace) -> int:
    """Write the sample upload tree."""
    from voservice.demo import write_demo_tree

    summary = write_demo_tree(Path(args.path), seed=args.seed)
    print(summary)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Sample data, database and service in one step (the quick start)."""
    from voservice.demo import write_demo_tree
    from voservice.ingest import run_ingest

    settings = _settings(args)
    base = Path(settings.get("general", "base_path"))
    if not base.is_dir() or not any(base.iterdir()):
        print(write_demo_tree(base), file=sys.stderr)
    cmd_initdb(args)
    status = run_ingest(settings, base, dry_run=False, replace=False, stream=sys.stderr)
    if status != 0:
        return status
    return cmd_serve(args)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the service (pre-forked waitress; Flask's development server with --dev)."""
    from voservice.server import serve

    settings = _settings(args)
    overrides: dict[str, dict[str, str]] = {"server": {}}
    if args.host:
        overrides["server"]["host"] = args.host
    if args.port:
        overrides["server"]["port"] = str(args.port)
    if args.workers:
        overrides["server"]["workers"] = str(args.workers)
    if args.threads:
        overrides["server"]["threads"] = str(args.threads)
    settings = settings.with_overrides(overrides)
    return serve(settings, dev=args.dev)


def cmd_user(args: argparse.Namespace) -> int:
    """Manage accounts and grants."""
    from voservice import users
    from voservice.stores.metadata import initdb, make_engine

    settings = _settings(args)
    engine = make_engine(settings.metadata_url)
    initdb(engine)
    action = args.action
    if action == "add":
        password = args.password
        users.add_user(engine, args.name, password=password, admin=args.admin)
        print(f"user {args.name} added")
    elif action == "remove":
        users.remove_user(engine, args.name)
        print(f"user {args.name} removed")
    elif action == "grant":
        for source in args.sources:  # the account exists or the first one fails
            users.grant(engine, args.name, source)
            print(f"user {args.name} may now access source {source}")
    elif action == "revoke":
        for source in args.sources:
            users.revoke(engine, args.name, source)
            print(f"user {args.name} no longer has source {source}")
    elif action == "passwd":
        users.set_password(engine, args.name, args.password or _ask_password(args.name))
        print(f"user {args.name} has a new password")
    elif action == "token":
        token = secrets.token_urlsafe(32)
        users.set_token(engine, args.name, token)
        print(token)
    elif action == "list":
        for line in users.describe(engine):
            print(line)
    return 0


def cmd_target(args: argparse.Namespace) -> int:
    """Show, add or remove the aliases of a target (names name look-ups find it by)."""
    from voservice import resolver
    from voservice.access import Principal
    from voservice.stores.metadata import initdb, make_engine

    engine = make_engine(_settings(args).metadata_url)
    initdb(engine)
    operator = Principal(name="operator", admin=True)
    with engine.connect() as conn:
        found = resolver.find_by_names(conn, operator, [args.target])
    if not found:
        raise UserError(f"no target is named {args.target!r} (try its name in skvo.target)")
    if len(found) > 1:
        raise UserError(f"{args.target!r} names {len(found)} targets: "
                        + ", ".join(f"{m.target} ({m.catalogue} {m.catalogue_value})"
                                    for m in found))
    match = found[0]
    if args.action in EPHEMERIS_ACTIONS:
        return _target_ephemeris(engine, args, match)
    if args.action in ("alias", "unalias") and not args.alias:
        raise UserError(f"target {args.action} needs the alias")
    with engine.begin() as conn:
        if args.action == "alias":
            if resolver.add_aliases(conn, match.target_id, [(args.alias, "operator")]):
                print(f"{match.target} now has the alias {args.alias}")
            else:
                print(f"{match.target} already has an alias {args.alias} (or one written "
                      "the same way)")
        elif args.action == "unalias":
            if not resolver.remove_alias(conn, match.target_id, args.alias):
                raise UserError(f"{match.target} has no operator's alias {args.alias!r}")
            print(f"{match.target} no longer has the alias {args.alias}")
        for alias, origin in resolver.aliases_of(conn, [match.target_id])[match.target_id]:
            if args.action == "aliases":
                print(f"{alias}\t{origin}")
    return 0


#: `skvo target` actions on ephemerides (voservice.ephemeris)
EPHEMERIS_ACTIONS = ("ephemerides", "ephemeris", "unephemeris", "default-ephemeris")


def _target_ephemeris(engine: sa.Engine, args: argparse.Namespace,
                      match: TargetMatch) -> int:
    """``skvo target ephemerides|ephemeris|unephemeris|default-ephemeris``."""
    from voservice import ephemeris as eph

    target_id, name = match.target_id, match.target
    given = {"period": args.period, "epoch": args.epoch, "timescale": args.timescale,
             "refpos": args.refpos, "var_type": args.var_type, "reference": args.ref}
    if args.action != "ephemeris":
        stray = [eph.CLI_PARAMETERS[k] for k, v in given.items() if v is not None]
        if args.make_default and args.action != "default-ephemeris":
            stray.append("--default")
        if stray:
            raise UserError(f"target {args.action} takes no {', '.join(stray)}")
    ident = None
    if args.action in ("unephemeris", "default-ephemeris"):
        if not args.alias:
            raise UserError(f"target {args.action} needs the ephemeris id "
                            "(the first column of `skvo target ephemerides`)")
        try:
            ident = int(args.alias)
        except ValueError:
            raise UserError(f"ephemeris id: {args.alias!r} is not a number (the first column "
                            "of `skvo target ephemerides`)") from None
    elif args.alias:
        raise UserError(f"target {args.action} takes no {args.alias!r} (options start with --)")
    with engine.begin() as conn:
        if args.action == "ephemeris":
            spec, problems = eph.parse_ephemeris(given, eph.CLI_PARAMETERS)
            if spec is None:
                problems = problems or [("--period", "required"), ("--epoch", "required")]
                raise UserError("; ".join(f"{p}: {m}" for p, m in problems))
            record, added = eph.add_ephemeris(conn, target_id, spec, "operator",
                                              make_default=args.make_default)
            if added:
                print(f"{name} now has the ephemeris {record.ephemeris_id}"
                      f"{' (its default)' if record.is_default else ''}")
            else:
                print(f"{name} already has this ephemeris ({record.ephemeris_id}"
                      f"{', its default' if record.is_default else ''})")
        elif args.action == "unephemeris":
            gone, promoted = eph.remove_ephemeris(conn, target_id, ident)
            if gone is None:
                raise UserError(f"{name} has no ephemeris {ident}")
            print(f"{name} no longer has the ephemeris {ident}"
                  + (f"; its default is now {promoted.ephemeris_id}" if promoted else ""))
        elif args.action == "default-ephemeris":
            if not eph.set_default(conn, target_id, ident):
                raise UserError(f"{name} has no ephemeris {ident}")
            print(f"the default ephemeris of {name} is now {ident}")
        for record in eph.ephemerides(conn, target_id):
            if args.action == "ephemerides":
                print(eph.describe(record))
    return 0


def _ask_password(name: str) -> str:
    """Read a new password twice from the terminal (one line of stdin otherwise)."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass(f"new password for {name}: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the two passwords differ")
    return first


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``skvo``."""
    parser = argparse.ArgumentParser(prog="skvo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: object, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", help="path of skvo.ini (default: $SKVO_CONFIG or ./skvo.ini)")
        p.set_defaults(func=func)
        return p

    add("initdb", cmd_initdb, "create the database schema and TAP_SCHEMA (an existing "
        "archive of an older schema is upgraded)")
    add("upgrade", cmd_initdb, "bring an existing archive to this SKVO's schema, data kept "
        "(schema migrations, then the derived data they need)")
    p = add("ingest", cmd_ingest, "validate and load an upload tree")
    p.add_argument("path", nargs="?", help="tree to load (default: [general] base_path)")
    p.add_argument("--dry-run", action="store_true", help="validate only, write nothing")
    p.add_argument("--replace", action="store_true",
                   help="reload series whose files changed (the old series is deleted first)")
    p = add("demo-data", cmd_demo_data, "write the sample upload tree to PATH")
    p.add_argument("path")
    p.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    for name, func, text in (
        ("serve", cmd_serve, "run the web service"),
        ("demo", cmd_demo, "write the sample tree to base_path if empty, load it and serve"),
    ):
        p = add(name, func, text)
        p.add_argument("--host")
        p.add_argument("--port", type=int)
        p.add_argument("--workers", type=int)
        p.add_argument("--threads", type=int, help="request threads per worker")
        p.add_argument("--dev", action="store_true",
                       help="Flask's development server (debugging)")
    p = add("user", cmd_user, "manage user accounts and access grants")
    p.add_argument("action",
                   choices=["add", "remove", "grant", "revoke", "passwd", "token", "list"])
    p.add_argument("name", nargs="?")
    p.add_argument("sources", nargs="*", metavar="source",
                   help="sources (collections) for grant/revoke, one or more")
    p.add_argument("--password", help="password for add and passwd (HTTP Basic; passwd "
                   "asks for it when absent)")
    p.add_argument("--admin", action="store_true", help="the user sees all data")
    p = add("target", cmd_target, "list (aliases), add (alias) or remove (unalias) the "
            "other names of a target; list (ephemerides), add (ephemeris), remove "
            "(unephemeris) its ephemerides or pick the default one (default-ephemeris)")
    p.add_argument("action", choices=["aliases", "alias", "unalias", *EPHEMERIS_ACTIONS])
    p.add_argument("target", help="a name of the target (any alias, e.g. bet_Lyr)")
    p.add_argument("alias", nargs="?", metavar="ALIAS|ID",
                   help="the alias to add or remove, or the ephemeris id (unephemeris, "
                   "default-ephemeris)")
    p.add_argument("--period", help="ephemeris: period, days")
    p.add_argument("--epoch", help="ephemeris: epoch of zero phase, a Julian Date "
                   "(2458100.81, also HJD/BJD 2458100.81) or MJD 58100.31")
    p.add_argument("--timescale", help="ephemeris: time scale of the epoch, UTC (default), "
                   "TT, TDB, TAI, TCB, TCG")
    p.add_argument("--refpos", help="ephemeris: where the epoch refers to: heliocenter "
                   "(default), barycenter, geocenter, topocenter")
    p.add_argument("--type", dest="var_type", help="ephemeris: variability type, e.g. EA")
    p.add_argument("--ref", help="ephemeris: where it comes from (bibcode or text)")
    p.add_argument("--default", dest="make_default", action="store_true",
                   help="ephemeris: make it the target's default")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skvo`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "user":
        if args.action != "list" and not args.name:
            parser.error(f"user {args.action} needs a user name")
        if args.action in ("grant", "revoke") and not args.sources:
            parser.error(f"user {args.action} needs a source")
        if args.action not in ("grant", "revoke") and args.sources:
            parser.error(f"user {args.action} takes no source")
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"skvo: configuration error: {exc}", file=sys.stderr)
        return 2
    except (UserError, SchemaMismatch, StoreError) as exc:
        print(f"skvo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
