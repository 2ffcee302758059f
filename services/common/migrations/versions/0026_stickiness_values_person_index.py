"""The per-value stickiness trigger (migration 0025) counts a person's days of a period through
the person's index, as it meant to, whatever PostgreSQL expects of a value.

For each (person, value, period) a statement changes, the trigger counts the person's rows of
that value in the period. PostgreSQL could read them through either index: (project_id,
person_id, day), a few rows, or the primary key (project_id, key, value, day, person_id), where
the person is only a filter, so that it reads every person's rows of the value in the period.
Estimating both at one row, it took the primary key; for a value most persons carry (the null
group of migration 0027, or a `free` plan) each lookup read the whole period's rows of it: 1.1
s for one statement of 8,701 lookups, 6-7 s of a breakdown walk that took 1.5 s without it,
after `make bench`'s earlier benchmarks had filled the database. The key and value are now
compared with `IS NOT DISTINCT FROM` (both columns are NOT NULL, so it means `=`), which no
index can use: the primary key then narrows by project only, and the person's index is the
cheaper plan, a range of the person's days per lookup.

Revision ID: 0026
Revises: 0025
"""

from alembic import op

from services.common.migrations.released import released

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

M0025 = released("0025_stickiness_value_periods.py")

BY_VALUE = "              AND v.key = c.key AND v.value = c.value\n"
BY_VALUE_NOT_INDEXED = (
    "              AND v.key IS NOT DISTINCT FROM c.key\n"
    "              AND v.value IS NOT DISTINCT FROM c.value\n"
)
assert M0025.TRIGGER_FUNCTION.count(BY_VALUE) == 2  # the insert's and the delete's
TRIGGER_FUNCTION = M0025.TRIGGER_FUNCTION.replace(
    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1
).replace(BY_VALUE, BY_VALUE_NOT_INDEXED)


def upgrade() -> None:
    op.execute(TRIGGER_FUNCTION)


def downgrade() -> None:
    op.execute(M0025.TRIGGER_FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
