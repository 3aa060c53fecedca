"""`lakeshift connections list | test | info`: thin over connections.registry.

Output is plain aligned text (no table wrapping) so it greps well and never
hides a long host name. Nothing here prints a password or a key: secrets show
as set / not set, and every line passes through `redact` (a value such as
endpoint_url: http://user:password@host shows as http://user:***@host)."""

from __future__ import annotations

from typing import Any

import click

from lakeshift.cli.jsonout import emit
from lakeshift.connections import registry
from lakeshift.redact import redact as _redact
from lakeshift.errors import ConnectionFailed, LakeshiftError

_HEADINGS = {"sources": "Sources (MySQL/MariaDB)", "targets": "Targets", "storage": "Storage (lakes)"}
_KIND = click.Choice(sorted(registry.KIND_CHOICES))


def redact(line: str) -> str:
    return _redact(line, assignments=False)  # keep 'password: set'; mask URLs with a password and known secrets


@click.group()
def connections() -> None:
    """Connection management: list, test and describe the connections in connections.yml."""


@connections.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout (see docs/json.md).")
@click.pass_obj
def list_connections(app, as_json: bool) -> None:
    """List sources, targets and storage with where they point; marks the ones whose variables are unset.
    The built-in v1.0 `default` connections show only when the v1.0 variables (MYSQL_HOST, ...) are set."""
    cfg = app.config
    shown = registry.all_connections(cfg)
    if as_json:
        emit("connections", {"connections": [_as_dict(c) for c in shown]})
        return
    for kind in registry.KINDS:
        conns = [c for c in shown if c.kind == kind]
        click.echo(f"{_HEADINGS[kind]}:")
        if not conns:
            click.echo("  (none)")
        name_w = max((len(c.name) for c in conns), default=0)
        type_w = max((len(c.type) for c in conns), default=0)
        for c in conns:
            extra = registry.markers(c)
            if not c.usable:
                extra.append(f"not usable: needs {registry.needs(c)}")
            tail = f"  [{'; '.join(extra)}]" if extra else ""
            click.echo(redact(f"  {c.name:<{name_w}}  {c.type:<{type_w}}  {registry.where(c)}{tail}"))
            description = getattr(c.model, "description", None)
            if description:
                click.echo(redact(f"  {'':<{name_w}}  {description}"))
        click.echo("")


def _as_dict(c: Any) -> dict[str, Any]:
    return {"kind": registry.SINGULAR[c.kind], "name": c.name, "type": c.type, "where": redact(registry.where(c)),
            "usable": c.usable, "needs": sorted(set(c.unresolved.values())), "markers": registry.markers(c),
            "origin": c.origin, "description": getattr(c.model, "description", None)}


@connections.command("test")
@click.argument("name", required=False)
@click.option("--all", "test_all", is_flag=True, help="Test every connection; exit 1 if any fails.")
@click.option("--kind", type=_KIND, help="Only the source, target or storage of that name (e.g. for 'default').")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout (see docs/json.md).")
@click.pass_obj
def test_connection(app, name: str | None, test_all: bool, kind: str | None, as_json: bool) -> None:
    """Connect for real (SELECT 1, open the DuckDB file, list the bucket or check the lake folder).

    Prints 'OK (N ms)' per connection; exits 1 with one line saying why when one fails.
    A NAME used by more than one kind (like 'default') tests each of them. With --all,
    connections whose variables are unset are listed as skipped, not failed."""
    if test_all == bool(name):
        raise click.UsageError("give a connection NAME or --all (not both)")
    cfg = app.config
    if test_all:
        conns = [c for c in registry.all_connections(cfg) if not kind or c.kind == registry.KIND_CHOICES[kind]]
    else:
        conns = registry.find(cfg, name, kind)
    if len(conns) == 1 and not test_all and not as_json:
        click.echo(redact(registry.check(cfg, conns[0]).line))
        return
    results = [registry.try_check(cfg, c, skip_unusable=test_all) for c in conns]
    failed = [r for r in results if not r.ok and not r.skipped]
    if as_json:
        emit("connections_test", {"ok": not failed, "results": [
            {"kind": registry.SINGULAR[r.conn.kind], "name": r.conn.name, "type": r.conn.type,
             "status": "ok" if r.ok else "skipped" if r.skipped else "failed",
             "ms": r.ms if r.ok else None, "detail": redact(r.detail)} for r in results]})
    else:
        for r in results:
            click.echo(redact(r.line if r.ok or r.skipped else f"{registry.label(r.conn)}: FAILED: {r.detail}"))
    if failed:
        raise _failure(failed, len(results))
    if not as_json:
        skipped = sum(r.skipped for r in results)
        click.echo(f"{len(results) - skipped} OK" + (f", {skipped} skipped (variables not set)" if skipped else ""))


def _failure(failed: list[registry.Probe], total: int) -> LakeshiftError:
    first = failed[0]
    rest = f" (and {len(failed) - 1} more, see above)" if len(failed) > 1 else ""
    return ConnectionFailed(f"{len(failed)} of {total} connection(s) failed; first: {first.line}{rest}")


@connections.command("info")
@click.argument("name")
@click.option("--kind", type=_KIND, help="Only the source, target or storage of that name (e.g. for 'default').")
@click.pass_obj
def info(app, name: str, kind: str | None) -> None:
    """Show a connection's settings: type, host, database, schema, SSH, TLS, pool; secrets only as set/not set."""
    cfg = app.config
    for i, conn in enumerate(registry.find(cfg, name, kind)):
        if i:
            click.echo("")
        rows = registry.info(cfg, conn)
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            click.echo(redact(f"{key + ':':<{width + 1}} {value}"))


commands = [connections]
