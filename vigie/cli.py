"""``vigie``: one entry point for every command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.settings import Settings, load_settings


def _cmd_worker(s: Settings, a: argparse.Namespace) -> int:
    from vigie.allocator import reexec_worker

    reexec_worker(s.worker_allocator)  # before the heavy imports: once on jemalloc, this returns
    from vigie.worker import run_worker

    return run_worker(s, loglevel=a.loglevel)


def _cmd_migrate(s: Settings, a: argparse.Namespace) -> int:
    from sinks.access import ensure_reader, ensure_writer
    from sinks.clickhouse import make_client, run_migrations
    from sinks.retention import ensure_ttls
    from streams import registry

    applied = run_migrations(s)
    print(f"database {s.clickhouse_database}: " + (f"applied {', '.join(applied)}" if applied else "up to date"))
    migrator = s.as_migrator()
    client = make_client(migrator)
    try:
        print(ensure_writer(client.execute, s.clickhouse_database, s.clickhouse_user,
                            s.clickhouse_password.get_secret_value(), migrator.clickhouse_user))
        print(ensure_reader(client.execute, s.clickhouse_database, s.clickhouse_reader_user,
                            s.clickhouse_reader_password.get_secret_value(), registry.readable_tables(s)))
        print(ensure_ttls(client.execute, s.clickhouse_database, s.retention_personal_days, s.retention_payload_days))
    finally:
        client.disconnect()
    return 0


def _cmd_purge(s: Settings, a: argparse.Namespace) -> int:
    from sinks.clickhouse import make_client
    from sinks.retention import purge

    if not (s.retention_personal_days or s.retention_payload_days):
        print("nothing to purge: VIGIE_RETENTION_PERSONAL_DAYS and VIGIE_RETENTION_PAYLOAD_DAYS are 0 (keep for ever)")
        return 0
    client = make_client(s.as_migrator(), s.clickhouse_database)  # mutations: the migrator's right, not the writer's
    try:
        done = purge(client.execute, s.clickhouse_database, s.retention_personal_days, s.retention_payload_days,
                     dry_run=a.dry_run)
    finally:
        client.disconnect()
    verb = "would purge" if a.dry_run else "purging (ClickHouse applies it in the background)"
    for p, n in done:
        print(f"{s.clickhouse_database}.{p.table}: {verb} {n:,} rows ({p.what})")
    return 0


def _cmd_topics(s: Settings, a: argparse.Namespace) -> int:
    from streams.topics import ensure_topics

    for name, n in ensure_topics(s).items():
        print(f"{name}: {n} partitions")
    return 0


def _cmd_simulate(s: Settings, a: argparse.Namespace) -> int:
    from devtools.produce import publish
    from devtools.simulator import Simulator, with_processors
    from schemas.reference import Reference

    start = datetime.fromisoformat(a.start) if a.start else None
    if start is not None and start.tzinfo is None:
        raise SystemExit("--start needs a time zone, e.g. 2026-01-01T00:00:00+00:00")
    if a.demand_history:
        return _demand_history(s, a, start or datetime.now(UTC).replace(microsecond=0))
    origin = None
    if a.backfill_hours:
        if start is not None:
            raise SystemExit("--backfill-hours starts the simulation that many hours ago: do not give --start")
        now = datetime.now(UTC).replace(microsecond=0)
        start, origin = now - timedelta(hours=a.backfill_hours), now.timestamp()
    sim = Simulator(Reference.load(s.reference_dir), seed=a.seed, start=start, crews=not a.no_crews,
                    staffing_ratio=a.staffing_ratio, shift_hour=a.shift_hour,
                    major_incidents_per_day=a.major_incidents_per_day)
    out = Path(a.output).open("w") if a.output else None
    try:
        # paced from the simulation's start: what comes before it (a processor's backfill) goes at once
        n = publish(s, with_processors(sim, a.duration, s, a.seed), speed=a.speed, copy_to=out,
                    sim_origin=origin if origin is not None else sim.start)
    finally:
        if out:
            out.close()
    print(f"published {n} events ({sim._n_interventions} interventions, {sim.shortfalls} unfilled requests, "
          f"{sim.uncrewed} times a nearer vehicle was passed over for lack of crew)")
    return 0


def _demand_history(s: Settings, a: argparse.Namespace, end: datetime) -> int:
    from devtools.simulator import Simulator
    from schemas.codec import event_line
    from schemas.reference import Reference

    if not a.output:
        raise SystemExit("--demand-history writes to --output (a file for `vigie history --from-file`)")
    seconds = a.demand_history * 7 * 86400
    sim = Simulator(Reference.load(s.reference_dir), seed=a.seed, start=end - timedelta(seconds=seconds), crews=False)
    n = 0
    with Path(a.output).open("w") as out:
        for ev in sim.demand(seconds):
            out.write(event_line(ev.topic, ev.key, ev.event))
            n += 1
    print(f"wrote {n} events ({sim._n_interventions} calls over {a.demand_history:g} weeks to {end.isoformat()}) "
          f"to {a.output}")
    return 0


def _cmd_history(s: Settings, a: argparse.Namespace) -> int:
    from sinks.clickhouse import run_migrations
    from sinks.history import HistorySource, run_history

    run_migrations(s)
    source = HistorySource(file=Path(a.from_file)) if a.from_file else HistorySource(
        clickhouse_database=a.from_clickhouse)
    stats = run_history(s, source, processes=a.processes, chunk_events=a.chunk)
    print(f"{stats.events} events ({stats.invalid} invalid) in {stats.seconds:.1f}s = "
          f"{stats.events_per_second:,.0f} events/s into database {s.clickhouse_database} "
          f"({stats.processes} process(es))")
    for table, n in sorted(stats.rows.items()):
        print(f"  {table}: {n} rows")
    for table, n in sorted(stats.refused.items()):
        print(f"  {table}: {n} rows refused by ClickHouse (not stored; see the log)")
    return 0


def _cmd_bench(s: Settings, a: argparse.Namespace) -> int:
    from devtools.bench import run_alerts_bench, run_bench, run_live_month_bench, run_near_bench, run_whatif_bench

    if a.live_month:
        run_live_month_bench(days=a.live_month)
        return 0
    if a.near_only:
        run_near_bench()
        return 0
    if a.alerts_only:
        run_alerts_bench()
        return 0
    if a.whatif_only:
        run_whatif_bench(year_days=a.history_days)
        return 0
    run_bench(days=a.days, partitions=a.partitions, history_days=a.history_days, worker_month=a.worker_month,
              replay_month=a.replay_month)
    return 0


def _cmd_board(s: Settings, a: argparse.Namespace) -> int:
    from vigie.board import run_board

    if a.run:
        from core.settings import run_settings

        s = run_settings(s, a.run)
    try:
        run_board(s, once=a.once)
    except KeyboardInterrupt:
        pass
    return 0


def _cmd_run(s: Settings, a: argparse.Namespace) -> int:
    from vigie.run import run_local

    return run_local(s, speed=a.speed, workers=a.workers)


def _cmd_stack(s: Settings, a: argparse.Namespace) -> int:
    from vigie.run import run_local

    return run_local(s, live=False)


def _cmd_sql(s: Settings, a: argparse.Namespace) -> int:
    from vigie.sql import run_sql

    if a.run:
        from core.settings import run_settings

        s = run_settings(s, a.run)
    return run_sql(s, a.database or s.clickhouse_database, a.query, write=a.write)


def _cmd_reference(s: Settings, a: argparse.Namespace) -> int:
    from devtools.brigade import generate_brigade

    ref = generate_brigade(n_stations=a.stations, seed=a.seed)
    ref.write(Path(a.out))
    print(f"wrote {len(ref.stations)} stations, {len(ref.fleet)} vehicles and {len(ref.sectors.sectors)} sectors "
          f"to {a.out}")
    return 0


def _cmd_whatif(s: Settings, a: argparse.Namespace) -> int:
    from streams.whatif.engine import ScenarioError
    from vigie import whatif

    try:
        return int(getattr(whatif, a.whatif_command)(s, a))
    except (ScenarioError, ValueError, OSError) as e:
        print(f"vigie whatif: {e}", file=sys.stderr)
        return 2


def _cmd_moveup(s: Settings, a: argparse.Namespace) -> int:
    from vigie.moveup import DEFAULT_TYPES, describe, every, once

    if a.run:
        from core.settings import run_settings

        s = run_settings(s, a.run)
    types = a.type or list(DEFAULT_TYPES)
    if a.every:
        return every(s, types, a.limit_min * 60, a.days, a.every)
    rows = once(s, types, a.limit_min * 60, a.days)
    if not rows:
        print(f"vigie moveup: no vehicle status in {s.clickhouse_database} yet", file=sys.stderr)
        return 1
    for row in rows:
        print(describe(row))
    return 0


def _history_arguments(p: argparse.ArgumentParser) -> None:
    """Where `vigie whatif` reads its history: an import's folder, or a database's raw history."""
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--history", default=None, help="an import's folder (vigie import --out): events.jsonl, "
                       "reference/")
    where.add_argument("--history-db", default=None, metavar="DB", help="a ClickHouse database's raw history (the "
                       "live one, a replay's, a `vigie history` run's), with the reference of --reference (default: "
                       "VIGIE_REFERENCE_DIR)")
    p.add_argument("--reference", default=None, help="the brigade's reference folder (stations.csv, fleet.csv) "
                   "instead of the history folder's or VIGIE_REFERENCE_DIR")


def _cmd_near(s: Settings, a: argparse.Namespace) -> int:
    from sinks.near import Around, NearError
    from vigie.near import near

    if a.run:
        from core.settings import run_settings

        s = run_settings(s, a.run)
    point = (a.lat, a.lon, a.radius_km)
    if any(v is not None for v in point) and any(v is None for v in point):
        print("vigie near: --lat, --lon and --radius-km go together", file=sys.stderr)
        return 2
    try:
        around = Around(a.lat, a.lon, a.radius_km) if a.lat is not None else None
        print(near(s, around, a.sector, a.category, a.vehicle_type, a.limit))
    except (NearError, ValueError) as e:
        print(f"vigie near: {e}", file=sys.stderr)
        return 2
    return 0


def _cmd_schemas(s: Settings, a: argparse.Namespace) -> int:
    from schemas.export import write_json_schemas
    from streams.registry import event_models
    from vigie.cad.mapping import Mapping

    for p in write_json_schemas([*event_models(s).values(), Mapping]):  # events, and the CAD mapping file's
        print(p)
    return 0


def _cmd_grafana_generate(s: Settings, a: argparse.Namespace) -> int:
    from grafana import generate

    if a.check:
        problems = generate.stale()
        for problem in problems:
            print(problem)
        if problems:
            print("run `make dashboards` and commit grafana/dashboards/")
        return 1 if problems else 0
    for path in generate.write():
        print(path)
    return 0


def _cmd_grafana_push(s: Settings, a: argparse.Namespace) -> int:
    from grafana.push import push_to

    token = a.token or os.environ.get("GRAFANA_TOKEN", "")
    report = push_to(a.url, token, a.folder)
    if report.folder_created:
        print(f"created folder {a.folder!r}")
    for url in report.dashboards:
        print(f"dashboard {url}")
    for uid in report.missing_datasources:
        print(f"warning: no data source with uid {uid!r} in that Grafana; create it (see "
              "grafana/provisioning/datasources/vigie.yaml) or its panels stay empty")
    return 0


def _cmd_import(s: Settings, a: argparse.Namespace) -> int:
    from vigie.cad.importer import Importer, ImportProblem, NothingImported
    from vigie.cad.mapping import Mapping, MappingError

    try:
        importer = Importer(Mapping.load(Path(a.mapping)))
        report = importer.run(Path(a.input), Path(a.out), Path(a.stations) if a.stations else None,
                              Path(a.fleet) if a.fleet else None, a.encoding, a.delimiter)
    except NothingImported as e:
        print(e.report.render())
        print(f"vigie import: {e}", file=sys.stderr)
        return 2
    except (MappingError, ImportProblem) as e:  # the user's to fix: said in words, no traceback
        print(f"vigie import: {e}", file=sys.stderr)
        return 2
    print(report.render())
    print(f"wrote {a.out}/events.jsonl, {a.out}/reference/, {a.out}/report.json")
    return 0


def _cmd_replay_start(s: Settings, a: argparse.Namespace) -> int:
    from vigie.cad.replay import Replay, between, messages_from_clickhouse, messages_from_file
    from vigie.when import instant

    if a.events:
        events = Path(a.events)
        reference = Path(a.reference) if a.reference else events.parent / "reference"
        total = None if a.since or a.until else sum(1 for _ in events.open(encoding="utf-8"))
        messages, report = messages_from_file(events), events.parent / "report.json"
    else:
        reference = Path(a.reference) if a.reference else s.reference_dir
        messages, total, report = messages_from_clickhouse(s, a.from_clickhouse), None, None
    if a.since or a.until:
        messages = between(messages, a.since and instant(a.since), a.until and instant(a.until))
    replay = Replay(s, a.run, reference, workers=a.workers, max_lag=a.max_lag)
    replay.run(messages, a.speed, total, report)
    return 0



def _cmd_replay_signal(s: Settings, a: argparse.Namespace) -> int:
    import signal

    from vigie.cad.replay import signal_run

    sig = {"pause": signal.SIGUSR1, "resume": signal.SIGUSR2, "stop": signal.SIGTERM}[a.replay_command]
    print(f"replay {a.run}: {a.replay_command} sent to process {signal_run(s, a.run, sig)}")
    return 0


#: the secrets the compose stack refuses to start without (deploy/.env.example)
STACK_SECRETS = ("VIGIE_CLICKHOUSE_MIGRATOR_PASSWORD", "VIGIE_CLICKHOUSE_PASSWORD", "VIGIE_CLICKHOUSE_READER_PASSWORD",
                 "GRAFANA_ADMIN_PASSWORD")


def _cmd_secrets(s: Settings, a: argparse.Namespace) -> int:
    import secrets

    out = Path(a.out)
    if out.exists() and not a.force:
        print(f"{out} exists: keeping it (--force replaces it, and the passwords the stack was set up with)",
              file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.touch(mode=0o600)
    out.chmod(0o600)
    out.write_text("# generated by `vigie secrets`: keep out of version control\n" +
                   "".join(f"{name}={secrets.token_urlsafe(24)}\n" for name in STACK_SECRETS))
    print(f"{out}: {len(STACK_SECRETS)} new passwords ({', '.join(STACK_SECRETS)}), readable by you only")
    return 0


def _cmd_alerts_validate(s: Settings, a: argparse.Namespace) -> int:
    from schemas.alert_rules import Measure, RuleFileError, RuleSet

    path = Path(a.file) if a.file else s.alert_rules
    try:
        rules = RuleSet.load(path)
    except RuleFileError as e:
        print(f"invalid: {e}", file=sys.stderr)
        return 1
    for r in rules.rule:
        side = "<=" if r.fires_below else ">="
        what = " ".join(x for x in (r.vehicle_type, r.status, r.qualification, r.segment) if x)
        surge = f" per {r.window:g}s window (at least {r.min_count})" if r.measure is Measure.SURGE else ""
        print(f"{r.name}: {r.severity}, {r.measure.value}{' ' + what if what else ''} per {r.scope.value}{surge} "
              f"{side} {r.fire_at:g} (clears at {r.clear_level:g}), for {r.for_s:g}s, "
              f"keep firing {r.keep_firing_for_s:g}s")
    print(f"{path}: {len(rules.rule)} rules, valid")
    return 0


def _cmd_alerts_list(s: Settings, a: argparse.Namespace) -> int:
    from vigie.alerts import list_alerts
    from vigie.when import instant

    if a.run:
        from core.settings import run_settings

        s = run_settings(s, a.run)
    print(list_alerts(s, history=a.history or a.since is not None or a.until is not None,
                      since=instant(a.since) if a.since else None, until=instant(a.until) if a.until else None))
    return 0


def _cmd_alerts_notify(s: Settings, a: argparse.Namespace) -> int:
    import signal

    from sinks.alertmanager import AlertmanagerError
    from vigie.notify import Notifier

    url = a.alertmanager or s.alertmanager_url
    if not url:
        raise SystemExit("notify: give --alertmanager URL or set VIGIE_ALERTMANAGER_URL")
    notifier = Notifier(s, url, a.every or s.notify_every_s, s.alert_link)
    if a.once:
        try:
            print(f"{url}: {notifier.sync_once()}")
        except AlertmanagerError as e:
            print(f"notify: {e}", file=sys.stderr)
            return 1
        return 0
    signal.signal(signal.SIGTERM, lambda *_: notifier.stop.set())
    receiver = None
    if a.receive is not None:
        from vigie.webhook import WebhookReceiver

        receiver = WebhookReceiver(a.receive, host="0.0.0.0").__enter__()
    try:
        notifier.run()
    except KeyboardInterrupt:
        pass
    finally:
        if receiver is not None:
            receiver.__exit__()
    return 0


def _cmd_alerts_routing(s: Settings, a: argparse.Namespace) -> int:
    from vigie.notify import routing, routing_yaml, write_routing

    if a.write:
        print(f"written: {write_routing()}")
    else:
        print(routing_yaml(routing()), end="")
    return 0


def _cmd_alerts_action(s: Settings, a: argparse.Namespace) -> int:
    from schemas.alert_rules import parse_duration
    from vigie.alerts import send_action
    from vigie.when import instant

    if a.run:
        from core.settings import run_settings

        s = run_settings(s, a.run)
    at = instant(a.at) if a.at else None
    until = None
    if a.alerts_command == "silence":
        if bool(a.until) == bool(a.duration):
            raise SystemExit("silence: give --until or --for (one of them)")
        if a.until:
            until = instant(a.until)
        else:
            from streams.processor import TimeBound

            start = at if at is not None else TimeBound(None, s.clock_origin, s.clock_speed).now()
            until = start + parse_duration(a.duration)
    action = {"ack": "acknowledge", "silence": "silence", "unsilence": "unsilence"}[a.alerts_command]
    try:
        doc = send_action(s, action, a.rule, a.scope, a.by, a.why or "", until, at)
    except ValueError as e:  # the action's own checks (pydantic)
        raise SystemExit(f"{a.alerts_command}: {e}") from None
    print(f"{doc.action.value} {doc.rule} [{doc.scope_key}] by {doc.by} at {doc.event_time:%Y-%m-%d %H:%M:%S} UTC"
          + (f" until {doc.until:%Y-%m-%d %H:%M:%S} UTC" if doc.until else "") + f" -> {s.topic('alert-actions')}")
    return 0


def _forecast_target(s: Settings, a: argparse.Namespace):  # type: ignore[no-untyped-def]
    from vigie.forecast import Target

    if a.run:
        from core.settings import run_settings

        s = run_settings(s, a.run)
    if a.covariates is not None:
        s = s.model_copy(update={"forecast_covariates": a.covariates})
    return Target(s, a.database or s.clickhouse_database)


def _cmd_forecast_backtest(s: Settings, a: argparse.Namespace) -> int:
    from vigie.forecast import backtest, print_backtest

    target = _forecast_target(s, a)
    ok = print_backtest(target, backtest(target, a.weeks), Path(a.out) if a.out else None)
    return 0 if ok or not a.check else 1


def _cmd_forecast_train(s: Settings, a: argparse.Namespace) -> int:
    import json

    from vigie.forecast import parse_at, trained_at

    trained = trained_at(_forecast_target(s, a), parse_at(a.at), a.model)
    Path(a.out).write_text(json.dumps(trained.to_dict()) + "\n")
    alphas = ", ".join(f"{b} h {level}: {x:.3f}" for (b, level), x in trained.alphas.items())
    print(f"{trained.table.model} trained on the history before "
          f"{datetime.fromtimestamp(trained.origin, UTC):%Y-%m-%d %H:%M} UTC, {len(trained.names)} sectors; "
          f"dispersion {alphas}; written to {a.out}")
    return 0


def _cmd_forecast_predict(s: Settings, a: argparse.Namespace) -> int:
    import json

    from streams.forecasting.backtest import Trained
    from vigie.forecast import parse_at, predict, predict_every

    target = _forecast_target(s, a)
    if a.every:
        return predict_every(target, a.days, a.every, a.model)
    trained = Trained.from_dict(json.loads(Path(a.trained).read_text())) if a.trained else None
    origin, n, summary = predict(target, a.days, parse_at(a.at), a.model, trained)
    print(f"{target.database}.forecasts: {n:,} rows from {datetime.fromtimestamp(origin, UTC):%Y-%m-%d %H:%M} UTC "
          f"({a.days} days); " + "; ".join(summary))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vigie",
        description="Vigie: live picture of fire & rescue resources. Settings come from VIGIE_* "
        "environment variables (see README, 'Configuration').",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    w = sub.add_parser("worker", help="run a stream worker: every registered processor (Faust agents -> ClickHouse), "
                       "metrics on VIGIE_METRICS_PORT; on jemalloc when installed (VIGIE_WORKER_ALLOCATOR)")
    w.add_argument("--loglevel", default="info", choices=["crit", "error", "warn", "info", "debug"])
    w.set_defaults(func=_cmd_worker)

    db = sub.add_parser("db", help="database commands")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    m = dbsub.add_parser("migrate", help="apply the ClickHouse migrations not applied yet (idempotent), and "
                         "create the dashboards' read-only user")
    m.set_defaults(func=_cmd_migrate)

    pg = dbsub.add_parser("purge", help="delete per-person rows and blank raw payloads older than the retention "
                          "(VIGIE_RETENTION_PERSONAL_DAYS, VIGIE_RETENTION_PAYLOAD_DAYS; run it daily)")
    pg.add_argument("--dry-run", action="store_true", help="only count the rows concerned")
    pg.set_defaults(func=_cmd_purge)

    t = sub.add_parser("topics", help="create every registered processor's topics (and the dead-letter topic) with "
                       "VIGIE_TOPIC_PARTITIONS partitions")
    t.set_defaults(func=_cmd_topics)

    sim = sub.add_parser("simulate", help="publish simulated Paris-scale traffic to Kafka (and every registered "
                         "processor's own simulated events)")
    sim.add_argument("--speed", type=float, default=60.0,
                     help="simulated seconds per wall second (1 = real time, 0 = as fast as possible)")
    sim.add_argument("--duration", type=float, default=86400.0, help="simulated seconds to produce")
    sim.add_argument("--seed", type=int, default=1, help="random seed (same seed + start = same events)")
    sim.add_argument("--start", default=None, help="simulated start time, ISO 8601 with zone (default: now)")
    sim.add_argument("--output", default=None, help="also write every event to this JSON-lines file")
    sim.add_argument("--backfill-hours", type=float, default=0.0,
                     help="start that many hours ago: publish the past at once, then go on at --speed from now "
                     "(with --speed 1 the simulated clock is the wall clock, as on a live system)")
    sim.add_argument("--no-crews", action="store_true", help="vehicles and interventions only (no crew-status)")
    sim.add_argument("--demand-history", type=float, default=0.0, metavar="WEEKS",
                     help="instead: calls only (opened and closed, no vehicles), the WEEKS before --start (default: "
                     "now), written to --output and not published: a past for `vigie history` and the forecasts")
    sim.add_argument("--staffing-ratio", type=float, default=0.75,
                     help="on-duty strength of a watch, as a share of the seats of its station's whole fleet")
    sim.add_argument("--shift-hour", type=int, default=7, choices=range(24), metavar="HOUR",
                     help="hour (UTC) at which the 24-hour watches change")
    sim.add_argument("--major-incidents-per-day", type=float, default=0.0,
                     help="major incidents (30 VSAV and 4 FPT each, in one area: its capacity alerts fire) per "
                          "simulated day; make run has 3")
    sim.set_defaults(func=_cmd_simulate)

    h = sub.add_parser("history", help="batch path: run stored events through the same logic, no Kafka/Faust "
                       "(backfill, analysis); writes to VIGIE_CLICKHOUSE_DATABASE")
    src = h.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-file", help="JSON-lines events, as written by `vigie simulate --output`")
    src.add_argument("--from-clickhouse", metavar="DATABASE", help="the raw event history of this database")
    h.add_argument("--chunk", type=int, default=20000, help="events per chunk (one ClickHouse write each)")
    h.add_argument("--processes", type=int, default=0,
                   help="processes sharing the partitions out (default: one per core, at most "
                   "VIGIE_TOPIC_PARTITIONS); the same rows as one process")
    h.set_defaults(func=_cmd_history)

    bn = sub.add_parser("bench", help="measure throughput (ceiling, Faust no-op, worker, batch path) on this machine")
    bn.add_argument("--days", type=float, default=3.0, help="simulated days of traffic to push through each case")
    bn.add_argument("--whatif-only", action="store_true", help="only the what-if figures (the SF week: one re-run, "
                    "5 scenarios x 20 paired seeds, move-up advice; a simulated week re-run without and with its "
                    "crews; a simulated year of --history-days re-run once; "
                    "no broker, no ClickHouse)")
    bn.add_argument("--near-only", action="store_true", help="only the stocks-near-a-place figures (100,000 "
                    "snapshots, the radius query's p50/p95; about a minute)")
    bn.add_argument("--alerts-only", action="store_true", help="only the alerts' cost (the batch path over a "
                    "simulated week with and without the shipped rules, 5 runs each taking turns; about 90 s)")
    bn.add_argument("--partitions", type=int, default=4, help="partitions of the input topics")
    bn.add_argument("--history-days", type=float, default=365.0,
                    help="simulated days of history for the batch path and the panel timings (0: skip; the event "
                    "file is cached under .vigie/bench/)")
    bn.add_argument("--worker-month", action="store_true",
                    help="also a live worker over a simulated month with crews: its memory (about 6 minutes here, on "
                    "32 partitions: the local broker's fetches slow down as its partitions grow)")
    bn.add_argument("--live-month", type=int, nargs="?", const=28, default=0, metavar="DAYS",
                    help="only a live worker over DAYS simulated days (default 28) with crews and never-closed "
                    "interventions, published as they happen at x3000 (the worker's clock alike): its RSS and state "
                    "every 12 simulated hours (about 14 minutes for 28 days; own broker and ClickHouse)")
    bn.add_argument("--replay-month", action="store_true",
                    help="also January 2018 of the SF year replayed at x600 through the broker and a worker, its lag "
                    "watched (75 minutes)")
    bn.set_defaults(func=_cmd_bench)

    b = sub.add_parser("board", help="live terminal board from ClickHouse, refreshed every second")
    b.add_argument("--once", action="store_true", help="print the board once and exit")
    b.add_argument("--run", default=None, help="show a replay run (its database) instead of the live one")
    b.set_defaults(func=_cmd_board)

    r = sub.add_parser("run", help="local stack: broker + ClickHouse + migrations + worker(s) + simulator + forecasts "
                       "+ Alertmanager and the notifier + board")
    r.add_argument("--speed", type=float, default=60.0, help="simulator speed (default x60)")
    r.add_argument("--workers", type=int, default=1, help="number of worker processes")
    r.set_defaults(func=_cmd_run)

    st = sub.add_parser("stack", help="the local stack alone (broker + ClickHouse + migrations + topics) until "
                        "Ctrl-C, for import, replay and dashboard work")
    st.set_defaults(func=_cmd_stack)

    q = sub.add_parser("sql", help="query a run's database (read-only unless --write): -q QUERY, or statements "
                       "ending in ';' typed or piped in; tab-separated output with a header line")
    q.add_argument("-q", "--query", default=None, help="one statement (else read from standard input)")
    q.add_argument("--run", default=None, help="a replay run's database instead of the live one")
    q.add_argument("--database", default=None, help="another database")
    q.add_argument("--write", action="store_true", help="as the configured (writing) user, without readonly")
    q.set_defaults(func=_cmd_sql)

    ref = sub.add_parser("reference", help="generate the simulated brigade's stations.csv, fleet.csv, "
                         "crew_requirements.csv and sectors.geojson")
    ref.add_argument("--out", default="deploy/reference/paris-sim")
    ref.add_argument("--stations", type=int, default=80)
    ref.add_argument("--seed", type=int, default=7)
    ref.set_defaults(func=_cmd_reference)

    nr = sub.add_parser("near", help="stocks (and available vehicles) near a point, nearest first, or the stocks of "
                        "a sector")
    nr.add_argument("--lat", type=float, default=None, help="the point's latitude (degrees)")
    nr.add_argument("--lon", type=float, default=None, help="the point's longitude (degrees)")
    nr.add_argument("--radius-km", type=float, default=None, help="the search radius (km, up to 1000)")
    nr.add_argument("--sector", default=None, help="the stocks of this sector instead (sorted by distance from the "
                    "point if one is given)")
    nr.add_argument("--category", default=None, help="only this item category (sandbags, generator...)")
    nr.add_argument("--vehicle-type", default=None, help="only vehicles of this type (VSAV...)")
    nr.add_argument("--limit", type=int, default=50, help="at most this many stocks and vehicles (default 50)")
    nr.add_argument("--run", default=None, help="a replay run's database instead of the live one")
    nr.set_defaults(func=_cmd_near)

    wi = sub.add_parser("whatif", help="re-run an imported history under a scenario (README \"What-if\")")
    wisub = wi.add_subparsers(dest="whatif_command", required=True, metavar="WHATIF_COMMAND")
    wr = wisub.add_parser("run", help="the history unchanged and under a scenario, over paired seeds: the figures side "
                          "by side, each difference with its 95 %% interval")
    _history_arguments(wr)
    wr.add_argument("--scenario", default=None, help="the scenario file (TOML, schemas/whatif.py); none: the "
                    "history unchanged against itself")
    wr.add_argument("--seeds", type=int, default=20, help="paired seeds (default 20)")
    wr.add_argument("--store", default=None, metavar="STUDY", help="also store the figures in ClickHouse "
                    "(whatif_figures) under this study name, for the « Scénarios » dashboard")
    wr.add_argument("--run", default=None, help="with --store: a replay run's database instead of the live one")
    wr.add_argument("--out", default=None, help="write seed 0 of the scenario as Vigie events + reference here (for "
                    "vigie replay start)")
    wr.set_defaults(func=_cmd_whatif)
    wt = wisub.add_parser("trace", help="re-run the history with the observed dispatches forced: the figures must be "
                          "the observed ones (exit 1 if not)")
    _history_arguments(wt)
    wt.set_defaults(func=_cmd_whatif)
    wm = wisub.add_parser("moveup", help="move-up advice at a moment of the history: which free unit to move to which "
                          "station to raise the expected coverage most (DMEXCLP)")
    _history_arguments(wm)
    wm.add_argument("--at", default=None, help="the moment (ISO date/time, UTC unless it has an offset)")
    wm.add_argument("--evaluate", action="store_true", help="instead: re-run the history with move-ups on (freed "
                    "units of --type to the best station) against off (home), over paired seeds")
    wm.add_argument("--seeds", type=int, default=10, help="with --evaluate: paired seeds (default 10)")
    wm.add_argument("--type", action="append", default=None, help="a unit type (repeatable; default: every type; "
                    "with --evaluate, VSAV)")
    wm.add_argument("--limit-min", type=float, default=8.0, help="coverage: reached within this many minutes "
                    "(default 8)")
    wm.set_defaults(func=_cmd_whatif)
    wc = wisub.add_parser("calibrate", help="the history unchanged through the closest-unit rule and the fitted "
                          "models against what was observed (per unit type x priority, utilisation, held-out travel)")
    _history_arguments(wc)
    wc.add_argument("--seeds", type=int, default=20, help="seeds (default 20)")
    wc.add_argument("--fitted-durations", action="store_true", help="turnouts and times after arrival drawn from "
                    "the history (per unit type and hour; per call nature and unit type) instead of each response's "
                    "own")
    wc.set_defaults(func=_cmd_whatif)

    sc = sub.add_parser("schemas", help="export every registered processor's event JSON Schemas, beside each model "
                        "(Vigie's: schemas/jsonschema/)")
    sc.set_defaults(func=_cmd_schemas)

    im = sub.add_parser("import", help="turn a CAD per-unit export into Vigie events + fleet/stations + report")
    im.add_argument("--mapping", required=True, help="the export's mapping file, e.g. deploy/cad-mappings/sffd.toml")
    im.add_argument("--input", required=True, help="the CSV export (.csv or .csv.gz)")
    im.add_argument("--out", required=True, help="output folder: events.jsonl, reference/, report.json")
    im.add_argument("--stations", default=None, help="your stations.csv, instead of the stations the data implies")
    im.add_argument("--fleet", default=None, help="your fleet.csv, instead of the fleet the data implies")
    im.add_argument("--encoding", default=None, help="the file's encoding, e.g. latin-1, cp1252 (default: the "
                    "mapping's, else UTF-8; a BOM is skipped)")
    im.add_argument("--delimiter", default=None, help="the field delimiter (default: the mapping's, else the most "
                    "frequent of , ; tab | in the header line)")
    im.set_defaults(func=_cmd_import)

    rp = sub.add_parser("replay", help="replay past events through the processors into a run of their own")
    rpsub = rp.add_subparsers(dest="replay_command", required=True, metavar="REPLAY_COMMAND")
    rs = rpsub.add_parser("start", help="publish the events and run workers for them (progress on stderr)")
    rs.add_argument("--run", required=True, help="run id (a-z, 0-9, _): topics and database get it as suffix")
    src = rs.add_mutually_exclusive_group(required=True)
    src.add_argument("--events", help="events.jsonl from `vigie import` or `vigie simulate --output`")
    src.add_argument("--from-clickhouse", metavar="DATABASE", help="the raw event history of this database")
    rs.add_argument("--reference", default=None,
                    help="stations/fleet folder (default: reference/ beside --events, else VIGIE_REFERENCE_DIR)")
    rs.add_argument("--speed", type=float, default=0.0, help="x speed on event time (1 = as it happened, "
                    "0 = as fast as possible)")
    rs.add_argument("--workers", type=int, default=1, help="worker processes for the run")
    rs.add_argument("--from", dest="since", metavar="WHEN", default=None,
                    help="only events at or after this ISO date/time (UTC unless it has an offset)")
    rs.add_argument("--until", metavar="WHEN", default=None, help="only events before this ISO date/time")
    rs.add_argument("--max-lag", type=int, default=5000, metavar="EVENTS",
                    help="a paced replay waits while its workers are this many events behind (default 5000)")
    rs.set_defaults(func=_cmd_replay_start)
    for name, what in (("pause", "pause publishing"), ("resume", "resume publishing"),
                       ("stop", "stop the replay (its workers stop too)")):
        c = rpsub.add_parser(name, help=what)
        c.add_argument("--run", required=True)
        c.set_defaults(func=_cmd_replay_signal)

    se = sub.add_parser("secrets", help="write random passwords for the compose stack (deploy/.env), which refuses "
                        "to start without them")
    se.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "deploy" / ".env"),
                    help="where to write them (default: deploy/.env, read by docker compose)")
    se.add_argument("--force", action="store_true", help="replace an existing file")
    se.set_defaults(func=_cmd_secrets)

    al = sub.add_parser("alerts", help="alerts: what fires, acting on it (ack, silence), the rules file")
    alsub = al.add_subparsers(dest="alerts_command", required=True, metavar="ALERTS_COMMAND")
    av = alsub.add_parser("validate", help="check a rules file (TOML; reference: schemas/alert_rules.py) and "
                          "print what each rule does")
    av.add_argument("file", nargs="?", default=None,
                    help="the rules file (default: VIGIE_ALERT_RULES, the shipped deploy/alerts/rules.toml)")
    av.set_defaults(func=_cmd_alerts_validate)
    ali = alsub.add_parser("list", help="the alerts firing or pending now (most severe first); with --history, "
                           "--since or --until: every transition of the period")
    ali.add_argument("--run", default=None, help="a replay run's database instead of the live one")
    ali.add_argument("--history", action="store_true", help="every transition (pending, firing, cancelled, "
                     "resolved), in time order")
    ali.add_argument("--since", default=None, help="from this event time (ISO, UTC without an offset)")
    ali.add_argument("--until", default=None, help="up to this event time (excluded)")
    ali.set_defaults(func=_cmd_alerts_list)
    for name, what in (("ack", "acknowledge an alert's episode (someone took it in hand); shown on the board and "
                                "the wall screen"),
                       ("silence", "silence an alert until a time (still stored and shown, marked; not notified)"),
                       ("unsilence", "lift a silence now")):
        c = alsub.add_parser(name, help=what)
        c.add_argument("rule", help="the rule's name (vigie alerts list shows it)")
        c.add_argument("scope", help="the alert's scope, as `vigie alerts list` shows it: AREA/TYPE, STATION/TYPE, "
                       "STATION/QUALIFICATION")
        c.add_argument("--by", required=True, help="who: your operator identifier")
        c.add_argument("--why", default=None, help="why (required to silence)")
        if name == "silence":
            c.add_argument("--until", default=None, help="the silence's end (ISO, UTC without an offset)")
            c.add_argument("--for", dest="duration", default=None, help="or its length: 90s, 30m, 2h")
        c.add_argument("--at", default=None, help="the action's event time (ISO; default: the worker's clock; for a "
                       "replay, a time of the replay)")
        c.add_argument("--run", default=None, help="a replay run's topics instead of the live ones")
        c.set_defaults(func=_cmd_alerts_action)

    an = alsub.add_parser("notify", help="keep Prometheus Alertmanager in step with the alerts: firing and resolved "
                          "ones sent, Vigie's silences mirrored; it routes and notifies (README 'Notifications')")
    an.add_argument("--alertmanager", default=None, metavar="URL",
                    help="Alertmanager's address (default: VIGIE_ALERTMANAGER_URL)")
    an.add_argument("--every", type=float, default=None, metavar="SECONDS",
                    help="seconds between syncs (default: VIGIE_NOTIFY_EVERY_S, 15)")
    an.add_argument("--once", action="store_true", help="one sync, then exit (status 1 if it failed)")
    an.add_argument("--receive", type=int, default=None, metavar="PORT",
                    help="also receive Alertmanager's webhook on this port and log each notification (a deployment "
                    "with no paging gateway yet: the compose stack's default receiver)")
    an.set_defaults(func=_cmd_alerts_notify)
    ar = alsub.add_parser("routing", help="print Alertmanager's configuration for Vigie (routes per severity, the "
                          "operations room's webhook); --write: into deploy/alertmanager/alertmanager.yml")
    ar.add_argument("--write", action="store_true", help="write the shipped file instead of printing")
    ar.set_defaults(func=_cmd_alerts_routing)

    mu = sub.add_parser("moveup", help="live move-up advice (DMEXCLP): per unit type, the free unit to move to "
                        "another station that raises the expected coverage most now, from ClickHouse, into "
                        "moveup_advice (the board, « Situation »)")
    mu.add_argument("--type", action="append", default=None, help="a unit type (repeatable; default VSAV and FPT)")
    mu.add_argument("--limit-min", type=float, default=8.0, help="coverage: reached within this many minutes "
                    "(default 8)")
    mu.add_argument("--days", type=float, default=28.0, help="demand and travel trips: the last DAYS of the live "
                    "picture (default 28)")
    mu.add_argument("--every", type=float, default=0.0, metavar="SECONDS",
                    help="again every SECONDS until stopped (default: once, printed)")
    mu.add_argument("--run", default=None, help="a replay run's database instead of the live one")
    mu.set_defaults(func=_cmd_moveup)

    fc = sub.add_parser("forecast", help="forecasts of interventions per sector and hour / 3 h / day (README, "
                        "'Forecasts')")
    fcsub = fc.add_subparsers(dest="forecast_command", required=True, metavar="ACTION")
    fb = fcsub.add_parser("backtest", help="rolling-origin backtest over the last weeks of the history: the model "
                          "against the baselines B1 and B2, per bin and level, and the bar it must clear")
    fb.add_argument("--weeks", type=int, default=8, help="weekly origins (horizon 7 days each)")
    fb.add_argument("--out", default=None, help="also write the report as JSON to this file")
    fb.add_argument("--check", action="store_true", help="exit 1 when a criterion fails")
    ft = fcsub.add_parser("train", help="fit a model on the history (26 weeks) and its dispersions (4 weeks before) "
                          "and save it, for `predict --trained`")
    ft.add_argument("--out", required=True, help="the trained model (JSON)")
    ft.add_argument("--at", default=None, help="train on the history before this time (ISO, UTC unless it says; "
                    "default: the newest counted hour)")
    fp = fcsub.add_parser("predict", help="forecast the next days into the run's `forecasts` table (the dashboards' "
                          "'attendu / observé')")
    fp.add_argument("--days", type=int, default=7, choices=range(1, 8), metavar="1-7",
                    help="local days ahead (default 7)")
    fp.add_argument("--at", default=None, help="forecast from this time, on the history before it (default: the "
                    "newest counted hour)")
    fp.add_argument("--trained", default=None, help="a model saved by `train` instead of fitting one now")
    fp.add_argument("--every", type=float, default=0, metavar="SECONDS",
                    help="forecast again every SECONDS until stopped (waits while the history is too short)")
    for c in (fb, ft, fp):
        c.add_argument("--run", default=None, help="a replay run's database instead of the live one")
        c.add_argument("--database", default=None, help="any database with Vigie's tables (an imported history)")
        c.add_argument("--covariates", default=None, metavar="CSV", help="weather or scheduled events "
                       "(start,end,sector,name,value; default VIGIE_FORECAST_COVARIATES; '' for none)")
    for c in (ft, fp):
        c.add_argument("--model", default="profile", choices=["profile", "B1", "B2"],
                       help="profile (published) or a baseline")
    fb.set_defaults(func=_cmd_forecast_backtest)
    ft.set_defaults(func=_cmd_forecast_train)
    fp.set_defaults(func=_cmd_forecast_predict)

    g = sub.add_parser("grafana", help="dashboards as code: generate the JSON, push to a Grafana")
    gsub = g.add_subparsers(dest="grafana_command", required=True, metavar="GRAFANA_COMMAND")
    gg = gsub.add_parser("generate", help="write grafana/dashboards/*.json from the code (make dashboards)")
    gg.add_argument("--check", action="store_true", help="only check the checked-in JSON is up to date")
    gg.set_defaults(func=_cmd_grafana_generate)
    gp = gsub.add_parser("push", help="upsert the dashboards into a folder of an existing Grafana")
    gp.add_argument("--url", required=True, help="Grafana base URL, e.g. https://grafana.example.org")
    gp.add_argument("--token", default=None, help="service-account token (default: $GRAFANA_TOKEN)")
    gp.add_argument("--folder", default="vigie", help="folder uid (created if missing; title 'Vigie')")
    gp.set_defaults(func=_cmd_grafana_push)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(load_settings(), args))


if __name__ == "__main__":
    sys.exit(main())
