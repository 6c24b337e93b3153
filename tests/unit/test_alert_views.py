"""``alerts_current`` (sinks/migrations/0007, 0008) on the current engine, with rows stated by hand: each alert's
latest transition, the acknowledgement of its episode, the silence in force. (The same view runs on 18.16 in
the integration tests.)"""

import pytest

from tests.unit.test_sql_portability import DB, chdb  # noqa: F401  (the migrated database)

pytest.importorskip("chdb.session")


def ts(s: int) -> str:
    return f"toDateTime({1_770_000_000 + s})"


def test_the_episode_acknowledgement_and_the_silence_in_force(chdb) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    alerts = [  # (scope, transition, at)
        ("A/VSAV", "pending", 100), ("A/VSAV", "firing", 100), ("A/VSAV", "resolved", 300),
        ("A/VSAV", "pending", 500), ("A/VSAV", "firing", 560), ("B/VSAV", "pending", 100),
        ("B/VSAV", "firing", 100),
    ]
    chdb.query(f"INSERT INTO {DB}.alerts (rule, severity, measure, scope, scope_key, area, station_id, subject, "
               "transition, at, value, fire_at, message) VALUES " + ", ".join(
                   f"('no-vsav', 'critical', 'available', 'area', '{k}', '{k[0]}', '', 'VSAV', '{tr}', {ts(at)}, 0, 0, "
                   f"'none in {k[0]}')" for k, tr, at in alerts))
    actions = [  # (scope, action, at, until, by, why)
        ("A/VSAV", "acknowledge", 150, 0, "op1", ""),  # the previous episode's
        ("A/VSAV", "acknowledge", 520, 0, "op2", ""),  # this one's, while pending
        ("A/VSAV", "silence", 530, 900, "op3", "road works"),
        ("B/VSAV", "acknowledge", 50, 0, "op4", ""),  # before its episode
        ("B/VSAV", "silence", 60, 200, "op5", "drill"),
        ("B/VSAV", "unsilence", 80, 0, "op5", ""),
    ]
    chdb.query(f"INSERT INTO {DB}.alert_actions (event_id, at, action, rule, scope_key, until, by, why) VALUES "
               + ", ".join(f"('a{i}', {ts(at)}, '{a}', 'no-vsav', '{k}', {ts(u) if u else 'toDateTime(0)'}, '{by}', "
                           f"'{why}')" for i, (k, a, at, u, by, why) in enumerate(actions)))
    rows = chdb.query(
        f"SELECT scope_key, state, toUInt32(since) - 1770000000, toUInt32(episode_start) - 1770000000, "
        f"acknowledged_by, toUInt32(acknowledged_at), toUInt32(silenced_until), silenced_by, silence_why "
        f"FROM {DB}.alerts_current WHERE rule = 'no-vsav' ORDER BY scope_key", "TabSeparated").data()
    a, b = (line.split("\t") for line in rows.splitlines())
    assert a == ["A/VSAV", "firing", "560", "500", "op2", str(1_770_000_520), str(1_770_000_900), "op3", "road works"]
    assert b[:7] == ["B/VSAV", "firing", "100", "100", "", "0", "0"]  # acknowledged before, silence lifted


def test_two_actions_within_one_second_are_ordered_by_their_milliseconds(chdb) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    chdb.query(f"INSERT INTO {DB}.alerts (rule, severity, measure, scope, scope_key, area, station_id, subject, "
               "transition, at, value, fire_at, message) VALUES "
               f"('ms-rule', 'critical', 'available', 'area', 'C/VSAV', 'C', '', 'VSAV', 'firing', {ts(100)}, 0, 0, "
               "'none in C'), "
               f"('ms-rule', 'critical', 'available', 'area', 'D/VSAV', 'D', '', 'VSAV', 'firing', {ts(100)}, 0, 0, "
               "'none in D')")
    ms = (1_770_000_000 + 600) * 1000
    actions = [  # (event id, scope, action, until, at_ms): set and lifted in one second (C), lifted then set (D)
        ("m1", "C/VSAV", "silence", ts(9000), ms + 100), ("m2", "C/VSAV", "unsilence", "toDateTime(0)", ms + 900),
        ("m3", "D/VSAV", "unsilence", "toDateTime(0)", ms + 100), ("m4", "D/VSAV", "silence", ts(9000), ms + 900),
    ]
    chdb.query(f"INSERT INTO {DB}.alert_actions (event_id, at, action, rule, scope_key, until, by, why, at_ms) VALUES "
               + ", ".join(f"('{e}', {ts(600)}, '{a}', 'ms-rule', '{k}', {u}, 'op', 'w', {m})"
                           for e, k, a, u, m in actions))
    rows = chdb.query(f"SELECT scope_key, toUInt32(silenced_until) FROM {DB}.alerts_current WHERE rule = 'ms-rule' "
                      "ORDER BY scope_key", "TabSeparated").data()
    assert rows.splitlines() == ["C/VSAV\t0", f"D/VSAV\t{1_770_009_000}"]
