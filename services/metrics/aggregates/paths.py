"""Paths (SPEC §4) kept as edge counts, so /v1/paths sums a few thousand rows instead of
ordering every event of its range.

The read's rule (services/gateway/queries/paths.py): over a person's active events whose day is
in [from, to], in (time, event "C") order with consecutive repeats collapsed into one step,
anchor at their first `anchor` event and take the next `depth` steps (or the `depth` before).

Why it decomposes. Collapse a person's whole history into *runs* (maximal repeats of one event),
each with its first and last day. The events of a range are a stretch of that history, so its
steps are the runs that have an event in it, cut to it. The anchor of [from, to] is the first
run of the anchor event with an event on or after `from`: run j is it exactly when
prev < from <= last_j, where prev is the last day of the previous run of the same event.
- After it, step k is run j+k, inside the range exactly when its first day is <= to (runs after
  the anchor start after `from`).
- Before it, step k is run j-k, inside the range exactly when its last day is >= from; the
  anchor run then starts inside the range (it starts after run j-k ends), so to >= first_j.
So every (run, step) pair is an edge (source, target) that counts for the ranges with
prev_day < from <= last_start and step_day <= to: `path_edges` counts persons per (anchor event,
direction, last_start, prev_day, step_day, step, source, target), and a read sums the rows that
pass the test (each person has at most one anchor run per range). Events are keyed by their ids
in `event_names` (migration 0016 says why); in memory, edges keep names until they are written.

How it stays exact, batch by batch. A run's edges depend on the six runs on either side of it and
on its prev_day. `path_tails` keeps, per person, the last six runs of their history (with their
prev days), the last day they did each event and their last (time, event). Most events come in
order: when all of a person's new events come at or after that last one, only edges that reach
into the new runs change (an edge among the tail's runs keeps its key even when a repeat
lengthens the last one), so those are added, with no archived event read. Otherwise (an event
before the last one) the person's history up to the batch's earliest event is the same with and
without the batch, so the same step is taken from there (`replace_suffix`), subtracting the
edges that reach into what followed as it was and adding them as it is now. What it needs of
that prefix, its last six runs and the last day of each event, comes from the prefix's last
rows, the kept tail's days and an index lookup per event those cannot date (`_load_prefixes`):
only the archive from the earliest event on is read whole.
A merge subtracts the merged persons' whole contributions, computed before the re-keying, and
adds the survivors' after it, in one write (identity.py). Deltas from all persons are summed,
written in key order (concurrent consumers lock rows in one order), and rows that reach zero
are deleted. Days are the project's (the zones activity uses), computed in Python everywhere.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from services.metrics.staging import StagedTable, stage

Person = tuple[int, str]  # (project_id, person label)

MAX_DEPTH = 6  # the deepest path a read may ask for (SPEC §5)

NO_DAY = date.min.toordinal()  # prev_day of a person's first run of an event: '-infinity'

# (project, anchor, after, last_start, prev_day, step_day, step, source, target); days as ordinals
EdgeKey = tuple[int, str, bool, int, int, int, int, str, str]


@dataclass
class Run:
    name: str
    first: int  # day ordinals
    last: int
    prev: int  # last day of the person's previous run of `name` (NO_DAY: none)


@dataclass
class Tail:
    """The end of a person's history: what an append needs (the module docstring)."""

    runs: list[Run] = field(default_factory=list)
    days: dict[str, int] = field(default_factory=dict)  # event -> last day the person did it
    last: tuple[int, str] | None = None  # (epoch second, event) of the last event

    def extend(self, events: Iterable[tuple[int, str, int]]) -> None:
        """Append (epoch second, event, day) in order, collapsing repeats into runs."""
        for second, name, day in events:
            if self.runs and self.runs[-1].name == name:
                self.runs[-1].last = day
            else:
                self.runs.append(Run(name, day, day, self.days.get(name, NO_DAY)))
            self.days[name] = day
            self.last = (second, name)

    def last_runs(self) -> Tail:
        """A copy holding only the last six runs: what every later edge can reach."""
        runs = [Run(r.name, r.first, r.last, r.prev) for r in self.runs[-MAX_DEPTH:]]
        return Tail(runs, dict(self.days), self.last)

    def encode(self) -> str:
        return orjson.dumps(
            {
                "runs": [[r.name, r.first, r.last, r.prev] for r in self.runs[-MAX_DEPTH:]],
                "days": self.days,
                "last": self.last,
            }
        ).decode()

    @staticmethod
    def decode(text: str) -> Tail:
        raw = orjson.loads(text)
        last = raw["last"]
        return Tail(
            [Run(*r) for r in raw["runs"]], raw["days"], (last[0], last[1]) if last else None
        )


