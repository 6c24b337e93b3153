"""The macro expander behaves like Grafana + the ClickHouse plugin (cases from the plugin's behaviour)."""

from datetime import UTC, datetime

import pytest

from grafana.macros import ALL, MacroError, TimeRange, Variable, apply_conditional_all, expand, replace_variables

TR = TimeRange(datetime(2026, 1, 9, 6, 0, tzinfo=UTC), datetime(2026, 1, 9, 12, 0, tzinfo=UTC), interval_s=300)
FROM, TO = int(TR.start.timestamp()), int(TR.end.timestamp())


def vars_(**current: list[str] | str) -> dict[str, Variable]:
    return {k: Variable(k, v, options=("G1", "G2", "G3")) for k, v in current.items()}


def test_conditional_all_collapses_to_true_on_all_and_on_empty() -> None:
    sql = "WHERE $__conditionalAll(area IN ($area), $area) AND x = 1"
    assert apply_conditional_all(sql, vars_(area=[ALL])) == "WHERE 1=1 AND x = 1"
    assert apply_conditional_all(sql, vars_(area="")) == "WHERE 1=1 AND x = 1"
    assert apply_conditional_all(sql, vars_(area=["G1"])) == "WHERE area IN ($area) AND x = 1"


def test_conditional_all_keeps_nested_parentheses_and_handles_several() -> None:
    sql = ("$__conditionalAll(lower(area) IN (lower($area)), $area) AND "
           "$__conditionalAll(t IN (${vehicle_type}), ${vehicle_type})")
    out = apply_conditional_all(sql, vars_(area=["G1"], vehicle_type=[ALL]))
    assert out == "lower(area) IN (lower($area)) AND 1=1"


def test_variables_are_formatted_like_the_plugin() -> None:
    v = vars_(area=["G1", "G2"], single="G3", one=["G1"])
    assert replace_variables("IN ($area)", v) == "IN ('G1','G2')"
    assert replace_variables("IN (${area})", v) == "IN ('G1','G2')"
    assert replace_variables("= $single", v) == "= G3"  # a single value is inserted unquoted
    assert replace_variables("IN ($one)", v) == "IN ('G1')"  # multi with one selection stays an array
    assert replace_variables("IN (${area:csv})", v) == "IN (G1,G2)"
    assert replace_variables("= ${single:singlequote}", v) == "= 'G3'"
    assert replace_variables("IN ($area)", vars_(area=[ALL])) == "IN ('G1','G2','G3')"
    custom = {"area": Variable("area", [ALL], options=("G1",), all_value=".*")}
    assert replace_variables("$area", custom) == ".*"
    assert replace_variables("$__timeFilter(t) $unknown", v) == "$__timeFilter(t) $unknown"


def test_backend_macros() -> None:
    sql = "SELECT $__interval_s WHERE $__timeFilter(window_start) AND d >= $__fromTime AND d <= $__toTime"
    assert expand(sql, {}, TR) == (
        f"SELECT 300 WHERE window_start >= toDateTime({FROM}) AND window_start <= toDateTime({TO}) "
        f"AND d >= toDateTime({FROM}) AND d <= toDateTime({TO})")
    assert expand("$__dateFilter(day)", {}, TR) == "day >= toDate('2026-01-09') AND day <= toDate('2026-01-09')"
    assert expand("$__timeInterval(t)", {}, TR) == "toStartOfInterval(toDateTime(t), INTERVAL 300 second)"


def test_anything_left_unexpanded_is_an_error() -> None:
    with pytest.raises(MacroError, match=r"\$nope"):
        expand("SELECT $nope", {}, TR)
    with pytest.raises(MacroError, match="expects 1 argument"):
        expand("$__timeFilter(a, b)", {}, TR)
    with pytest.raises(MacroError, match="not supported"):
        replace_variables("${area:regex}", vars_(area=["G1"]))
