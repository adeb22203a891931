"""``xanet report availability|outages|monthly``: arguments, checks, output.

Every value a person types is checked before anything is queried: times and months,
numbers in range, and province, commune, site, service and operator against the
inventory (or, without one, against what InfluxDB holds), with the closest valid values
named. The collector's modules are imported only when a report runs.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import time
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xanet.texts import LANGS

if TYPE_CHECKING:
    from collector.config import CollectorConfig
    from collector.readback import Filters
    from xanet.inventory import Inventory

SERVICES = ("fibre", "broadband", "mobile_2g", "mobile_3g", "mobile_4g")
GROUPS = ("commune", "site", "device", "service", "operator")
SORTS = ("availability", "downtime", "coverage", "code", "name")
#: Options whose value may begin with '-' (``--from -7d``): argparse would take it for an
#: option, so ``join_dash_values`` glues it on (``--from=-7d``) before parsing.
_DASH_VALUED = ("--from", "--to")


class UsageError(Exception):
    """A value on the command line that cannot be used; the message says which and why."""


def join_dash_values(argv: Sequence[str]) -> list[str]:
    """``["--from", "-7d"]`` -> ``["--from=-7d"]`` so relative times work as written."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _DASH_VALUED and i + 1 < len(argv) and argv[i + 1].startswith("-") \
                and argv[i + 1][1:2].isdigit():
            out.append(f"{arg}={argv[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def _emit(text: str) -> None:
    """Write in pieces, each flushed: a reader that went away (``| head``) is noticed as a
    BrokenPipeError here (one big write can end as a silent short write instead)."""
    for i in range(0, len(text), 16384):
        sys.stdout.write(text[i:i + 16384])
        sys.stdout.flush()


def _pct(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text} is not a percentage between 0 and 100")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _fold(text: str) -> str:
    """Case- and accent-insensitive form, for matching what people type (``lam binh``)."""
    bare = unicodedata.normalize("NFD", text.casefold()).replace("đ", "d")
    return "".join(c for c in bare if not unicodedata.combining(c))


def closest(value: str, candidates: dict[str, str], n: int = 3) -> list[str]:
    """The ``n`` candidates closest to ``value``; ``candidates`` maps match text -> shown."""
    folded = {_fold(k): v for k, v in candidates.items()}
    found = difflib.get_close_matches(_fold(value), list(folded), n=n * 2, cutoff=0.3)
    if not found and value.isdigit():  # a code: the numerically nearest ones
        codes = [k for k in folded if k.isdigit()]
        found = sorted(codes, key=lambda k: (abs(int(k) - int(value)), k))[: n * 2]
    shown: list[str] = []
    for f in found:
        if folded[f] not in shown:
            shown.append(folded[f])
    return shown[:n]


def _unknown(what: str, value: str, candidates: dict[str, str], total: int) -> UsageError:
    near = closest(value, candidates)
    hint = f"; closest: {', '.join(near)}" if near else ""
    return UsageError(f"unknown {what} {value!r}{hint} ({total} known)")


def check_filters(args: argparse.Namespace, inventory: Inventory | None,
                  cfg: CollectorConfig) -> None:
    """Refuse values the data cannot hold, naming the closest valid ones."""
    if inventory is not None:
        prov = inventory.province
        if args.province is not None and args.province != prov.code:
            raise UsageError(f"unknown province {args.province!r}: the inventory is "
                             f"province {prov.code} ({prov.name})")
        if args.commune is not None:
            codes = {c.code for c in inventory.communes}
            match = [c.code for c in inventory.communes
                     if _fold(c.name) == _fold(args.commune)
                     or _fold(c.name).split(" ", 1)[-1] == _fold(args.commune)]
            if args.commune not in codes and len(match) == 1:
                args.commune = match[0]
            elif args.commune not in codes:
                cands = {c.code: f"{c.code} ({c.name})" for c in inventory.communes}
                cands |= {c.name: f"{c.code} ({c.name})" for c in inventory.communes}
                raise _unknown("commune", args.commune, cands, len(codes))
        site = getattr(args, "site", None)
        if site is not None and not inventory.has_site(site):
            raise _unknown("site", site, {s.id: s.id for s in inventory.sites},
                           len(inventory.sites))
        if site is not None and args.commune is not None \
                and inventory.site(site).commune != args.commune:
            raise UsageError(f"site {site!r} is in commune {inventory.site(site).commune}, "
                             f"not {args.commune}")
        operator = getattr(args, "operator", None)
        operators = inventory.operators()
        if operator is not None and operator not in operators:
            raise _unknown("operator", operator, {o: o for o in operators}, len(operators))
    else:
        from collector.readback import QueryError, known_tag_values

        for key in ("province", "commune"):
            value = getattr(args, key)
            if value is None:
                continue
            try:
                known = list(known_tag_values(cfg, key))
            except QueryError:
                return  # the report itself will say what is wrong with InfluxDB
            if value not in known:
                raise _unknown(key, value, {k: k for k in known}, len(known))
        for key in ("site", "operator"):
            if getattr(args, key, None) is not None:
                raise UsageError(f"--{key} needs the inventory ([inventory] path in the "
                                 "config)")
    if args.service is not None and args.service not in SERVICES:
        raise _unknown("service", args.service, {s: s for s in SERVICES}, len(SERVICES))


def _window(args: argparse.Namespace, tz: str) -> tuple[datetime, datetime]:
    from collector.readback import month_window, parse_time

    try:
        if getattr(args, "month", None):
            if args.since is not None or args.until is not None:
                raise UsageError("give either --month or --from/--to, not both")
            return month_window(args.month, tz)
        now = datetime.now(UTC)
        start = parse_time(args.since or "-24h", now, tz)
        end = parse_time(args.until or "now", now, tz)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if end <= start:
        raise UsageError(f"--to ({end.isoformat()}) must be after --from ({start.isoformat()})")
    return start, end


def _load_context(args: argparse.Namespace) -> tuple[CollectorConfig, Inventory | None, str]:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from collector.config import CollectorConfig
    from xanet.config import load_model
    from xanet.inventory import InventoryError, load_inventory

    cfg = load_model(args.config, CollectorConfig)
    tz = args.tz or cfg.report.tz
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        import zoneinfo

        cands = {z: z for z in zoneinfo.available_timezones()}
        raise _unknown("time zone", tz, cands, len(cands)) from None
    inventory = None
    if cfg.inventory is not None:
        try:
            inventory = load_inventory(cfg.inventory.path)
        except InventoryError as exc:
            raise UsageError(str(exc)) from exc
    return cfg, inventory, tz


def _filters(args: argparse.Namespace) -> Filters:
    from collector.readback import Filters

    return Filters(args.province, args.commune, args.service, getattr(args, "site", None),
                   getattr(args, "operator", None))


def _cmd_availability(args: argparse.Namespace) -> int:
    from collector.readback import load, report_from
    from collector.reportrender import render_csv, render_json, render_table

    cfg, inventory, tz = _load_context(args)
    start, end = _window(args, tz)
    check_filters(args, inventory, cfg)
    if args.by is None:  # a site or an operator has no commune rows of its own
        args.by = "site" if args.site or args.operator else "commune"
    if args.by != "commune" and inventory is None:
        raise UsageError(f"--by {args.by} needs the inventory ([inventory] path in the config)")
    filters = _filters(args)
    data = load(cfg, inventory, start, end, filters)
    report = report_from(data, cfg, inventory, filters, group=args.by, sort=args.sort,
                         target_pct=args.target, min_coverage_pct=args.min_coverage, tz=tz)
    lang = args.lang or cfg.report.lang
    if args.format == "json":
        _emit(render_json(report, lang))
    elif args.format == "csv":
        _emit(render_csv(report, lang, part="kpis" if args.kpis else "rows"))
    else:
        _emit(render_table(report, lang))
    return 0


def _cmd_outages(args: argparse.Namespace) -> int:
    from collector import outagelist
    from collector.readback import load, outage_list

    cfg, inventory, tz = _load_context(args)
    start, end = _window(args, tz)
    check_filters(args, inventory, cfg)
    if inventory is None:
        raise UsageError("the outage list needs the inventory ([inventory] path in the config)")
    filters = _filters(args)
    data = load(cfg, inventory, start, end, filters, alerts=True)
    outages = outage_list(data, inventory, filters, min_duration_s=args.min_duration)
    lang = args.lang or cfg.report.lang
    window = (data.start, data.end)
    if args.format == "json":
        _emit(outagelist.render_json(outages, tz, window))
    elif args.format == "csv":
        _emit(outagelist.render_csv(outages, lang, tz))
    else:
        _emit(outagelist.render_table(outages, lang, tz, window))
    return 0


def _cmd_monthly(args: argparse.Namespace) -> int:
    from collector.monthly import build_monthly
    from collector.monthlyhtml import render_html
    from collector.readback import load

    cfg, inventory, tz = _load_context(args)
    if not args.month and args.since is None:
        raise UsageError("give the month (--month 2026-11) or a window (--from, --to)")
    start, end = _window(args, tz)
    check_filters(args, inventory, cfg)
    if inventory is None:
        raise UsageError("the monthly document needs the inventory ([inventory] path in the "
                         "config)")
    filters = _filters(args)
    lang = args.lang or cfg.report.lang
    data = load(cfg, inventory, start, end, filters, alerts=True)
    doc = build_monthly(data, cfg, inventory, filters, lang=lang, tz=tz,
                        target_pct=args.target, min_coverage_pct=args.min_coverage,
                        month=args.month, generated=time.time())
    html = render_html(doc)
    label = args.month or f"{start:%Y%m%d}-{end:%Y%m%d}"
    out = args.output or Path(f"xanet-{inventory.province.code}-{label}-{lang}.{args.format}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "pdf":
        from collector.pdf import html_to_pdf

        out.write_bytes(html_to_pdf(html))
    else:
        out.write_text(html, encoding="utf-8")
    print(out)
    return 0


def _common(p: argparse.ArgumentParser, *, window: bool = True) -> None:
    p.add_argument("--config", "-c", type=Path, default=Path("/etc/xanet/collector.toml"),
                   help="collector config: InfluxDB, inventory, report defaults "
                   "(default: /etc/xanet/collector.toml)")
    if window:
        p.add_argument("--from", dest="since", metavar="TIME",
                       help="start: now, -24h, -7d, 2026-11-01 (midnight in --tz), ISO 8601 "
                       "(default: -24h)")
        p.add_argument("--to", dest="until", metavar="TIME", help="end (default: now)")
    p.add_argument("--month", metavar="YYYY-MM",
                   help="a calendar month in --tz, e.g. 2026-11 (instead of --from/--to)")
    p.add_argument("--tz", metavar="ZONE",
                   help="IANA time zone of the window and of printed times (default: "
                   "[report] tz of the config, Asia/Ho_Chi_Minh)")
    p.add_argument("--province", metavar="CODE", help="province code, e.g. 08")
    p.add_argument("--commune", metavar="CODE", help="commune code (or its exact name)")
    p.add_argument("--service", metavar="SERVICE",
                   help="one of: " + ", ".join(SERVICES))
    p.add_argument("--lang", choices=LANGS, help="default: [report] lang of the config")


def _thresholds(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", type=_pct, metavar="PCT",
                   help="availability target in percent, 0-100 (default: [report] target_pct)")
    p.add_argument("--min-coverage", type=_pct, metavar="PCT",
                   help="data coverage below which a row is 'insufficient data', 0-100 "
                   "(default: [report] min_coverage_pct, 90)")


def add_parser(sub: Any) -> None:
    """Register ``xanet report ...`` on the top-level sub-parsers."""
    p = sub.add_parser("report", help="reports read back from InfluxDB",
                       description="Reports read back from InfluxDB.")
    rsub = p.add_subparsers(dest="report", required=True)
    r = rsub.add_parser(
        "availability",
        help="availability, downtime, outages and coverage per commune, site, device, "
        "service or operator; share of communes meeting the target",
        description="Availability per commune (or site, device, service, operator) and "
        "service over a window, with the province KPIs. Rows come worst first.")
    _common(r)
    r.add_argument("--site", metavar="ID", help="one site (inventory id)")
    r.add_argument("--operator", metavar="NAME", help="sites of one operator")
    r.add_argument("--by", choices=GROUPS,
                   help="one row per commune, site, device, service or operator (per "
                   "service); default: commune, or site with --site or --operator")
    r.add_argument("--sort", choices=SORTS, default="availability",
                   help="availability or coverage: worst first (default availability); "
                   "downtime: longest first; code, name: alphabetical")
    _thresholds(r)
    r.add_argument("--format", choices=["table", "csv", "json"], default="table")
    r.add_argument("--kpis", action="store_true", help="with --format csv: the KPI rows")
    r.set_defaults(func=_cmd_availability)

    o = rsub.add_parser(
        "outages", help="every outage of the window: start, end, duration, root cause, "
        "sites and services affected, alerted, maintenance",
        description="The outages operators are asked to explain, in local time.")
    _common(o)
    o.add_argument("--site", metavar="ID", help="outages affecting one site")
    o.add_argument("--operator", metavar="NAME", help="outages affecting an operator's sites")
    o.add_argument("--min-duration", type=_seconds, default=0.0, metavar="SECONDS",
                   help="leave out shorter outages (default: 0)")
    o.add_argument("--format", choices=["table", "csv", "json"], default="table")
    o.set_defaults(func=_cmd_outages)

    m = rsub.add_parser(
        "monthly", help="the monthly document a province signs (HTML or PDF)",
        description="The monthly availability document: KPIs against the declared "
        "targets, worst communes, operators, daily trend, outages.")
    _common(m)
    _thresholds(m)
    m.add_argument("--format", choices=["html", "pdf"], default="html")
    m.add_argument("--output", "-o", type=Path, metavar="FILE",
                   help="where to write it (default: xanet-PROVINCE-MONTH-LANG.FORMAT)")
    m.set_defaults(func=_cmd_monthly)


def run(args: argparse.Namespace) -> int:
    """Run a report command; a bad value is one line on stderr and exit status 2."""
    from collector.readback import QueryError

    try:
        result: int = args.func(args)
    except UsageError as exc:
        print(f"xanet report {args.report}: {exc}", file=sys.stderr)
        return 2
    except QueryError as exc:
        print(f"xanet report {args.report}: {exc}", file=sys.stderr)
        return 1
    return result

