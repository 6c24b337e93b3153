"""Expand a panel's SQL exactly as Grafana and the ClickHouse plugin (v4) do before ClickHouse sees it,
so tests can run every panel query for real.

Three steps, in the plugin's order:
1. ``$__conditionalAll(condition, $var)`` (frontend, ``Datasource.applyConditionalAll``): the condition,
   or ``1=1`` when the variable's current value is All (``$__all``) or empty;
2. template variables (Grafana's ``templateSrv.replace`` with the plugin's ``format``): a multi-value
   becomes ``'a','b'`` (no escaping), a single value is inserted as is; ``${var:singlequote}``,
   ``${var:csv}`` and ``${var:percentencode}`` follow Grafana's formatters; All expands to every option (or the
   custom all value);
3. backend macros (``pkg/macros/macros.go``): ``$__timeFilter(col)``, ``$__dateFilter(col)``,
   ``$__fromTime``, ``$__toTime``, ``$__interval_s``, ``$__timeInterval(col)``.
Anything left that looks like a variable or macro is an error, never silently sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

ALL = "$__all"


class MacroError(ValueError):
    pass


@dataclass(frozen=True)
class Variable:
    """A template variable's state: ``current`` is what is selected (``[ALL]`` for All)."""

    name: str
    current: Sequence[str] | str
    options: Sequence[str] = field(default_factory=tuple)
    all_value: str | None = None

    def is_all(self) -> bool:
        values = [self.current] if isinstance(self.current, str) else list(self.current)
        return values == [ALL]

    def current_text(self) -> str:
        # what the plugin compares: `current.value.toString()` (a JS array joins with ",")
        return self.current if isinstance(self.current, str) else ",".join(self.current)


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    interval_s: int = 60


def _macro_args(sql: str, open_paren: int) -> tuple[list[str], int] | None:
    """Arguments of the call whose '(' is at ``open_paren`` (split at top-level commas), and the index
    just after its ')'."""
    depth, last, args = 0, open_paren + 1, []
    for i in range(open_paren, len(sql)):
        c = sql[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[last:i])
                return args, i + 1
        elif c == "," and depth == 1:
            args.append(sql[last:i])
            last = i + 1
    return None


_VAR_IN_ARG = re.compile(r"(?<=\$\{)\w+(?=\})|(?<=\$)\w+")


def apply_conditional_all(sql: str, variables: Mapping[str, Variable]) -> str:
    macro = "$__conditionalAll("
    at = sql.rfind(macro)
    while at != -1:
        parsed = _macro_args(sql, at + len(macro) - 1)
        if parsed is None or len(parsed[0]) != 2:
            return sql  # the plugin gives up the same way
        (condition, var_arg), end = parsed
        phrase = condition
        found = _VAR_IN_ARG.search(var_arg.strip())
        if found and found.group(0) in variables:
            var = variables[found.group(0)]
            if var.current_text() in ("", ALL):
                phrase = "1=1"
        sql = sql[:at] + phrase + sql[end:]
        at = sql.rfind(macro)
    return sql


_TEMPLATE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}")


def _format(values: Sequence[str] | str, fmt: str | None) -> str:
    if fmt is None:  # the plugin's format(): arrays quoted and joined, scalars as they are
        return "'" + "','".join(values) + "'" if not isinstance(values, str) else values
    items = [values] if isinstance(values, str) else list(values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in items)
    if fmt == "percentencode":  # Grafana's encodeURIComponentStrict; several values as {a,b}, like glob
        text = items[0] if isinstance(values, str) else "{" + ",".join(items) + "}"
        return quote(text, safe="")  # leaves A-Z a-z 0-9 - _ . ~ as they are, like the strict encoder
    if fmt == "csv":
        return ",".join(items)
    if fmt == "raw":
        return ",".join(items)
    raise MacroError(f"variable format {fmt!r} is not supported by the expander")


def replace_variables(sql: str, variables: Mapping[str, Variable]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        var = variables.get(name)
        if var is None:
            return m.group(0)  # not a variable (e.g. a backend macro): left for the next step
        if var.is_all():
            if var.all_value is not None:
                return var.all_value
            return _format(list(var.options), fmt)
        return _format(var.current, fmt)

    return _TEMPLATE.sub(sub, sql)


def _dt(t: datetime) -> str:
    return f"toDateTime({int(t.timestamp())})"


def _date(t: datetime) -> str:
    return f"toDate('{t.astimezone(UTC).strftime('%Y-%m-%d')}')"


def apply_backend_macros(sql: str, tr: TimeRange) -> str:
    def one_column(name: str, args: list[str]) -> str:
        if len(args) != 1 or not args[0].strip():
            raise MacroError(f"$__{name} expects 1 argument, received {len(args)}")
        return args[0].strip()

    expanders = {
        "timeFilter": lambda a: (lambda c: f"{c} >= {_dt(tr.start)} AND {c} <= {_dt(tr.end)}")(
            one_column("timeFilter", a)),
        "dateFilter": lambda a: (lambda c: f"{c} >= {_date(tr.start)} AND {c} <= {_date(tr.end)}")(
            one_column("dateFilter", a)),
        "timeInterval": lambda a: f"toStartOfInterval(toDateTime({one_column('timeInterval', a)}), "
                                  f"INTERVAL {max(tr.interval_s, 1)} second)",
        "fromTime": lambda a: _dt(tr.start),
        "toTime": lambda a: _dt(tr.end),
        "interval_s": lambda a: str(max(tr.interval_s, 1)),
    }
    pattern = re.compile(r"\$__(" + "|".join(sorted(expanders, key=len, reverse=True)) + r")\b")
    while (m := pattern.search(sql)) is not None:
        name, end, args = m.group(1), m.end(), []
        if end < len(sql) and sql[end] == "(":
            parsed = _macro_args(sql, end)
            if parsed is None:
                raise MacroError(f"unbalanced parentheses after $__{name}")
            args, end = parsed
        sql = sql[:m.start()] + expanders[name](args) + sql[end:]
    return sql


_LEFTOVER = re.compile(r"\$\w+|\$\{[^}]*\}|\[\[\w+")


def expand(sql: str, variables: Mapping[str, Variable], tr: TimeRange) -> str:
    out = apply_backend_macros(replace_variables(apply_conditional_all(sql, variables), variables), tr)
    left = _LEFTOVER.search(out)
    if left:
        raise MacroError(f"unexpanded {left.group(0)!r} in: {out}")
    return out
