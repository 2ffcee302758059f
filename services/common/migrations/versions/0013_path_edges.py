"""Paths kept as edge counts, so `/v1/paths` reads no event rows.

`path_edges` counts persons per (project, anchor event, direction, last_start, prev_day,
step_day, step, source, target): the edge counts for the ranges [from, to] with
prev_day < from <= last_start and step_day <= to (services/metrics/aggregates/paths.py says
why that decomposes every range's paths). `prev_day` is '-infinity' for a person's first run of
the anchor event. `path_tails` keeps each person's last runs, so the metrics service appends
in-order events without reading the archive.

Filled here from the whole archive of active events, streamed a person at a time, by the
service's own functions (paths.py): the fill must give exactly what the service would have
kept, and it is plain Python over ordered rows, not SQL that a later revision could freeze a
copy of.

Revision ID: 0013
Revises: 0012
"""

from collections import Counter
from itertools import groupby
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

from services.metrics.aggregates.paths import EdgeKey, Tail, edge_columns, history_edges, in_order

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

EVENTS = """
SELECT DISTINCT i.project_id, i.person_id, extract(epoch FROM a.ts)::bigint AS second, a.event
FROM active_events a
JOIN identities i ON i.project_id = a.project_id AND i.distinct_id = a.distinct_id
ORDER BY 1, 2
"""

# Persons come in order, but edges of different persons share keys: each flush adds to the rows.
ADD_EDGES = """
INSERT INTO path_edges AS e
SELECT * FROM unnest(CAST(:c0 AS int[]), CAST(:c1 AS text[]), CAST(:c2 AS bool[]),
                     CAST(:c3 AS date[]), CAST(:c4 AS date[]), CAST(:c5 AS date[]),
                     CAST(:c6 AS int[]), CAST(:c7 AS text[]), CAST(:c8 AS text[]),
                     CAST(:c9 AS int[]))
ON CONFLICT ON CONSTRAINT pk_path_edges DO UPDATE SET persons = e.persons + excluded.persons
"""

INSERT_TAILS = """
INSERT INTO path_tails
SELECT * FROM unnest(CAST(:project AS int[]), CAST(:person AS text[]), CAST(:tail AS jsonb[]))
"""

CHUNK = 50_000
# Edge deltas summed in memory before they are added to the table: the archive is streamed, so
# memory stays bounded whatever its size.
EDGES_IN_MEMORY = 1_000_000


def upgrade() -> None:
    op.create_table(
        "path_edges",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("anchor", sa.Text, nullable=False),
        sa.Column("after", sa.Boolean, nullable=False),
        sa.Column("last_start", sa.Date, nullable=False),
        sa.Column("prev_day", sa.Date, nullable=False),
        sa.Column("step_day", sa.Date, nullable=False),
        sa.Column("step", sa.SmallInteger, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("persons", sa.Integer, nullable=False),
        # A read takes one anchor's rows with last_start >= its first day.
        sa.PrimaryKeyConstraint(
            "project_id",
            "anchor",
            "after",
            "last_start",
            "prev_day",
            "step_day",
            "step",
            "source",
            "target",
            name="pk_path_edges",
        ),
    )
    op.create_table(
        "path_tails",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("tail", sa.dialects.postgresql.JSONB, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "person_id", name="pk_path_tails"),
    )
    _fill()


def _fill() -> None:
    bind = op.get_bind()
    zones = {
        r.id: ZoneInfo(r.timezone)
        for r in bind.execute(sa.text("SELECT id, timezone FROM projects"))
    }
    counts: Counter[EdgeKey] = Counter()
    tails: list[tuple[int, str, Tail]] = []
    # Options on the statement: on the connection they would outlive the fill (SQLAlchemy 2).
    query = sa.text(EVENTS).execution_options(stream_results=True, yield_per=CHUNK)
    rows = bind.execute(query)
    for (project_id, person_id), events in groupby(rows, key=lambda r: (r[0], r[1])):
        zone = zones[project_id]
        ordered = in_order(((r.second, r.event) for r in events), zone)
        tails.append((project_id, person_id, history_edges(counts, project_id, ordered, 1)))
        if len(tails) >= CHUNK:
            _insert_tails(tails)
        if len(counts) >= EDGES_IN_MEMORY:
            _add_edges(counts)
    _insert_tails(tails)
    _add_edges(counts)


def _add_edges(counts: Counter[EdgeKey]) -> None:
    edges = sorted(counts.items())
    for at in range(0, len(edges), CHUNK):
        columns = edge_columns(edges[at : at + CHUNK])
        op.get_bind().execute(sa.text(ADD_EDGES), {f"c{i}": c for i, c in enumerate(columns)})
    counts.clear()


def _insert_tails(tails: list[tuple[int, str, Tail]]) -> None:
    if tails:
        op.get_bind().execute(
            sa.text(INSERT_TAILS),
            {
                "project": [t[0] for t in tails],
                "person": [t[1] for t in tails],
                "tail": [t[2].encode() for t in tails],
            },
        )
        tails.clear()


def downgrade() -> None:
    op.drop_table("path_tails")
    op.drop_table("path_edges")
