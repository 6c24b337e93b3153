"""Kafka with client certificates, and replicated topics: the settings reach every client and every topic Vigie
creates (inputs and dead letters by the admin client, state changelogs by Faust)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from core.settings import Settings
from streams.topics import new_topics, wanted_topics


def cert_pair(tmp: Path, name: str) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp / f"{name}.pem", tmp / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


def test_librdkafka_gets_the_client_certificate_only_over_tls(tmp_path: Path) -> None:
    cert, key = cert_pair(tmp_path, "worker")
    s = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile="/ca.pem", kafka_ssl_certfile=cert,
                 kafka_ssl_keyfile=key, kafka_ssl_key_password="pw")  # type: ignore[arg-type]
    conf = s.confluent_config()
    assert (conf["ssl.ca.location"], conf["ssl.certificate.location"], conf["ssl.key.location"],
            conf["ssl.key.password"]) == ("/ca.pem", cert, key, "pw")
    plain = Settings(kafka_ssl_certfile=cert, kafka_ssl_keyfile=key).confluent_config()
    assert not any(k.startswith("ssl.") for k in plain)


def test_faust_loads_the_client_certificate(tmp_path: Path) -> None:
    from streams.live import faust_credentials

    cert, key = cert_pair(tmp_path, "worker")
    creds = faust_credentials(Settings(kafka_security_protocol="SSL", kafka_ssl_certfile=cert, kafka_ssl_keyfile=key))
    assert isinstance(creds.context, ssl.SSLContext)
    _, other_key = cert_pair(tmp_path, "other")
    with pytest.raises(ssl.SSLError):  # the pair is really loaded: a key of another certificate is refused
        faust_credentials(Settings(kafka_security_protocol="SSL", kafka_ssl_certfile=cert, kafka_ssl_keyfile=other_key))


def test_created_topics_are_replicated_as_configured() -> None:
    s = Settings(topic_replication_factor=3, topic_min_insync_replicas=2)
    topics = new_topics(s, existing=set())
    assert {t.topic for t in topics} == set(wanted_topics(s)) and s.dead_letter_topic in {t.topic for t in topics}
    assert all(t.replication_factor == 3 and t.config == {"min.insync.replicas": "2"} for t in topics)
    assert new_topics(s, existing=set(wanted_topics(s))) == []
    local = new_topics(Settings(), existing=set())
    assert all(t.replication_factor == 1 and t.config == {} for t in local)


def test_state_changelogs_are_replicated_as_configured(tmp_path: Path) -> None:
    from streams import faust_compat
    from streams.live import faust_app

    s = Settings(topic_replication_factor=3, topic_min_insync_replicas=2, state_dir=tmp_path)
    app = faust_app(s)
    table = faust_compat.state_table(app, "stations", 4, lambda o: b"", lambda b: None, s.topic_config())
    assert app.conf.topic_replication_factor == 3
    assert table.changelog_topic.config == {"min.insync.replicas": "2"}
    assert table.changelog_topic.replicas in (None, 3)  # None: the app's topic_replication_factor
