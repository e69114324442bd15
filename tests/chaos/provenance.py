#!/usr/bin/python3
"""Who wrote a record: the producer id, producer epoch and sequence of the records at given offsets,
read from the batch headers that raw Fetch requests return (kafka-python's protocol classes; the
consumers of the workload do not expose them).

The checker uses them to tell a broker that appended one (producer id, epoch, sequence) twice (a
`duplicate`) from a client that sent a possibly written batch again under a bumped epoch
(`resent-after-epoch-bump`: librdkafka before 2.3 does that, see docs/RELIABILITY.md).

    /usr/bin/python3 tests/chaos/provenance.py BOOTSTRAP TOPIC P:O [P:O ...] > provenance.json
"""

import json
import struct
import sys
import time

# The v2 record batch header (docs/STORAGE-FORMAT.md, Kafka's DefaultRecordBatch): base offset,
# length, partition leader epoch, magic, CRC, attributes, last offset delta, first and max timestamp,
# producer id, producer epoch, base sequence, record count.
_HEADER = struct.Struct(">qiibIhiqqqhii")
_CONTROL = 0x20


class ProvenanceError(Exception):
    pass


def _batches(data):
    """(base offset, last offset, producer id, epoch, base sequence, is control) per whole batch."""
    at = 0
    while at + _HEADER.size <= len(data):
        (base, length, _ple, magic, _crc, attrs, last_delta, _ft, _mt, pid, epoch, seq,
         _count) = _HEADER.unpack_from(data, at)
        if length <= 0 or at + 12 + length > len(data):
            break  # a partial batch at the end of the response
        if magic == 2:
            yield base, base + last_delta, pid, epoch, seq, bool(attrs & _CONTROL)
        at += 12 + length


def fetch(bootstrap, topic, positions, timeout_s=30.0):
    """{(partition, offset): (producer id, epoch, sequence)} for each position whose record was
    written by an idempotent producer (sequence = base sequence + offset - base offset)."""
    from kafka import KafkaClient  # python3-kafka
    from kafka.protocol.fetch import FetchRequest
    from kafka.structs import TopicPartition

    client = KafkaClient(bootstrap_servers=bootstrap, client_id="sluice-provenance", request_timeout_ms=10000)
    out = {}
    try:
        deadline = time.monotonic() + timeout_s
        client.poll(future=client.cluster.request_update())
        for p, o in sorted(set((int(p), int(o)) for p, o in positions)):
            while True:
                leader = client.cluster.leader_for_partition(TopicPartition(topic, p))
                if leader is not None and leader >= 0 and client.ready(leader):
                    break
                if time.monotonic() > deadline:
                    raise ProvenanceError(f"{topic}[{p}]: no reachable leader within {timeout_s} s")
                client.poll(future=client.cluster.request_update(), timeout_ms=500)
            req = FetchRequest[4](replica_id=-1, max_wait_time=0, min_bytes=0, max_bytes=1 << 20,
                                  isolation_level=0, topics=[(topic, [(p, o, 1 << 20)])])
            f = client.send(leader, req)
            client.poll(future=f, timeout_ms=10000)
            if not f.is_done or f.failed():
                raise ProvenanceError(f"{topic}[{p}]@{o}: fetch failed: {f.exception if f.is_done else 'timeout'}")
            (_t, parts), = f.value.topics
            (_p, err, _hw, _lso, _aborted, data), = parts
            if err != 0:
                raise ProvenanceError(f"{topic}[{p}]@{o}: fetch error code {err}")
            for base, last, pid, epoch, seq, control in _batches(data or b""):
                if base <= o <= last and not control and pid >= 0:
                    out[(p, o)] = (pid, epoch, seq + (o - base))
                    break
    finally:
        client.close()
    return out


def to_json(prov):
    return [[p, o, pid, e, s] for (p, o), (pid, e, s) in sorted(prov.items())]


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    positions = []
    for x in argv[2:]:
        p, _, o = x.partition(":")
        positions.append((int(p), int(o)))
    json.dump(to_json(fetch(argv[0], argv[1], positions)), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
