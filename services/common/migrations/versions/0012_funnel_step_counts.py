"""Funnel step counts kept ahead of reads, so `/v1/funnels/{id}` reads no attempt rows.

A person counts once over a range [from, to], with their best attempt there (docs/funnels.md):
the deepest, then the earliest day. So an attempt of day d and depth k is its person's best for
exactly the ranges with

    prior_day < from <= d <= to < deeper_day

where `prior_day` is the person's latest earlier entry day with an attempt at least k deep
(-infinity: none) and `deeper_day` their earliest later entry day with a deeper one (infinity:
none). Any range holding some attempt of the person holds exactly one attempt passing that test.

`funnel_step_buckets` counts, per funnel, step i, day, prior_day, deeper_day and duration
bucket, the attempts that reached step i (the bucket of their seconds from step i-1 to step i;
step 1 is always bucket 0). A range's `users(i)` is the sum of step i's rows that pass the test,
and the cumulative counts over buckets find the bucket of each middle position of the median.
`funnel_step_seconds` keeps the same counts per exact second within a bucket (steps 2 and up),
so a median reads that one bucket's rows. Buckets are `funnel_seconds_bucket`: boundaries at
round durations, about 1.4 to 2 apart, so a bucket holds a small share of a step's attempts.

The metrics service (services/metrics/funnels/step_counts.py) subtracts each touched person's
contributions and adds them again whenever their attempts change, in the same transaction.
Filled from `funnel_attempts` here.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BUCKET = """
CREATE FUNCTION funnel_seconds_bucket(seconds int) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN width_bucket(seconds, '{1, 2, 3, 5, 7, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300,
    450, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800, 14400, 21600, 28800, 43200, 64800,
    86400, 129600, 172800, 259200, 345600, 432000, 518400, 604800, 864000, 1209600, 1814400,
    2592000, 3888000, 5184000, 6480000, 7776000}'::int[])
"""

# Every stored attempt, placed (a frozen copy of step_counts.py's PLACE over all attempts; ten
# steps at most).
PRIOR = ",\n               ".join(
    f"max(day) FILTER (WHERE depth >= {k}) OVER earlier" for k in range(1, 11)
)
DEEPER = ",\n               ".join(
    f"min(day) FILTER (WHERE depth > {k}) OVER later" for k in range(1, 11)
)
FILL = f"""
WITH attempts AS (SELECT funnel_id, person_id, day, depth, seconds FROM funnel_attempts),
placed AS (
    SELECT funnel_id, day, depth, seconds,
           coalesce((ARRAY[
               {PRIOR}
           ])[depth], '-infinity') AS prior_day,
           coalesce((ARRAY[
               {DEEPER}
           ])[depth], 'infinity') AS deeper_day
    FROM attempts
    WINDOW earlier AS (PARTITION BY funnel_id, person_id COLLATE "C" ORDER BY day
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
           later AS (PARTITION BY funnel_id, person_id COLLATE "C" ORDER BY day DESC
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
steps AS (
    SELECT p.funnel_id, s.step, p.day, p.prior_day, p.deeper_day, s.seconds
    FROM placed p CROSS JOIN LATERAL unnest(p.seconds) WITH ORDINALITY AS s(seconds, step)
    WHERE s.step <= p.depth
),
buckets AS (
    INSERT INTO funnel_step_buckets
        (funnel_id, step, day, prior_day, deeper_day, bucket, persons)
    SELECT funnel_id, step, day, prior_day, deeper_day, funnel_seconds_bucket(seconds), count(*)
    FROM steps
    GROUP BY 1, 2, 3, 4, 5, 6
)
INSERT INTO funnel_step_seconds
    (funnel_id, step, bucket, day, prior_day, deeper_day, seconds, persons)
SELECT funnel_id, step, funnel_seconds_bucket(seconds), day, prior_day, deeper_day, seconds,
       count(*)
FROM steps
WHERE step > 1
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""


def _funnel_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["funnel_id"], ["funnels.id"], name=f"fk_{table}_funnel_id_funnels", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "funnel_step_buckets",
        sa.Column("funnel_id", sa.Integer, nullable=False),
        sa.Column("step", sa.SmallInteger, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("prior_day", sa.Date, nullable=False),
        sa.Column("deeper_day", sa.Date, nullable=False),
        sa.Column("bucket", sa.SmallInteger, nullable=False),
        sa.Column("persons", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "funnel_id",
            "step",
            "day",
            "prior_day",
            "deeper_day",
            "bucket",
            name="pk_funnel_step_buckets",
        ),
        _funnel_fk("funnel_step_buckets"),
    )
    op.create_table(
        "funnel_step_seconds",
        sa.Column("funnel_id", sa.Integer, nullable=False),
        sa.Column("step", sa.SmallInteger, nullable=False),
        sa.Column("bucket", sa.SmallInteger, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("prior_day", sa.Date, nullable=False),
        sa.Column("deeper_day", sa.Date, nullable=False),
        sa.Column("seconds", sa.Integer, nullable=False),
        sa.Column("persons", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "funnel_id",
            "step",
            "bucket",
            "day",
            "prior_day",
            "deeper_day",
            "seconds",
            name="pk_funnel_step_seconds",
        ),
        _funnel_fk("funnel_step_seconds"),
    )
    op.execute(BUCKET)
    op.execute(FILL)


def downgrade() -> None:
    op.execute("DROP FUNCTION funnel_seconds_bucket(int)")
    op.drop_table("funnel_step_seconds")
    op.drop_table("funnel_step_buckets")
