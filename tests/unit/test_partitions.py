"""The ingest's cached key -> partition mapping is Kafka's default partitioner, exactly."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner

from services.ingest.publisher import Partitions


def test_same_partition_as_the_default_partitioner() -> None:
    rng = random.Random(5)
    partitions = Partitions()
    for count in (1, 3, 6, 12):
        ids = list(range(count))
        for _ in range(500):
            key = f"{rng.randint(1, 9)}:device-{rng.getrandbits(40)}".encode()
            expected = DefaultPartitioner()(key, ids, ids)
            assert partitions.of(key, ids) == expected
            assert partitions.of(key, ids) == expected  # from the remembered hash
