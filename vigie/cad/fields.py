"""What a mapping reads from a row: a *field*, wherever the mapping names a column.

- a column name: ``"Unit ID"``;
- a template over columns: ``"{Date} {Mobilised}"`` (a date column joined with a time-of-day column),
  ``"{Station}-{Call}"`` (an id built from two); empty (missing) when any of its columns is;
- a table for more: ``{ column = "..." }`` or ``{ template = "..." }`` or ``{ const = "VSAV" }`` (a value the
  export does not have), then in this order ``regex`` (keep the first group, or the whole match, of the first
  match; no match: empty), ``normalise`` (``strip``, ``collapse_spaces``, ``upper``, ``lower``, ``ascii``: accents
  dropped, ``slug``: lower case, runs of other characters one ``-``),
  ``lookup`` (value -> value, inline; ``lookup_file = "stations.csv"``: a two-column CSV beside the mapping,
  header ``key,value``) with ``lookup_default`` for a value not in it (else the value is kept), and ``default``
  for an empty result.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_REFERENCE = re.compile(r"\{([^{}]+)\}")
Normaliser = Literal["strip", "collapse_spaces", "upper", "lower", "ascii", "slug"]
_NORMALISE = {
    "ascii": lambda v: unicodedata.normalize("NFKD", v).encode("ascii", "ignore").decode(),
    "strip": str.strip,
    "collapse_spaces": lambda v: " ".join(v.split()),
    "upper": str.upper,
    "lower": str.lower,
    "slug": lambda v: re.sub(r"[^A-Za-z0-9]+", "-", v).strip("-").lower(),
}


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str | None = None
    template: str | None = None
    const: str | None = None
    regex: str | None = None
    normalise: list[Normaliser] = Field(default_factory=list)
    lookup: dict[str, str] = Field(default_factory=dict)
    lookup_file: str | None = None  # read into ``lookup`` when the mapping loads (here for the JSON Schema)
    lookup_default: str | None = None
    default: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        sources = [k for k in ("column", "template", "const") if getattr(self, k) is not None]
        if len(sources) != 1:
            raise ValueError(f"a field takes its value from exactly one of column, template, const (got "
                             f"{sources or 'none'})")
        return self

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            re.compile(v)
        return v


Field_ = str | FieldSpec


def columns_of(spec: Field_ | None) -> list[str]:
    """The CSV columns a field reads."""
    if spec is None:
        return []
    if isinstance(spec, str):
        refs = _REFERENCE.findall(spec)
        return refs if refs else [spec]
    if spec.column is not None:
        return [spec.column]
    return _REFERENCE.findall(spec.template or "")


def _fill(template: str, row: dict[str, str]) -> str:
    parts = [row.get(name, "").strip() for name in _REFERENCE.findall(template)]
    if not all(parts):
        return ""  # a column empty: the value is missing (a date without its time is no time)
    return _REFERENCE.sub(lambda m: row.get(m.group(1), "").strip(), template)


def value(spec: Field_ | None, row: dict[str, str]) -> str:
    """The field's value in ``row`` ("" when missing)."""
    if spec is None:
        return ""
    if isinstance(spec, str):
        return _fill(spec, row) if _REFERENCE.search(spec) else row.get(spec, "").strip()
    out = spec.const if spec.const is not None else (
        row.get(spec.column, "").strip() if spec.column is not None else _fill(spec.template or "", row))
    if spec.regex is not None and out:
        m = re.search(spec.regex, out)
        out = (m.group(1) if m.groups() else m.group(0)) if m else ""
    for name in spec.normalise:
        out = _NORMALISE[name](out)
    if spec.lookup and out:
        out = spec.lookup.get(out, spec.lookup_default if spec.lookup_default is not None else out)
    return out or (spec.default or "")