def add_edges(
    counts: Counter[EdgeKey], project_id: int, runs: Sequence[Run], sign: int, changed: int = 0
) -> None:
    """Add `sign` for every edge whose anchor run and step run are both in `runs` and which
    involves a run from index `changed` on: the edges among the runs before it are the same on
    both sides of a `replace_suffix` (which says why), so they would only cancel out."""
    for j, run in enumerate(runs):
        # After: ranges with prev < from <= run.last; none when an earlier run of the event
        # ended on the run's last day (it comes first in every range holding this one). The key
        # involves runs j, j+k-1 and j+k: it can change only when j+k >= changed.
        if run.prev < run.last:
            for k in range(max(1, changed - j), min(MAX_DEPTH, len(runs) - 1 - j) + 1):
                step = runs[j + k]
                key = (project_id, run.name, True, run.last, run.prev, step.first, k,
                       runs[j + k - 1].name, step.name)  # fmt: skip
                counts[key] += sign
        # Before: ranges with prev < from <= step.last; runs further back end no later. The key
        # involves runs j-k to j: it can change only when j >= changed.
        if j < changed:
            continue
        for k in range(1, min(MAX_DEPTH, j) + 1):
            step = runs[j - k]
            if run.prev >= step.last:
                break
            key = (project_id, run.name, False, step.last, run.prev, run.first, k,
                   step.name, runs[j - k + 1].name)  # fmt: skip
            counts[key] += sign


def history_edges(
    counts: Counter[EdgeKey], project_id: int, events: Iterable[tuple[int, str, int]], sign: int
) -> Tail:
    """Add `sign` for every edge of a whole history of ordered (second, event, day); its tail."""
    tail = Tail()
    tail.extend(events)
    add_edges(counts, project_id, tail.runs, sign)
    return tail


def replace_suffix(
    counts: Counter[EdgeKey],
    project_id: int,
    history: Tail,
    old: Sequence[tuple[int, str, int]],
    new: Sequence[tuple[int, str, int]],
) -> Tail:
    """A history's continuation `old` (ordered (second, event, day)) became `new`: add the
    change of edges, and return the new tail. Only edges that reach into the continuation can
    change, and they reach at most six runs back: those from the history's last six runs into
    the continuation and within it are subtracted as they were and added as they are."""
    was = history.last_runs()
    # Extending a history appends runs and may lengthen its last one, which changes no edge
    # among its runs (an edge's key holds its anchor's last day only when runs follow the
    # anchor): the edges that change reach into the continuation.
    changed = len(was.runs)
    was.extend(old)
    add_edges(counts, project_id, was.runs, -1, changed)
    now = history.last_runs()
    now.extend(new)
    add_edges(counts, project_id, now.runs, +1, changed)
    return now


def day_of(second: int, zone: ZoneInfo) -> int:
    """The day ordinal of an epoch second in `zone`."""
    return datetime.fromtimestamp(second, zone).date().toordinal()


def in_order(events: Iterable[tuple[int, str]], zone: ZoneInfo) -> list[tuple[int, str, int]]:
    """(epoch second, event) pairs in history order, each with its day in `zone`."""
    return [(second, name, day_of(second, zone)) for second, name in sorted(events)]


LOAD_TAILS = """
SELECT t.project_id, t.person_id, p.tail::text AS tail
FROM unnest($1::int[], $2::text[]) AS t(project_id, person_id)
JOIN path_tails p ON p.project_id = t.project_id AND p.person_id = t.person_id
"""

