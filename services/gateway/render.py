"""One response shape per read: JSON by default, CSV with `?format=csv` (rows only)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any, Literal, get_args, get_origin

import orjson
from fastapi.responses import Response
from pydantic import BaseModel

from services.common.http import JsonResponse

Format = Literal["json", "csv"]


def columns(model: type[BaseModel]) -> list[str]:
    """A row model's column names as serialized (a field named `from_` is shown as `from`)."""
    return [f.serialization_alias or name for name, f in model.model_fields.items()]


def to_csv(rows: Sequence[BaseModel], fields: Sequence[str] | None = None) -> str:
    """A header and one line per row; `fields` gives the header when there are no rows."""
    out = io.StringIO()
    if rows:
        fields = columns(type(rows[0]))
    if fields:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(fields)
        for row in rows:
            dumped = row.model_dump(mode="json")
            writer.writerow(["" if dumped[f] is None else _cell(dumped[f]) for f in fields])
    return out.getvalue()


# A spreadsheet runs a cell starting with one of these as a formula; event names and rejected
# payloads come from SDK users, so such text is prefixed with a quote (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return str(value)


def _row_fields(body: BaseModel) -> list[str] | None:
    """The columns of the body's list of rows, read from its model (for an empty list)."""
    for field in type(body).model_fields.values():
        if get_origin(field.annotation) is list:
            (item,) = get_args(field.annotation)
            if isinstance(item, type) and issubclass(item, BaseModel):
                return columns(item)
    return None


def csv_response(rows: Sequence[BaseModel], fields: Sequence[str] | None, name: str) -> Response:
    """`rows` as a CSV download named `name`.csv; `fields` gives the header when there are none."""
    return Response(
        to_csv(rows, fields),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def respond(
    fmt: Format,
    body: BaseModel,
    rows: Sequence[BaseModel],
    name: str,
    exclude: set[str] | None = None,
) -> Response:
    """`body` as JSON (without the fields in `exclude`), or `rows` as CSV."""
    if fmt == "csv":
        return csv_response(rows, _row_fields(body), name)
    return JsonResponse(body.model_dump(mode="json", exclude=exclude))


def respond_split(
    fmt: Format, body: BaseModel, rows: Sequence[BaseModel], row: type[BaseModel], name: str
) -> Response:
    """A read split by a breakdown: `body` as JSON, or `rows` as CSV under `row`'s columns (the
    header also when there are no rows; `respond` would take the body's first list's)."""
    if fmt == "csv":
        return csv_response(rows, columns(row), name)
    return JsonResponse(body.model_dump(mode="json"))
