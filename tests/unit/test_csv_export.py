"""CSV export (`?format=csv`) of the read endpoints: header, cells, spreadsheet safety."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel

from services.gateway.render import respond, to_csv


class Row(BaseModel):
    day: date
    event: str
    count: int
    histogram: list[int]
    payload: Any = None
    share: float | None = None


class Body(BaseModel):
    rows: list[Row]
    freshness: dict[str, int]


def row(**changes: Any) -> Row:
    values: dict[str, Any] = {
        "day": date(2026, 1, 2),
        "event": "Signed Up",
        "count": 3,
        "histogram": [4, 0, 1],
    }
    return Row(**{**values, **changes})


def test_respond_csv_has_a_header_one_line_per_row_and_a_file_name() -> None:
    rows = [row(), row(event="Order, Completed", count=-2, share=0.5)]
    response = respond("csv", Body(rows=rows, freshness={"lag": 0}), rows, "events")
    assert response.media_type == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="events.csv"'
    assert bytes(response.body).decode().splitlines() == [
        "day,event,count,histogram,payload,share",
        "2026-01-02,Signed Up,3,4 0 1,,",
        '2026-01-02,"Order, Completed",-2,4 0 1,,0.5',
    ]


def test_json_is_the_default_and_keeps_the_whole_body() -> None:
    rows = [row()]
    response = respond("json", Body(rows=rows, freshness={"lag": 0}), rows, "events")
    assert response.media_type == "application/json"
    assert bytes(response.body) == (
        b'{"rows":[{"day":"2026-01-02","event":"Signed Up","count":3,"histogram":[4,0,1],'
        b'"payload":null,"share":null}],"freshness":{"lag":0}}'
    )


def test_no_rows_still_gives_the_header() -> None:
    response = respond("csv", Body(rows=[], freshness={}), [], "events")
    assert bytes(response.body) == b"day,event,count,histogram,payload,share\n"
    assert to_csv([]) == ""  # without a model there are no columns to name


def test_text_a_spreadsheet_would_run_as_a_formula_is_quoted() -> None:
    lines = to_csv(
        [row(event="=HYPERLINK(1)"), row(event="+1"), row(event="-x"), row(event="@SUM(A1)")]
    ).splitlines()
    assert [line.split(",")[1] for line in lines[1:]] == [
        "'=HYPERLINK(1)",
        "'+1",
        "'-x",
        "'@SUM(A1)",
    ]
    # Numbers stay numbers: negative counts (lifecycle's dormant) are not text.
    assert to_csv([row(count=-5)]).splitlines()[1].split(",")[2] == "-5"


def test_nested_values_are_json_quotes_and_newlines_are_escaped() -> None:
    data = to_csv([row(payload={"a": [1, "b"]}, event='say "hi"\nthere')]).split("\n", 1)[1]
    assert data == '2026-01-02,"say ""hi""\nthere",3,4 0 1,"{""a"":[1,""b""]}",\n'