# Each archived (second, event) of the persons from a second on (NULL: all), with its copies
# (over all their distinct ids). OFFSET 0 and the row comparison: the time bound stays a
# condition of the (project_id, distinct_id, ts) index scan, as in sessions.py's window
# statement; flattened into the join, it was a filter over every row.
LOAD_HISTORIES = """
SELECT t.project_id, t.person_id, extract(epoch FROM a.ts)::bigint AS second, a.event,
       count(*) AS copies
FROM unnest($1::int[], $2::text[], $3::bigint[]) AS t(project_id, person_id, since)
JOIN identities i ON i.project_id = t.project_id AND i.person_id = t.person_id
CROSS JOIN LATERAL (
    SELECT a.ts, a.event
    FROM active_events a
    WHERE a.project_id = i.project_id AND a.distinct_id = i.distinct_id
      AND (a.distinct_id, a.ts) >= (i.distinct_id, coalesce(to_timestamp(t.since), '-infinity'))
    OFFSET 0
) a
GROUP BY 1, 2, 3, 4
"""

# The archived rows of a late batch's persons just before it, read back in time order from the
# batch's earliest second: at most PREFIX_WINDOW rows per distinct id, each id's index read
# backwards (`_load_prefixes`).
PREFIX_WINDOW = 64
LOAD_WINDOWS = """
SELECT t.project_id, t.person_id, i.distinct_id, w.second, w.event
FROM unnest($1::int[], $2::text[], $3::bigint[]) AS t(project_id, person_id, cut)
JOIN identities i ON i.project_id = t.project_id AND i.person_id = t.person_id
CROSS JOIN LATERAL (
    SELECT extract(epoch FROM a.ts)::bigint AS second, a.event
    FROM active_events a
    WHERE a.project_id = i.project_id AND a.distinct_id = i.distinct_id
      AND a.ts < to_timestamp(t.cut)
    ORDER BY a.ts DESC
    LIMIT $4
) w
"""

# The last second an event was archived at or before `through`, per person and event: each
# id's index read backwards from `through` to the event's latest row.
LOAD_EARLIER = """
SELECT t.project_id, t.person_id, t.event, extract(epoch FROM max(l.ts))::bigint AS second
FROM unnest($1::int[], $2::text[], $3::bigint[], $4::text[])
    AS t(project_id, person_id, through, event)
JOIN identities i ON i.project_id = t.project_id AND i.person_id = t.person_id
CROSS JOIN LATERAL (
    SELECT a.ts
    FROM active_events a
    WHERE a.project_id = i.project_id AND a.distinct_id = i.distinct_id
      AND a.ts <= to_timestamp(t.through) AND a.event = t.event
    ORDER BY a.ts DESC
    LIMIT 1
) l
GROUP BY 1, 2, 3
"""

SAVE_TAILS = """
INSERT INTO path_tails (project_id, person_id, tail)
SELECT * FROM unnest($1::int[], $2::text[], $3::jsonb[])
ON CONFLICT (project_id, person_id) DO UPDATE SET tail = excluded.tail
"""

DROP_TAILS = """
DELETE FROM path_tails p USING unnest($1::int[], $2::text[]) AS t(project_id, person_id)
WHERE p.project_id = t.project_id AND p.person_id = t.person_id
"""

# Event names by id (migration 0016): a name keeps its id forever, so new names are only added.
NAME_IDS = "SELECT name, id FROM event_names WHERE name = ANY($1::text[])"
ADD_NAMES = """
INSERT INTO event_names (name) SELECT * FROM unnest($1::text[]) ORDER BY 1
ON CONFLICT (name) DO NOTHING
"""

# The batch's nonzero deltas, staged by COPY (staging.py), names as their ids and days as the
# ordinals they are computed in, made dates by the upsert: building the rows with a date object
# per day (which the COPY takes apart again) took 0.21 s per 400k deltas in Python, 0.11 s
# without them and without a list of the nonzero deltas first (write_edges).
STAGED_EDGES = StagedTable(
    "staged_path_edge_deltas",
    "project_id int, anchor_id int, after bool, last_start int, prev_day int, step_day int, "
    "step int, source_id int, target_id int, persons bigint",
)

