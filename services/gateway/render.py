"""One response shape per read: JSON by default, CSV with `?format=csv` (rows only)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any, Literal

from fastapi.responses import Response
from pydantic import BaseModel

from services.common.http import JsonResponse

Format = Literal["json", "csv"]


def to_csv(rows: Sequence[BaseModel]) -> str:
    out = io.StringIO()
    if rows:
        fields = list(type(rows[0]).model_fields)
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(fields)
        for row in rows:
            dumped = row.model_dump(mode="json")
            writer.writerow(["" if dumped[f] is None else _cell(dumped[f]) for f in fields])
    return out.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def respond(fmt: Format, body: BaseModel, rows: Sequence[BaseModel], name: str) -> Response:
    if fmt == "csv":
        return Response(
            to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return JsonResponse(body.model_dump(mode="json"))
