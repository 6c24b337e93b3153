"""The one typed settings object, read from ``VIGIE_*`` environment variables."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: logical name of the runtime's dead-letter topic (one for every processor; the record says its source)
DEAD_LETTER_TOPIC = "vigie-dead-letter"
#: written by ``make run`` while the local stack runs (its address and broker values), read by every command
LOCAL_STACK_ENV = PROJECT_ROOT / ".vigie" / "local-stack.env"


class Settings(BaseSettings):
    """Every knob of Vigie. Field ``foo_bar`` is read from ``VIGIE_FOO_BAR``."""

    # ``make run`` writes the local stack's address and broker values to LOCAL_STACK_ENV while it runs, so that
    # commands in another terminal (`vigie replay`, `vigie board`) reach it; the environment wins over it
    model_config = SettingsConfigDict(env_prefix="VIGIE_", extra="ignore", frozen=True, env_file=LOCAL_STACK_ENV)

    # --- Kafka -------------------------------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_cafile: str = ""
    # mutual TLS: the client's certificate and key (PEM), for brokers that authenticate clients by certificate
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    kafka_ssl_key_password: SecretStr = SecretStr("")
    # Consumer-group timings and the producer's batch bound: Apache Kafka's own defaults (session.timeout.ms,
    # max.poll.interval.ms, heartbeat.interval.ms, batch.size). The local stack (make run, tests, bench) sets
    # the values its broker needs itself (devtools/stack.py: LOCAL_BROKER): Tansu waits a whole rebalance
    # timeout before a new group's first join, and reports a partition's high watermark at the base offset of
    # its last *batch*, so there every record must be its own batch (changelog recovery and the watermark
    # hold read high watermarks).
    kafka_session_timeout_s: float = 45.0
    kafka_rebalance_timeout_s: float = 300.0
    kafka_heartbeat_interval_s: float = 3.0
    kafka_producer_max_batch_bytes: int = Field(default=16384, ge=1)
    # Longest a fetch may wait at the broker for data: Apache Kafka's fetch.max.wait.ms (it answers as soon as
    # data is there). Faust fixes 1,500 ms; Tansu answers a fetch only when the wait ends, so the local stack sets
    # 50 ms (measured at 2,000 events/s: raw consumption latency p99 0.77 s at 1,500 ms, 0.07 s at 100 ms).
    kafka_fetch_max_wait_ms: int = Field(default=500, ge=1)
    # The same while a partition is 1,000 records or more behind: on Tansu a short wait returns a single record
    # per fetch from a big partition, and a lagging worker never catches up (streams/faust_compat.py).
    kafka_catch_up_fetch_wait_ms: int = Field(default=500, ge=1)
    # Hand each fetched message to the streams without Faust's four tasks per message when nothing makes the
    # hand-over wait (streams/faust_compat.py). A patch of Faust's fetch loop: false restores Faust's own.
    kafka_eager_delivery: bool = True
    # A station-topic partition read to its end still holds the windows' watermark this long (wall clock):
    # records produced together on the other topic may still be on their way (see StationEngine.watermark).
    input_idle_s: float = Field(default=2.0, ge=0)
    # ... but never more than this far (event time) behind the partition's newest event: while one topic races
    # ahead of the other (a worker catching up a backlog reads them unevenly), the windows would stay open and the
    # station's state grow with everything read meanwhile (measured: a worker catching up 42 days of crews crashed
    # on a 1 MB changelog record). Older records of the topic behind then follow the late rule (counted).
    hold_max_s: float = Field(default=21600.0, gt=0)

    # Topics are named by their processors (logical names such as ``vehicle-status``); a deployment may rename
    # any (``VIGIE_TOPIC_NAMES='{"vehicle-status": "cad.vehicles"}'``), and every name gets ``topic_suffix``
    # (a replay run's topics: ``-replay-<run>``).
    topic_names: dict[str, str] = Field(default_factory=dict)
    topic_suffix: str = ""
    topic_partitions: int = Field(default=4, ge=1)
    # copies of every topic Vigie creates (inputs, dead letters, state changelogs), and how many must have a write
    # before it counts (0: the broker's default). One broker locally; 3 and 2 on a production cluster.
    topic_replication_factor: int = Field(default=1, ge=1)
    topic_min_insync_replicas: int = Field(default=0, ge=0)
    # Processors outside Vigie's package: modules defining ``PROCESSOR`` (comma-separated), besides those
    # registered through the ``vigie.processors`` entry point.
    processor_modules: str = ""

    # --- ClickHouse --------------------------------------------------------------------------
    clickhouse_host: str = "127.0.0.1"
    clickhouse_port: int = 9000
    # The pipeline's user (worker, batch path, replays, forecasts): it writes rows, never changes a table. On a
    # ClickHouse with SQL users `vigie db migrate` creates it (INSERT and SELECT, DDL refused) when it is not the
    # migrator; the local stack defines it in its users.xml.
    clickhouse_user: str = "default"
    clickhouse_password: SecretStr = SecretStr("")
    # Who runs `vigie db migrate`, `vigie db purge` and creates replay databases: DDL, mutations, the other users.
    # Empty: the pipeline's user (one account that can do everything, as before).
    clickhouse_migrator_user: str = ""
    clickhouse_migrator_password: SecretStr = SecretStr("")
    clickhouse_database: str = "vigie"
    clickhouse_secure: bool = False
    clickhouse_ca_certs: str = ""
    # The read-only user of the dashboards (Grafana). `vigie db migrate` creates it on a ClickHouse with
    # SQL users when the password is set; the local stack defines it in its users.xml.
    clickhouse_reader_user: str = "vigie_reader"
    clickhouse_reader_password: SecretStr = SecretStr("")
    # how long personal data and raw payloads are kept, in days (0: for ever); see sinks/retention.py
    retention_personal_days: float = Field(default=0.0, ge=0)
    retention_payload_days: float = Field(default=0.0, ge=0)

    # --- Processing --------------------------------------------------------------------------
    app_id: str = "vigie"
    reference_dir: Path = PROJECT_ROOT / "deploy" / "reference" / "paris-sim"
    # the alert rules (TOML; README "Alerts"): read at start and again when the file changes
    alert_rules: Path = PROJECT_ROOT / "deploy" / "alerts" / "rules.toml"
    # when every stations partition has published nothing for this long (wall clock), the alerts' clock goes to the
    # newest sealed time heard (the input is over for now, as at the end of a history)
    alert_source_idle_s: float = Field(default=10.0, gt=0)
    # `vigie alerts notify`: the Alertmanager it keeps in step with the alerts (README "Notifications"), how often,
    # and the link a notification carries (the wall screen's address, say); empty: none
    alertmanager_url: str = ""
    notify_every_s: float = Field(default=15.0, gt=0)
    alert_link: str = ""
    window_seconds: int = Field(default=60, ge=1)
    # Events up to this much older than the newest event time seen on their partition still
    # land in their own window; older ones are counted late and applied to the open window. The alerts read
    # sealed data only, so a deadline passes this long after it (plus a second or two): 5 s keeps an
    # intervention's timeout within 10 s. A feed late by a steady delay needs none (the live clock follows
    # arrivals); raise it for a feed whose records of one partition come out of order by more.
    allowed_lateness_seconds: int = Field(default=5, ge=0)
    # Live, an event more than this far ahead of the worker's clock is dead-lettered (a terminal with a wrong
    # clock would otherwise move its partition's watermark ahead and freeze the picture); the batch path has
    # no clock bound (history, what-if runs), only ClickHouse's DateTime range, which applies everywhere.
    max_clock_skew_s: float = Field(default=300.0, ge=0)
    # The worker's clock: the wall clock, or for a simulation sped up from an origin (`make run`), origin +
    # (wall clock - origin) x speed (event times then run ahead of the wall clock by design).
    clock_origin: float = Field(default=0.0, ge=0)
    clock_speed: float = Field(default=1.0, gt=0)
    # Closed interventions leave the worker's state this long (event time) after closing.
    intervention_retention_hours: float = Field(default=24.0, gt=0)
    intervention_eviction_interval_s: float = Field(default=60.0, gt=0)
    # Interventions never closed (a CAD that never sends `closed`) leave the state after this long without any
    # event (event time): a later event for one starts it afresh.
    intervention_idle_hours: float = Field(default=72.0, gt=0)
    # People off duty for longer than this (event time) leave their station's state (pseudonymous ids that
    # rotate would otherwise pile up); their last row stays in `staff_state`.
    staff_off_duty_retention_hours: float = Field(default=24.0, gt=0)
    # One batch = one ClickHouse write + one changelog write per touched key + one offset commit. Under load a
    # batch closes on size: 5,000 amortises the per-batch work (measured +25-35 % events/s over 2,000); under
    # 10,000 events/s the age bound closes it first. The age bound is most of the freshness tail: 0.5 s -> 0.3 s
    # took the p99 at 2,000 events/s from 0.77-1.06 s to 0.56 s, throughput unchanged.
    batch_max_events: int = Field(default=5000, ge=1)
    batch_max_seconds: float = Field(default=0.3, gt=0)
    # A batch also closes as soon as nothing more waits in the stream's queue (light load: what the fetches
    # brought; heavy load: the queue never runs dry and size closes it). False: size or age only (Faust's take).
    batch_close_when_drained: bool = True
    # ... but not within this long of the previous batch's close: each batch is an insert per table, and hundreds of
    # small inserts a second keep ClickHouse merging (measured: two workers -20 %, and the batch path after them
    # -30 %, without a bound)
    batch_min_seconds: float = Field(default=0.05, ge=0)
    sink_retry_initial_s: float = 0.2
    sink_retry_max_s: float = 5.0
    sink_write_timeout_s: float = Field(default=60.0, gt=0)
    worker_stop_timeout_s: float = 8.0
    # No batch stored and no write attempted for this long while messages wait on the worker's
    # partitions: the worker logs its task stacks and restarts itself (0 disables).
    worker_stall_timeout_s: float = Field(default=60.0, ge=0)
    # The worker's memory allocator (vigie/allocator.py): "jemalloc" when libjemalloc.so.2 is installed (the
    # worker re-executes itself on it), else the system's. glibc's heaps fragment as a worker runs for weeks.
    worker_allocator: Literal["jemalloc", "system"] = "jemalloc"
    metrics_port: int = 9464
    # --- Forecasts (`vigie forecast`) ---------------------------------------------------------
    # the brigade's local time: forecasts' hours of the week, 3-hour blocks and days are read in it
    timezone: str = "Europe/Paris"
    # public holidays read as Sundays by the forecast: a country code of the `holidays` package, with an optional
    # subdivision ("FR", "US-CA"); empty: none
    holidays: str = ""
    # optional covariates of the forecast (weather, scheduled events): a CSV, see streams/forecasting/covariates.py
    forecast_covariates: str = ""
    # --- Population present (README "Population present per sector") -----------------------------
    # a period is scored against the same local slot of the week in this many weeks before it (median and MAD)
    presence_weeks: int = Field(default=4, ge=1, le=12)
    # at least this many of those weeks count before a period can deviate
    presence_min_weeks: int = Field(default=3, ge=1, le=12)
    # a period deviates when |robust z| >= presence_z and present/usual >= presence_ratio_high or <= _low
    presence_z: float = Field(default=4.0, gt=0)
    presence_ratio_high: float = Field(default=1.3, gt=1)
    presence_ratio_low: float = Field(default=0.7, ge=0, lt=1)
    # the alert rules on presence (measures presence_high / presence_low) take a series' periods in time order:
    # a period as soon as every earlier one has come; a period still missing this long after the newest one
    # delivered is given up (the alerts go on without it)
    presence_alert_lateness_s: float = Field(default=10800.0, ge=0)
    # Tests only (streams/runtime/faults.py): deterministic faults, e.g. "kill_after_rows=3". Empty in production.
    faults: str = ""
    state_dir: Path = PROJECT_ROOT / ".vigie" / "worker-state"

    # --- Local stack (`vigie stack`, `make run`) ---------------------------------------------
    run_dir: Path = PROJECT_ROOT / ".vigie"
    local_kafka_port: int = 9092
    local_clickhouse_tcp_port: int = 9000
    local_clickhouse_http_port: int = 8123
    local_alertmanager_port: int = 9093

    def to_env(self) -> dict[str, str]:
        """These settings as ``VIGIE_*`` environment variables (to start another process with them)."""
        env = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, dict):
                value = json.dumps(value)
            env[f"VIGIE_{name.upper()}"] = str(value)
        return env

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        ZoneInfo(v)  # an unknown zone fails here, naming itself
        return v

    def as_migrator(self) -> Settings:
        """These settings with the migrator's ClickHouse account as the one to connect with."""
        if not self.clickhouse_migrator_user:
            return self
        return self.model_copy(update={"clickhouse_user": self.clickhouse_migrator_user,
                                       "clickhouse_password": self.clickhouse_migrator_password})

    def as_reader(self) -> Settings | None:
        """These settings with the dashboards' read-only account, if it has a password here (else None)."""
        if not self.clickhouse_reader_password.get_secret_value():
            return None
        return self.model_copy(update={"clickhouse_user": self.clickhouse_reader_user,
                                       "clickhouse_password": self.clickhouse_reader_password})

    def topic(self, logical: str) -> str:
        """The deployment's name of a logical topic."""
        return self.topic_names.get(logical, logical) + self.topic_suffix

    @property
    def dead_letter_topic(self) -> str:
        return self.topic(DEAD_LETTER_TOPIC)

    def kafka_url(self) -> str:
        return ",".join(f"kafka://{h.strip()}" for h in self.kafka_bootstrap.split(","))

    def confluent_config(self) -> dict[str, str]:
        """librdkafka settings for the confluent-kafka clients (simulator, admin)."""
        conf = {"bootstrap.servers": self.kafka_bootstrap, "security.protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol.startswith("SASL"):
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
            conf["sasl.username"] = self.kafka_sasl_username
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_security_protocol.endswith("SSL"):
            for key, value in (("ssl.ca.location", self.kafka_ssl_cafile),
                               ("ssl.certificate.location", self.kafka_ssl_certfile),
                               ("ssl.key.location", self.kafka_ssl_keyfile),
                               ("ssl.key.password", self.kafka_ssl_key_password.get_secret_value())):
                if value:
                    conf[key] = value
        return conf

    def topic_config(self) -> dict[str, str]:
        """Broker configuration of the topics Vigie creates."""
        n = self.topic_min_insync_replicas
        return {"min.insync.replicas": str(n)} if n else {}


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]


_RUN_ID = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")


def run_settings(base: Settings, run_id: str, reference_dir: Path | None = None) -> Settings:
    """The settings of replay run ``run_id``: its own topics, consumer group and database."""
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r}: use lower-case letters, digits and '_' (at most 40)")
    suffix = f"-replay-{run_id}"
    update: dict[str, object] = {
        "clickhouse_database": f"{base.clickhouse_database}_replay_{run_id}",
        "topic_suffix": base.topic_suffix + suffix,  # every processor's topics and the dead letters
        "app_id": base.app_id + suffix,
        "metrics_port": 0,
    }
    if reference_dir is not None:
        update["reference_dir"] = Path(reference_dir).resolve()
    return base.model_copy(update=update)