# Deltas in key order (concurrent consumers lock rows in one order; sorted here, it cost less
# than sorting them in Python). Only the rows that fell to zero come back, by their tuple ids:
# this transaction holds their row locks until it ends, so the ids stay theirs for DROP_EMPTY
# (found by key, the 107k rows of a 100k-event bench run took 0.5 s to delete).
ADD_EDGES = """
WITH added AS (
    INSERT INTO path_edges AS e (project_id, anchor_id, after, last_start, prev_day, step_day,
                                 step, source_id, target_id, persons)
    SELECT project_id, anchor_id, after, date '0001-01-01' + (last_start - 1),
           date '0001-01-01' + (prev_day - 1), date '0001-01-01' + (step_day - 1), step, source_id,
           target_id, persons
    FROM staged_path_edge_deltas
    ORDER BY project_id, anchor_id, after, step, last_start, prev_day, step_day, source_id,
             target_id
    ON CONFLICT (project_id, anchor_id, after, step, last_start, prev_day, step_day, source_id,
                 target_id)
    DO UPDATE SET persons = e.persons + excluded.persons
    RETURNING e.ctid, e.persons
)
SELECT ctid FROM added WHERE persons = 0
"""

DROP_EMPTY = "DELETE FROM path_edges WHERE ctid = ANY($1::tid[]) AND persons = 0"


def edge_columns(rows: Sequence[tuple[EdgeKey, int]]) -> list[list[object]]:
    """(key, persons) rows as the ten columns of `path_edges` as migration 0013 made it (event
    names, not ids: 0016 numbered them), days as dates, for that migration's fill (transposed by
    zip and converted by map: a loop over each value took 1.7 times as long on 140k keys)."""
    if not rows:
        return [[] for _ in range(10)]
    keys, persons = zip(*rows, strict=True)
    columns: list[list[object]] = [list(column) for column in zip(*keys, strict=True)]
    for day in (3, 4, 5):  # last_start, prev_day, step_day
        columns[day] = list(map(date.fromordinal, columns[day]))  # type: ignore[arg-type]
    return [*columns, list(persons)]


async def name_ids(conn: asyncpg.Connection, names: Iterable[str]) -> dict[str, int]:
    """The ids of event names, numbering the new ones. A name another consumer is adding at the
    same moment is waited for (the unique index), then read back by the second lookup."""
    wanted = sorted(set(names))
    ids: dict[str, int] = dict(await conn.fetch(NAME_IDS, wanted))
    missing = [name for name in wanted if name not in ids]
    if missing:
        await conn.execute(ADD_NAMES, missing)
        ids.update(await conn.fetch(NAME_IDS, missing))
    return ids


async def write_edges(conn: asyncpg.Connection, counts: Counter[EdgeKey]) -> None:
    """Add the deltas; drop rows left at zero. One pass over the deltas builds the rows (a list
    of the nonzero ones first cost as much again): the names come from every key, so a name
    whose deltas all cancelled out is numbered too, which changes no count."""
    if not any(counts.values()):
        return
    names = {key[1] for key in counts} | {key[7] for key in counts} | {key[8] for key in counts}
    ids = await name_ids(conn, names)
    deltas = [
        (project_id, ids[anchor], after, last_start, prev_day, step_day, step, ids[source],
         ids[target], n)
        for (project_id, anchor, after, last_start, prev_day, step_day, step, source, target), n
        in counts.items()
        if n
    ]  # fmt: skip
    await stage(conn, STAGED_EDGES, deltas)
    emptied = [r["ctid"] for r in await conn.fetch(ADD_EDGES)]
    if emptied:
        await conn.execute(DROP_EMPTY, emptied)


