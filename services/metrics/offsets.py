"""Consumer positions in PostgreSQL, with fencing (aiokafka's "storing offsets outside Kafka").

Each owner of a partition holds an epoch, bumped in PostgreSQL when it is assigned the partition.
Offsets are written, inside the batch's transaction, only where the epoch is still ours: a
consumer that lost its partitions (a zombie after a session timeout) finds its epoch gone and
rolls its batch back instead of committing over the new owner.

They are also written only where PostgreSQL still holds the offset this consumer last stored:
a database that came back without some of its last commits (a crash, since batches commit
asynchronously: store.py; or a failover to a replica behind) would otherwise see the consumer
carry on after records whose aggregates it no longer has. The batch rolls back instead, and the
restarted consumer resumes from what PostgreSQL holds; Kafka still has every record after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

PartitionKey = tuple[str, int]  # (topic, partition)

CLAIM_PARTITIONS = """
INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset, epoch)
SELECT $1, t.topic, t.partition, NULL, 1 FROM unnest($2::text[], $3::int[]) AS t(topic, partition)
ORDER BY 2, 3
ON CONFLICT (consumer_group, topic, partition)
DO UPDATE SET epoch = consumer_offsets.epoch + 1
RETURNING topic, partition, next_offset, epoch
"""

STORE_OFFSETS = """
UPDATE consumer_offsets o SET next_offset = t.next_offset
FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[], $6::bigint[])
     AS t(topic, partition, next_offset, epoch, stored)
WHERE o.consumer_group = $1 AND o.topic = t.topic AND o.partition = t.partition
  AND o.epoch = t.epoch AND o.next_offset IS NOT DISTINCT FROM t.stored
"""

HELD = """
SELECT o.topic, o.partition, o.next_offset, o.epoch
FROM consumer_offsets o JOIN unnest($2::text[], $3::int[]) AS t(topic, partition)
  ON o.topic = t.topic AND o.partition = t.partition
WHERE o.consumer_group = $1
"""


@dataclass
class Claim:
    """A consumer's hold on a partition: the epoch it owns it by, and the next offset it last
    stored there (None: none yet)."""

    epoch: int
    stored: int | None


class Fenced(Exception):
    """Another consumer owns a partition of this batch now; the batch was rolled back."""


class Rewound(Exception):
    """PostgreSQL holds an older offset than this consumer stored: commits were lost. The batch
    was rolled back; a restart resumes from what PostgreSQL holds."""


async def claim_partitions(
    pool: asyncpg.Pool, group: str, partitions: list[PartitionKey]
) -> dict[PartitionKey, tuple[int | None, int]]:
    """Take ownership: bump each partition's epoch; return (next offset or None, our epoch)."""
    ordered = sorted(partitions)
    rows = await pool.fetch(
        CLAIM_PARTITIONS, group, [p[0] for p in ordered], [p[1] for p in ordered]
    )
    return {(r["topic"], r["partition"]): (r["next_offset"], r["epoch"]) for r in rows}


async def store_offsets(
    conn: asyncpg.Connection,
    group: str,
    next_offsets: dict[PartitionKey, int],
    claims: dict[PartitionKey, Claim],
) -> None:
    """Inside the batch's transaction; raises Fenced if any partition has a newer owner, and
    Rewound if PostgreSQL lost offsets this consumer stored."""
    keys = sorted(next_offsets)
    unclaimed = Claim(epoch=-1, stored=None)
    topics, partitions = [k[0] for k in keys], [k[1] for k in keys]
    status = await conn.execute(
        STORE_OFFSETS,
        group,
        topics,
        partitions,
        [next_offsets[k] for k in keys],
        [claims.get(k, unclaimed).epoch for k in keys],
        [claims.get(k, unclaimed).stored for k in keys],
    )
    if int(status.split()[-1]) == len(keys):
        return
    held = {
        (r["topic"], r["partition"]): r for r in await conn.fetch(HELD, group, topics, partitions)
    }
    fenced = [
        k for k in keys if k not in held or held[k]["epoch"] != claims.get(k, unclaimed).epoch
    ]
    if fenced:
        raise Fenced(f"partitions {fenced} are owned by a newer consumer")
    # The partitions the update passed over (the others already hold this batch's offsets).
    lost = {
        k: (held[k]["next_offset"], claims[k].stored)
        for k in keys
        if held[k]["next_offset"] != next_offsets[k]
    }
    raise Rewound(
        f"PostgreSQL holds other offsets than this consumer stored (held, stored): {lost}"
    )
