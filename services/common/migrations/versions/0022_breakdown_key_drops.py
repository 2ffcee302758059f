"""A dropped breakdown key's values go in the background, a chunk per transaction, so that
dropping a key of a large project neither holds a request past the gateway's statement timeout
nor locks the project for the whole delete.

`breakdown_key_drops` lists the (project, key) pairs whose `person_day_values` are still to be
deleted. Dropping a key (`DELETE /v1/breakdowns/{key}`, or a configured key no longer listed)
deletes its `breakdown_keys` row and adds one here, in one transaction: from then on no batch,
read or walk sees the key. The metrics service deletes the values in chunks
(services/metrics/key_drops.py) and removes the row with the last one; until then the key cannot
be tracked again in that project (its values would meet the ones being deleted).

`drop_breakdown_values(project, key, rows)` replaces migration 0021's two-argument function: it
deletes at most `rows` of the key's values and says how many, and deletes the key's per-value
rollup rows (0020, 0021) itself. Its DELETE names the key in `pulse.dropping_key`, and the
rollups' DELETE triggers on `person_day_values` now do not fire while it is set (a WHEN
condition): their wholesale branch for a dropped key, kept in their functions, was not enough,
as their subtraction statements still planned a scan of the whole table for the chunk's rows
(50,000 rows of a 1M-row key took 5 s a chunk; the chunks of the key, 57 s in all).

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# A chunk is the key's first `lim` rows in primary key order, deleted as one range of that
# key: the row that ends it found by the index, then every row up to it (fewer than `lim` rows
# left: all of them). Then the key's rollup rows, which the rows still there until the last
# chunk may have brought back between chunks (services/metrics/key_drops.py).
DROP_CHUNK = """
CREATE FUNCTION drop_breakdown_values(p int, k text, lim int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    last record;
    dropped int;
BEGIN
    PERFORM set_config('pulse.dropping_key', k, true);
    SELECT value, day, person_id INTO last FROM person_day_values
    WHERE project_id = p AND key = k
    ORDER BY value, day, person_id OFFSET lim - 1 LIMIT 1;
    IF FOUND THEN
        DELETE FROM person_day_values
        WHERE project_id = p AND key = k
          AND (value, day, person_id) <= (last.value, last.day, last.person_id);
    ELSE
        DELETE FROM person_day_values WHERE project_id = p AND key = k;
    END IF;
    GET DIAGNOSTICS dropped = ROW_COUNT;
    PERFORM set_config('pulse.dropping_key', '', true);
    DELETE FROM activity_value_daily WHERE project_id = p AND key = k;
    DELETE FROM session_value_minutes WHERE project_id = p AND key = k;
    DELETE FROM session_value_durations WHERE project_id = p AND key = k;
    RETURN dropped;
END
$$
"""

# Migration 0021's, for the downgrade.
DROP_ALL = """
CREATE FUNCTION drop_breakdown_values(p int, k text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('pulse.dropping_key', k, true);
    DELETE FROM person_day_values WHERE project_id = p AND key = k;
    PERFORM set_config('pulse.dropping_key', '', true);
END
$$
"""

# The rollups' DELETE triggers on person_day_values (migrations 0020 and 0021) and functions.
DELETE_TRIGGERS = [
    ("person_day_values_delete_session_values", "session_values_track_values"),
    ("person_day_values_delete_activity", "activity_values_track"),
]
NOT_DROPPING = "WHEN (coalesce(current_setting('pulse.dropping_key', true), '') = '')"


def _delete_triggers(when: str) -> None:
    for name, function in DELETE_TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON person_day_values")
        op.execute(
            f"CREATE TRIGGER {name} AFTER DELETE ON person_day_values"
            f" REFERENCING OLD TABLE AS old_values FOR EACH STATEMENT {when}"
            f" EXECUTE FUNCTION {function}()"
        )


def upgrade() -> None:
    op.create_table(
        "breakdown_key_drops",
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column(
            "dropped_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("project_id", "key"),
    )
    op.execute("DROP FUNCTION drop_breakdown_values(int, text)")
    op.execute(DROP_CHUNK)
    _delete_triggers(NOT_DROPPING)


def downgrade() -> None:
    # What is still to drop is dropped at once, as before.
    _delete_triggers("")
    op.execute("DROP FUNCTION drop_breakdown_values(int, text, int)")
    op.execute(DROP_ALL)
    op.execute("SELECT drop_breakdown_values(project_id, key) FROM breakdown_key_drops")
    op.drop_table("breakdown_key_drops")