async def _load_tails(conn: asyncpg.Connection, people: Sequence[Person]) -> dict[Person, Tail]:
    rows = await conn.fetch(LOAD_TAILS, [p for p, _ in people], [who for _, who in people])
    return {(r["project_id"], r["person_id"]): Tail.decode(r["tail"]) for r in rows}


async def _load_histories(
    conn: asyncpg.Connection, people: Sequence[Person], since: dict[Person, int]
) -> dict[Person, dict[tuple[int, str], int]]:
    """(second, event) -> archived copies, per person: from `since[person]` on, or all."""
    rows = await conn.fetch(
        LOAD_HISTORIES,
        [p for p, _ in people],
        [who for _, who in people],
        [since.get(person) for person in people],
    )
    found: dict[Person, dict[tuple[int, str], int]] = defaultdict(dict)
    for r in rows:
        found[(r["project_id"], r["person_id"])][(r["second"], r["event"])] = r["copies"]
    return found


async def _load_prefixes(
    conn: asyncpg.Connection,
    earliest: dict[Person, tuple[int, str]],
    kept: dict[Person, Tail],
    zones: dict[int, ZoneInfo],
) -> dict[Person, Tail]:
    """The tails of late persons' histories before the seconds of their `earliest` events,
    without reading those histories whole: the last PREFIX_WINDOW archived rows before that
    second per distinct id (the *window*), and the last day of each event before the window.
    Those days are what the window's runs need for their prev days, and when the window holds
    at least seven runs, its last six are whole: their tail is the prefix's. Persons whose
    window holds fewer are left out; their histories are read whole.

    An id that gave PREFIX_WINDOW rows may have more at the second of its oldest row, so the
    window starts after the latest such second (`floor`); every archived row after it is in.
    The last day of an event before the floor: the `kept` tail (before the batch) knows the
    last day the person did each event, and when that day is before the floor's, it is the
    answer; otherwise that event's latest row at or before the floor is looked up."""
    people = sorted(earliest)
    rows = await conn.fetch(
        LOAD_WINDOWS,
        [p for p, _ in people],
        [who for _, who in people],
        [earliest[person][0] for person in people],
        PREFIX_WINDOW,
    )
    read: dict[tuple[Person, str], list[tuple[int, str]]] = defaultdict(list)
    for r in rows:
        person = (r["project_id"], r["person_id"])
        read[(person, r["distinct_id"])].append((r["second"], r["event"]))
    floors: dict[Person, int] = {}
    windows: dict[Person, set[tuple[int, str]]] = {person: set() for person in people}
    for (person, _), pairs in read.items():
        windows[person].update(pairs)
        if len(pairs) == PREFIX_WINDOW:
            oldest = min(pairs)[0]
            floors[person] = max(floors.get(person, oldest), oldest)
    earlier = await _earlier_days(conn, floors, kept, zones)
    prefixes = {}
    for person in people:
        floor = floors.get(person)
        window = [pair for pair in windows[person] if floor is None or pair[0] > floor]
        prefix = Tail(days=earlier[person])
        prefix.extend(in_order(window, zones[person[0]]))
        if floor is None or len(prefix.runs) > MAX_DEPTH:
            prefixes[person] = prefix
    return prefixes


async def _earlier_days(
    conn: asyncpg.Connection,
    floors: dict[Person, int],
    kept: dict[Person, Tail],
    zones: dict[int, ZoneInfo],
) -> dict[Person, dict[str, int]]:
    """Per person, the last day of each event they did at or before their floor's second."""
    earlier: dict[Person, dict[str, int]] = defaultdict(dict)
    lookups: list[tuple[Person, str]] = []
    for person, floor in sorted(floors.items()):
        floor_day = day_of(floor, zones[person[0]])
        for name, day in kept[person].days.items():
            if day < floor_day:
                earlier[person][name] = day
            else:
                lookups.append((person, name))
    if lookups:
        rows = await conn.fetch(
            LOAD_EARLIER,
            [p for (p, _), _ in lookups],
            [who for (_, who), _ in lookups],
            [floors[person] for person, _ in lookups],
            [name for _, name in lookups],
        )
        for r in rows:
            day = day_of(r["second"], zones[r["project_id"]])
            earlier[(r["project_id"], r["person_id"])][r["event"]] = day
    return earlier


