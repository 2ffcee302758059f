"""The splits' null group: active events that carry no value for a tracked key are kept in
`person_day_values` too, under the empty string (services/common/values.py `NO_VALUE`), one
row per key, person and day with their number. The triggers of migrations 0020, 0021 and 0025
then keep the group in `session_value_*`, `activity_value_daily` and `stickiness_value_periods`
like any value, so `/v1/activity`, `/v1/sessions` and `/v1/stickiness?breakdown=` report it
(`"value": null`) and a split's groups add up to the whole.

The fill gives each tracked key's person-days the events its values do not account for: every
active event counts once in `person_days` and at most once per key in `person_day_values`
(its value), so the difference is the events that carried none. The fill's insert runs the
rollups' triggers once, for all its rows. A key still being backfilled is recomputed person by
person by its walk anyway (services/metrics/breakdown_backfill.py), null group included.

Revision ID: 0027
Revises: 0026
"""

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

FILL = """
INSERT INTO person_day_values (project_id, key, value, day, person_id, events)
SELECT d.project_id, k.key, '', d.day, d.person_id, d.events - coalesce(v.events, 0)
FROM person_days d
JOIN breakdown_keys k ON k.project_id = d.project_id
LEFT JOIN (
    SELECT project_id, key, day, person_id, sum(events) AS events FROM person_day_values
    GROUP BY 1, 2, 3, 4
) v ON v.project_id = d.project_id AND v.key = k.key AND v.day = d.day
    AND v.person_id = d.person_id
WHERE d.events > coalesce(v.events, 0)
ORDER BY 1, 2, 4, 5
"""


def upgrade() -> None:
    op.execute(FILL)


def downgrade() -> None:
    op.execute("DELETE FROM person_day_values WHERE value = ''")
