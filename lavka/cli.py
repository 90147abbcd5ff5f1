"""The `lavka` command: demo, serve, worker, migrate, user, apikey, rules, audit."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from datetime import datetime


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lavka.settings")
    import django

    django.setup()


def cmd_migrate(args: argparse.Namespace) -> int:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1 if args.verbose else 0)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from django.db import connection

    from lavka.core.server import serve

    if connection.vendor == "sqlite":
        # The embedded store keeps its schema current by itself.
        cmd_migrate(argparse.Namespace(verbose=False))
    return serve(args.host, args.port, with_worker=not args.no_worker, threads=args.threads)


def cmd_worker(args: argparse.Namespace) -> int:
    from lavka.core.worker import Worker

    worker = Worker(name=args.name or None)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.run()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from lavka.demo import DEMO_PASSWORD, build_demo

    cmd_migrate(argparse.Namespace(verbose=False))
    summary = build_demo(seed=args.seed, customers=args.customers, orders=args.orders, out=sys.stdout)
    url = f"http://{args.host}:{args.port}/"
    print(f"\nLavka demo store: {url}")
    print(f"Logins (password for all: {DEMO_PASSWORD}):")
    for username, role in summary.logins:
        print(f"  {username:<12} {role}")
    sys.stdout.flush()
    if args.no_serve:
        return 0
    return cmd_serve(argparse.Namespace(host=args.host, port=args.port, no_worker=False, threads=8))


def cmd_user_create(args: argparse.Namespace) -> int:
    from django.core.exceptions import ValidationError

    from lavka.accounts.actions import UnknownSite, create_user
    from lavka.core.actor import Actor

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else ""
    if not password:
        print("error: give the password on standard input with --password-stdin", file=sys.stderr)
        return 2
    try:
        user = create_user(
            args.username,
            role=args.role,
            password=password,
            actor=Actor.system("cli"),
            site_codes=args.site or [],
            language=args.language,
        )
    except UnknownSite as exc:
        print(f"error: unknown site: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print("error: " + "; ".join(exc.messages), file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"created {user.role} {user.username} (id {user.pk})")
    return 0


def _words(values: list[str] | None) -> list[str]:
    """`--scope a b`, `--scope a,b` and repeated flags all give one list."""
    return [word for value in values or [] for word in value.split(",") if word]


def cmd_apikey_create(args: argparse.Namespace) -> int:
    from django.core.exceptions import ValidationError

    from lavka.accounts.actions import UnknownSite, create_api_key
    from lavka.core.actor import Actor

    if args.rate_limit is not None and args.rate_limit < 1:
        print("error: --rate-limit must be at least 1 request per second", file=sys.stderr)
        return 2
    try:
        key, raw = create_api_key(
            args.name,
            actor=Actor.system("cli"),
            scopes=_words(args.scope) or None,
            site_codes=_words(args.site) or None,
            rate_limit=args.rate_limit,
        )
    except UnknownSite as exc:
        print(f"error: unknown site: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print("error: " + "; ".join(exc.messages), file=sys.stderr)
        return 2
    sites = ", ".join(sorted(key.site_codes)) if key.site_codes is not None else "all sites"
    print(
        f"created API key {key.pk} {key.name!r} ({sites}; {len(key.scopes)} scopes). "
        "It is shown only now; Lavka keeps only its hash:",
        file=sys.stderr,
    )
    # Alone on stdout, so that `KEY=$(lavka apikey create …)` works.
    print(raw)
    return 0


def cmd_apikey_list(args: argparse.Namespace) -> int:
    from lavka.accounts.models import ApiKey
    from lavka.accounts.scopes import API_SCOPES

    def when(value: datetime | None) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value else "-"

    row = "{:>5}  {:<24} {:<8} {:<16} {:<6} {:>5}  {:<16} {}"
    print(row.format("ID", "NAME", "PREFIX", "SITES", "SCOPES", "RPS", "LAST USED", "STATUS"))
    for key in ApiKey.objects.prefetch_related("sites").order_by("id"):
        sites = ",".join(sorted(key.site_codes)) if key.site_codes is not None else "all"
        scopes = "all" if set(key.scopes) >= set(API_SCOPES) else str(len(key.scopes))
        status = f"revoked {when(key.revoked_at)}" if key.revoked_at else "active"
        rps = key.rate_limit or "-"
        print(
            row.format(
                key.pk, key.name[:24], key.prefix, sites[:16], scopes, rps, when(key.last_used_at), status
            )
        )
    return 0


def cmd_apikey_revoke(args: argparse.Namespace) -> int:
    from lavka.accounts.actions import revoke_api_key
    from lavka.accounts.models import ApiKey
    from lavka.core.actor import Actor

    key = ApiKey.objects.filter(pk=args.id).first()
    if key is None:
        print(f"error: no API key with id {args.id}", file=sys.stderr)
        return 2
    revoke_api_key(key, actor=Actor.system("cli"))
    print(f"revoked API key {key.pk} {key.name!r}")
    return 0


def cmd_rules_export(args: argparse.Namespace) -> int:
    import json

    from lavka.automation.actions import export_rules
    from lavka.automation.models import Rule

    text = json.dumps(
        export_rules(list(Rule.objects.prefetch_related("actions"))), ensure_ascii=False, indent=2
    )
    if args.file in (None, "-"):
        print(text)
    else:
        with open(args.file, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    return 0


def cmd_rules_import(args: argparse.Namespace) -> int:
    import json

    from django.core.exceptions import ValidationError

    from lavka.automation.actions import import_rules
    from lavka.core.actor import Actor

    try:
        with open(args.file, encoding="utf-8") if args.file != "-" else sys.stdin as source:
            document = json.load(source)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        rules = import_rules(document, actor=Actor.system("cli"))
    except ValidationError as exc:
        for field, errors in (exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}).items():
            for error in errors:
                print(f"error: {field}: {error}" if field else f"error: {error}", file=sys.stderr)
        return 2
    print(f"imported {len(rules)} rules")
    return 0


def cmd_rules_defaults(args: argparse.Namespace) -> int:
    from lavka.automation.defaults import install_default_rules
    from lavka.core.actor import Actor

    rules = install_default_rules(actor=Actor.system("cli"), enable=args.enable)
    print(f"{len(rules)} default rules in place{' and enabled' if args.enable else ' (disabled)'}")
    return 0


def cmd_import_orders(args: argparse.Namespace) -> int:
    from lavka.core.models import Site
    from lavka.orders.csv_import import FileError, import_orders_csv, print_report

    sites = Site.objects.filter(code=args.site) if args.site else Site.objects.all()
    if len(found := list(sites[:2])) != 1:
        known = ", ".join(Site.objects.values_list("code", flat=True)) or "none"
        problem = f"unknown site {args.site!r}" if args.site else "several sites: choose one with --site"
        print(f"error: {problem} (sites: {known})", file=sys.stderr)
        return 2
    try:
        report = import_orders_csv(found[0], args.file, encoding=args.encoding, progress=sys.stderr)
    except FileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_report(report, limit=args.show_errors)
    if report.imported:
        from lavka.analytics import facts

        facts.sync()  # the import writes no events: give its orders their KPI facts now
        print(f"customer metrics: run `lavka analytics refresh --site {found[0].code}` to include them")
    return 1 if report.errors else 0


def _analytics_sites(code: str | None) -> list | None:
    from lavka.core.models import Site

    if code:
        sites = list(Site.objects.filter(code=code))
        if not sites:
            known = ", ".join(Site.objects.values_list("code", flat=True)) or "none"
            print(f"error: unknown site {code!r} (sites: {known})", file=sys.stderr)
            return None
        return sites
    return list(Site.objects.filter(is_active=True).order_by("code"))


def _progress_bar(site: str):
    """A progress callback drawing `[####----] step` on stderr (one line per step when not a terminal)."""
    tty = sys.stderr.isatty()

    def show(step: str, done: int, total: int) -> None:
        width = 24
        filled = width * done // max(total, 1)
        line = f"{site}: [{'#' * filled}{'-' * (width - filled)}] {done}/{total} {step}"
        if tty:
            print(f"\r{line:<72}", end="" if done < total else "\n", file=sys.stderr, flush=True)
        elif done:
            print(line, file=sys.stderr, flush=True)

    return show


def cmd_analytics_refresh(args: argparse.Namespace) -> int:
    from lavka.analytics.metrics import refresh_site

    sites = _analytics_sites(args.site)
    if sites is None:
        return 2
    for site in sites:
        report = refresh_site(site, progress=_progress_bar(site.code))
        fit = report.fit
        model = "models fitted" if fit and fit.sufficient else f"no model scores ({fit and fit.reason})"
        print(f"{site.code}: {report.customers} customers, {report.buyers} with orders; {model}")
        for step, seconds in report.steps.items():
            print(f"  {step:<12} {seconds:8.2f} s")
        print(f"  {'total':<12} {report.seconds:8.2f} s")
    return 0


def cmd_analytics_rebuild_facts(args: argparse.Namespace) -> int:
    from lavka.analytics.facts import rebuild

    report = rebuild()
    steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in report.seconds.items())
    print(f"order facts: {report.facts} orders, {report.cells} cells ({steps})")
    return 0


def cmd_analytics_export_customers(args: argparse.Namespace) -> int:
    import csv

    from lavka.analytics.metrics import export_rows

    sites = _analytics_sites(args.site)
    if sites is None:
        return 2
    rows = export_rows([site.pk for site in sites] if args.site else None)
    if args.output in (None, "-"):
        csv.writer(sys.stdout).writerows(rows)
        return 0
    with open(args.output, "w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows(rows)
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from lavka.core.history import verify_chain

    checked, problem = verify_chain()
    if problem:
        print(f"FAILED after {checked} good records: {problem}", file=sys.stderr)
        return 1
    print(f"ok: {checked} history records, chain intact")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lavka", description="Lavka: CRM and order desk for online stores")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="create a demo store and serve it")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--customers", type=int, default=2000)
    demo.add_argument("--orders", type=int, default=10000)
    demo.add_argument("--no-serve", action="store_true")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="run the web server (and a worker, unless --no-worker)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument("--no-worker", action="store_true")
    serve.add_argument("--threads", type=int, default=8)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a background worker")
    worker.add_argument("--name", default="")
    worker.set_defaults(func=cmd_worker)

    migrate = sub.add_parser("migrate", help="create or update the database schema")
    migrate.add_argument("--verbose", action="store_true")
    migrate.set_defaults(func=cmd_migrate)

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="user_command", required=True)
    create = user.add_parser("create", help="create a user")
    create.add_argument("--username", required=True)
    create.add_argument("--role", required=True, choices=["admin", "supervisor", "manager", "operator"])
    create.add_argument("--site", action="extend", nargs="+", help="site codes")
    create.add_argument("--language", default="ru", choices=["ru", "en"])
    create.add_argument("--password-stdin", action="store_true")
    create.set_defaults(func=cmd_user_create)

    apikey = sub.add_parser("apikey", help="manage API v5 keys")
    apikey_commands = apikey.add_subparsers(dest="apikey_command", required=True)
    key_create = apikey_commands.add_parser(
        "create", help="create a key and print it (once: only its hash is stored)"
    )
    key_create.add_argument("name")
    key_create.add_argument(
        "--site",
        action="extend",
        nargs="+",
        metavar="CODE",
        help="site codes the key may use (default: all sites)",
    )
    key_create.add_argument(
        "--scope",
        action="extend",
        nargs="+",
        metavar="SCOPE",
        help="scopes, e.g. order_read order_write (default: all scopes)",
    )
    key_create.add_argument(
        "--rate-limit", type=int, metavar="N", help="requests per second (default: the installation's limit)"
    )
    key_create.set_defaults(func=cmd_apikey_create)
    key_list = apikey_commands.add_parser("list", help="list the keys")
    key_list.set_defaults(func=cmd_apikey_list)
    key_revoke = apikey_commands.add_parser("revoke", help="revoke a key")
    key_revoke.add_argument("id", type=int)
    key_revoke.set_defaults(func=cmd_apikey_revoke)

    rules = sub.add_parser("rules", help="automation rules as JSON files")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True)
    rules_export = rules_commands.add_parser("export", help="write every rule as JSON (to FILE or stdout)")
    rules_export.add_argument("file", nargs="?")
    rules_export.set_defaults(func=cmd_rules_export)
    rules_import = rules_commands.add_parser(
        "import", help="create or update rules (by name) from a JSON file"
    )
    rules_import.add_argument("file", help="the file, or - for stdin")
    rules_import.set_defaults(func=cmd_rules_import)
    rules_defaults = rules_commands.add_parser("defaults", help="add the default rules a shop starts with")
    rules_defaults.add_argument("--enable", action="store_true", help="switch them on as well")
    rules_defaults.set_defaults(func=cmd_rules_defaults)

    imports = sub.add_parser("import", help="load past data from files (automation stays muted)")
    import_commands = imports.add_subparsers(dest="import_command", required=True)
    import_orders = import_commands.add_parser(
        "orders", help="orders from a CSV file: customer_id, order_id, date, amount[, items …]"
    )
    import_orders.add_argument("file", help="the CSV file (columns: see docs/operations.md)")
    import_orders.add_argument("--site", metavar="CODE", help="the site (needed when there are several)")
    import_orders.add_argument("--encoding", default="utf-8-sig", help="the file's encoding, e.g. cp1251")
    import_orders.add_argument("--show-errors", type=int, default=50, metavar="N", help="errors to list")
    import_orders.set_defaults(func=cmd_import_orders)

    analytics = sub.add_parser("analytics", help="customer metrics, RFM, lifecycle and model scores")
    analytics_commands = analytics.add_subparsers(dest="analytics_command", required=True)
    refresh = analytics_commands.add_parser(
        "refresh", help="recompute every customer's metrics, RFM, lifecycle, model fits and scores"
    )
    refresh.add_argument("--site", metavar="CODE", help="one site (default: every active site)")
    refresh.set_defaults(func=cmd_analytics_refresh)
    rebuild_facts = analytics_commands.add_parser(
        "rebuild-facts",
        help="recompute the order facts the shop KPIs read, for every site (after a change of status groups)",
    )
    rebuild_facts.set_defaults(func=cmd_analytics_rebuild_facts)
    export_customers = analytics_commands.add_parser(
        "export-customers", help="per-customer metrics and scores as CSV (streamed)"
    )
    export_customers.add_argument("--format", choices=["csv"], default="csv")
    export_customers.add_argument("--site", metavar="CODE", help="one site (default: all)")
    export_customers.add_argument("--output", metavar="FILE", help="write to FILE (default: stdout)")
    export_customers.set_defaults(func=cmd_analytics_export_customers)

    audit = sub.add_parser("audit", help="check the history")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser("verify", help="verify the history hash chain")
    verify.set_defaults(func=cmd_audit_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup()
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