async def _save_tails(conn: asyncpg.Connection, tails: dict[Person, Tail]) -> None:
    ordered = sorted(tails)
    await conn.execute(
        SAVE_TAILS,
        [p for p, _ in ordered],
        [who for _, who in ordered],
        [tails[k].encode() for k in ordered],
    )


async def apply_paths(
    conn: asyncpg.Connection,
    added: dict[Person, list[tuple[int, str]]],
    zones: dict[int, ZoneInfo],
) -> None:
    """Update the edges of the persons whose (epoch second, event) rows the batch archived
    (every copy), in the batch transaction, after the archive insert."""
    if not added:
        return
    people = sorted(added)
    tails = await _load_tails(conn, people)
    counts: Counter[EdgeKey] = Counter()
    late: list[Person] = []
    for person in people:
        tail = tails.setdefault(person, Tail())
        new = sorted(set(added[person]))
        if tail.last is not None and new[0] < tail.last:
            late.append(person)
            continue
        tails[person] = replace_suffix(counts, person[0], tail, [], in_order(new, zones[person[0]]))
    if late:
        # The history before the batch's earliest event is the same with and without the batch
        # (`prefix`); only what follows it differs. Most prefixes come from a bounded read of
        # their end (`_load_prefixes`): their histories are read from the earliest event's second.
        earliest = {person: min(added[person]) for person in late}
        prefixes = await _load_prefixes(conn, earliest, tails, zones)
        histories = await _load_histories(
            conn, late, {person: earliest[person][0] for person in prefixes}
        )
        for person in late:
            history = histories[person]
            brought = Counter(added[person])
            dated = in_order(history, zones[person[0]])
            # A (second, event) pair sorts just before its dated triple, so `cut` is where the
            # earliest event stands; before it, the prefix's events of that same second.
            cut = bisect_left(dated, earliest[person])
            prefix = prefixes.get(person, Tail())
            prefix.extend(dated[:cut])
            before = [e for e in dated[cut:] if history[e[:2]] > brought[e[:2]]]
            tails[person] = replace_suffix(counts, person[0], prefix, before, dated[cut:])
    await write_edges(conn, counts)
    await _save_tails(conn, tails)


async def _whole_histories(
    conn: asyncpg.Connection,
    counts: Counter[EdgeKey],
    people: Sequence[Person],
    sign: int,
    zones: dict[int, ZoneInfo],
) -> dict[Person, Tail]:
    """Add `sign` for every edge of `people`'s whole archived histories; their tails (those
    with any event)."""
    histories = await _load_histories(conn, people, {})
    tails = {}
    for person in people:
        if histories[person]:
            events = in_order(histories[person], zones[person[0]])
            tails[person] = history_edges(counts, person[0], events, sign)
    return tails


async def leaving_merge(
    conn: asyncpg.Connection, people: Sequence[Person], zones: dict[int, ZoneInfo]
) -> Counter[EdgeKey]:
    """Before a merge re-keys `people`'s distinct ids: their edges, to subtract, and their
    tails dropped. `joined_merge` writes them with the survivors' in one go, since much of a
    merged history's edges come back unchanged."""
    people = sorted(set(people))
    counts: Counter[EdgeKey] = Counter()
    if people:
        await _whole_histories(conn, counts, people, -1, zones)
        await conn.execute(DROP_TAILS, [p for p, _ in people], [who for _, who in people])
    return counts


async def joined_merge(
    conn: asyncpg.Connection,
    counts: Counter[EdgeKey],
    survivors: Sequence[Person],
    zones: dict[int, ZoneInfo],
) -> None:
    """After the re-keying: add the survivors' whole histories to `leaving_merge`'s
    subtraction, write the difference, and keep their tails."""
    survivors = sorted(set(survivors))
    tails = await _whole_histories(conn, counts, survivors, 1, zones)
    await write_edges(conn, counts)
    if tails:
        await _save_tails(conn, tails)
