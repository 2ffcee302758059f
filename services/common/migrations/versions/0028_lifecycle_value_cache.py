"""The lifecycle split by a breakdown value, kept per period once read, with what has changed
since: `/v1/lifecycle?breakdown=` recomputes only the periods whose inputs changed after it last
read them (services/gateway/queries/lifecycle.py), instead of windowing every person-period of
its range on every read (at 1M events, a month by day: gateway p95 396 ms against DuckDB's
46 ms over the raw events). A rollup kept by triggers read in 6 ms but cost the event load
12-35% (docs/performance.md, "Reads at the issues' scale"); this costs the load one small insert
per statement.

`lifecycle_value_cache` holds, per (project, key, kind, period), the counts per value as the
gateway computed them and the snapshot (`pg_snapshot`) it computed them in.

`lifecycle_value_changes` says which days' inputs changed, and in which transaction: a period's
counts are a function of the key's `person_day_values` rows in it and in the period before, and
of which of its persons have their first active day (`persons.first_day`) in it. So
- statement-level triggers on `person_day_values` INSERT and DELETE add (project, key, day,
  the transaction's id) for each day whose rows the statement added or removed (UPDATE only
  changes `events`; a dropped key's chunks are skipped like the other rollups' triggers,
  migration 0022, and the drop deletes the key's rows here);
- a row trigger on `persons` adds the old first day, for each tracked key, when a late event or
  a merge moves a person's first day earlier (their status in that period is no longer new).
A day's change touches its period and the one after, in each kind. Cached counts are current
when every change to those days was made by a transaction their snapshot sees
(`pg_visible_in_snapshot`), whatever order the transactions committed in.

The rows are keyed by transaction and only inserted (ON CONFLICT DO NOTHING for a transaction's
repeats): two batches never wait for each other's rows here, so no new lock order, no deadlock.
`lifecycle_values_prune(project, key)` keeps the table small: under a lock of the pair (tried,
not waited for: False when another holds it) it deletes the cached periods that a change
committed since their snapshot touches, and with them every committed change, in one statement
(one snapshot). The gateway calls it before it stores periods, holding the lock to its commit,
so that no older computation can store counts after the changes it missed were deleted; the
metrics service calls it every minute for pairs nobody reads
(services/metrics/lifecycle_changes.py).

Revision ID: 0028
Revises: 0027
"""

from alembic import op

from services.common.migrations.released import released

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

M0022 = released("0022_breakdown_key_drops.py")
M0025 = released("0025_stickiness_value_periods.py")

# The days of `rows` (the transition table), noted for this transaction.
NOTE = """
        INSERT INTO lifecycle_value_changes (project_id, key, day, xid)
        SELECT DISTINCT project_id, key, day, pg_current_xact_id() FROM {rows}
        ON CONFLICT DO NOTHING;"""

CHANGED_DAYS = f"""
CREATE FUNCTION lifecycle_values_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN{NOTE.format(rows="new_values")}
    ELSE{NOTE.format(rows="old_values")}
    END IF;
    RETURN NULL;
END
$$
"""

TRIGGERS = [
    ("insert", "NEW TABLE AS new_values", ""),
    ("delete", "OLD TABLE AS old_values", M0022.NOT_DROPPING),
]

FIRST_DAY_MOVED = """
CREATE FUNCTION lifecycle_first_day_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO lifecycle_value_changes (project_id, key, day, xid)
    SELECT OLD.project_id, k.key, OLD.first_day, pg_current_xact_id()
    FROM breakdown_keys k WHERE k.project_id = OLD.project_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$
"""

# xid8 and pg_snapshot, which SQLAlchemy has no types for.
TABLES = [
    """
CREATE TABLE lifecycle_value_changes (
    project_id int NOT NULL,
    key text NOT NULL,
    day date NOT NULL,
    xid xid8 NOT NULL,
    CONSTRAINT pk_lifecycle_value_changes PRIMARY KEY (project_id, key, day, xid)
)""",
    """
CREATE TABLE lifecycle_value_cache (
    project_id int NOT NULL,
    key text NOT NULL,
    kind text NOT NULL,
    period date NOT NULL,
    snapshot pg_snapshot NOT NULL,
    vals text[] NOT NULL,  -- the values, and per value:
    n_new bigint[] NOT NULL,
    n_returning bigint[] NOT NULL,
    n_resurrecting bigint[] NOT NULL,
    n_dormant bigint[] NOT NULL,  -- positive here
    CONSTRAINT pk_lifecycle_value_cache PRIMARY KEY (project_id, key, kind, period)
)""",
]

PRUNE = """
CREATE FUNCTION lifecycle_values_prune(p int, k text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended('lifecycle_values:' || p || ':' || k, 0))
    THEN
        RETURN false;
    END IF;
    WITH gone AS (
        DELETE FROM lifecycle_value_changes WHERE project_id = p AND key = k RETURNING day, xid
    ),
    touched AS (  -- a day's change touches its period and the next, in each kind
        SELECT DISTINCT t.kind, g.xid,
               CAST(date_trunc(t.kind, CAST(g.day AS timestamp))
                    + n.after * CAST('1 ' || t.kind AS interval) AS date) AS period
        FROM gone g
        CROSS JOIN (VALUES ('day'), ('week'), ('month')) AS t(kind)
        CROSS JOIN (VALUES (0), (1)) AS n(after)
    )
    DELETE FROM lifecycle_value_cache c USING touched t
    WHERE c.project_id = p AND c.key = k AND c.kind = t.kind AND c.period = t.period
      AND NOT pg_visible_in_snapshot(t.xid, c.snapshot);
    RETURN true;
END
$$
"""

# 0025's function, which also deletes the key's rows of these tables.
ROLLUP_DELETES = "    DELETE FROM stickiness_value_periods WHERE project_id = p AND key = k;\n"
assert ROLLUP_DELETES in M0025.DROP_CHUNK
DROP_CHUNK = M0025.DROP_CHUNK.replace(
    ROLLUP_DELETES,
    ROLLUP_DELETES
    + "    DELETE FROM lifecycle_value_cache WHERE project_id = p AND key = k;\n"
    + "    DELETE FROM lifecycle_value_changes WHERE project_id = p AND key = k;\n",
)


def upgrade() -> None:
    for table in TABLES:
        op.execute(table)
    op.execute(CHANGED_DAYS)
    for operation, tables, when in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER person_day_values_{operation}_lifecycle AFTER {operation.upper()}"
            f" ON person_day_values REFERENCING {tables} FOR EACH STATEMENT {when}"
            " EXECUTE FUNCTION lifecycle_values_changed()"
        )
    op.execute(FIRST_DAY_MOVED)
    op.execute(
        "CREATE TRIGGER persons_first_day_lifecycle AFTER UPDATE OF first_day ON persons"
        " FOR EACH ROW WHEN (OLD.first_day IS DISTINCT FROM NEW.first_day)"
        " EXECUTE FUNCTION lifecycle_first_day_moved()"
    )
    op.execute(PRUNE)
    op.execute(DROP_CHUNK)


def downgrade() -> None:
    op.execute(M0025.DROP_CHUNK)
    op.execute("DROP FUNCTION lifecycle_values_prune(int, text)")
    op.execute("DROP TRIGGER persons_first_day_lifecycle ON persons")
    op.execute("DROP FUNCTION lifecycle_first_day_moved()")
    for operation, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER person_day_values_{operation}_lifecycle ON person_day_values")
    op.execute("DROP FUNCTION lifecycle_values_changed()")
    op.drop_table("lifecycle_value_cache")
    op.drop_table("lifecycle_value_changes")
