"""Consumer positions in PostgreSQL, with fencing (aiokafka's "storing offsets outside Kafka").

Each owner of a partition holds an epoch, bumped in PostgreSQL when it is assigned the partition.
Offsets are written, inside the batch's transaction, only where the epoch is still ours: a
consumer that lost its partitions (a zombie after a session timeout) finds its epoch gone and
rolls its batch back instead of committing over the new owner.
"""

from __future__ import annotations

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
FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[])
     AS t(topic, partition, next_offset, epoch)
WHERE o.consumer_group = $1 AND o.topic = t.topic AND o.partition = t.partition
  AND o.epoch = t.epoch
"""


class Fenced(Exception):
    """Another consumer owns a partition of this batch now; the batch was rolled back."""


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
    epochs: dict[PartitionKey, int],
) -> None:
    """Inside the batch's transaction; raises Fenced if any partition has a newer owner."""
    keys = sorted(next_offsets)
    status = await conn.execute(
        STORE_OFFSETS,
        group,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [next_offsets[k] for k in keys],
        [epochs.get(k, -1) for k in keys],
    )
    if int(status.split()[-1]) != len(keys):
        raise Fenced(f"partitions {keys} are owned by a newer consumer")
