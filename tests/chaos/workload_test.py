#!/usr/bin/python3
"""Unit tests of workload.py's producer bookkeeping with a fake librdkafka producer (no broker): every
send gets exactly one completion; a fatal idempotence error ends the producer's incarnation (what it
still had in flight becomes indeterminate) and a new producer continues; implicit acks (no offset) are
written as null; the history is sorted by time and checks clean.

    cd tests/chaos && /usr/bin/python3 -m unittest -v workload_test
"""

import io
import json
import os
import sys
import tempfile
import time
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402
import workload  # noqa: E402
from confluent_kafka import KafkaError, KafkaException  # noqa: E402


class FakeMessage:
    def __init__(self, value, partition, offset):
        self._v, self._p, self._o = value, partition, offset

    def value(self):
        return self._v

    def partition(self):
        return self._p

    def offset(self):
        return self._o


class FakeProducer:
    """Acknowledges what was produced at the next poll(); the instance number `fatal_in` (0-based) fails
    fatally after `fatal_after` records: poll() and produce() raise, and what is queued is never reported.
    Every `implicit_every`-th record is acknowledged without an offset (librdkafka's implicit ack).
    fatal_via "produce": produce() notices it first and raises as librdkafka does, code _FATAL without
    the fatal flag (before error_cb has said anything)."""

    instances = []
    fatal_in, fatal_after, implicit_every = 0, 50, 7
    fatal_via = "poll"
    offsets = {}

    def __init__(self, conf):
        self.conf = conf
        self.queue = []
        self.n = 0
        self.index = len(FakeProducer.instances)
        self.failed = False
        FakeProducer.instances.append(self)

    def _fatal(self):
        return KafkaException(KafkaError(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, "sequence desynchronization",
                                         fatal=True))

    def produce(self, topic, value, key, partition):
        if not self.failed and FakeProducer.fatal_via == "produce" and self.index == FakeProducer.fatal_in and \
                self.n + len(self.queue) >= FakeProducer.fatal_after:
            self.failed = True
        if self.failed:
            if FakeProducer.fatal_via == "produce":
                raise KafkaException(KafkaError(KafkaError._FATAL, "Unable to produce message: Local: Fatal error"))
            raise self._fatal()
        self.queue.append((value, partition))

    def poll(self, timeout=0):
        if self.failed:
            raise self._fatal()
        if self.index == FakeProducer.fatal_in and self.n + len(self.queue) > FakeProducer.fatal_after:
            self.failed = True
            self.conf["error_cb"](KafkaError(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, "desync", fatal=True))
            raise self._fatal()
        for value, p in self.queue:
            self.n += 1
            o = FakeProducer.offsets.get(p, 0)
            FakeProducer.offsets[p] = o + 1
            self.conf["on_delivery"](None, FakeMessage(value, p, None if self.n % FakeProducer.implicit_every == 0
                                                       else o))
        self.queue = []
        return 0

    def purge(self, in_queue=True, in_flight=True):
        self.queue = []


class ProducerClientTest(unittest.TestCase):
    def setUp(self):
        FakeProducer.instances, FakeProducer.offsets, FakeProducer.fatal_via = [], {}, "poll"

    def run_producer(self, seconds=0.3):
        cfg = workload.Config(bootstrap="fake:1", topic="t", partitions=3, producers=1, rate=2000, batch=20,
                              window=100, close_timeout_s=1.0)
        wl = workload.Workload(cfg, out=io.StringIO())
        wl.meta = {"type": "meta", "t": 0, "partitions": 3, "initial": [[p, 0, 0] for p in range(3)],
                   "topic": "t", "run": wl.run_id, "seed": 0}
        pc = workload.ProducerClient(wl, 0)
        wl.clients = [pc]
        with mock.patch.object(workload, "Producer", FakeProducer):
            pc.start()
            time.sleep(seconds)
            pc.stop_flag.set()
            pc.join(10)
        self.assertFalse(pc.is_alive())
        self.assertIsNone(pc.exc)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "h.jsonl")
            wl.write(path)
            with open(path) as f:
                events = [json.loads(line) for line in f]
        return pc, events

    def test_fatal_error_starts_a_new_producer(self):
        pc, events = self.run_producer()
        self.assertGreaterEqual(len(FakeProducer.instances), 2)
        self.assertEqual(pc.incarnations, len(FakeProducer.instances))
        sends = [e for e in events if e.get("f") == "send"]
        invoked = [e["value"] for e in sends if e["type"] == "invoke"]
        done = [e["value"] for e in sends if e["type"] != "invoke"]
        self.assertEqual(sorted(invoked), sorted(done), "every send completes exactly once")
        self.assertEqual(len(set(invoked)), len(invoked), "values are unique across incarnations")
        self.assertEqual({e["process"] for e in sends}, {"p0", "p0.1"} | {f"p0.{i}" for i in range(1, pc.incarnations)})
        fatal = [e for e in events if e.get("f") == "producer-fatal"]
        self.assertEqual(len(fatal), 1)
        self.assertEqual(fatal[0]["error"], "OUT_OF_ORDER_SEQUENCE_NUMBER")
        # what the first producer had queued when it failed is indeterminate, or refused by produce()
        first = [e for e in sends if e["process"] == "p0" and e["type"] != "invoke"]
        self.assertTrue(any(e["type"] == "info" and e["error"] == "no-report" for e in first))
        self.assertTrue(all(e["type"] in ("ok", "info", "fail") for e in first))
        self.assertTrue(any(e["type"] == "ok" for e in sends if e["process"] == "p0.1"))
        # implicit acks are written as null offsets
        self.assertTrue(any(e["type"] == "ok" and e["offset"] is None for e in sends))
        ts = [e["t"] for e in events[1:]]
        self.assertEqual(ts, sorted(ts), "the history is sorted by time")

    def test_fatal_error_raised_by_produce(self):
        # A 100-run campaign lost run 70 to this: produce() raised _FATAL without the fatal flag.
        FakeProducer.fatal_via = "produce"
        pc, events = self.run_producer()
        self.assertGreaterEqual(pc.incarnations, 2)
        fatal = [e for e in events if e.get("f") == "producer-fatal"]
        self.assertEqual(len(fatal), 1)
        self.assertEqual(fatal[0]["error"], "_FATAL")
        refused = [e for e in events if e.get("f") == "send" and e["type"] == "fail" and e["error"] == "_FATAL"]
        self.assertEqual(len(refused), 1, "the record produce() refused is a definite failure")

    def test_history_checks_clean(self):
        _pc, events = self.run_producer()
        acked = {}
        for e in events:
            if e.get("f") == "send" and e["type"] == "ok" and e["offset"] is not None:
                acked[(e["partition"], e["offset"])] = e["value"]
        t = events[-1]["t"] + 1
        for p in range(3):  # a drain that holds what was acknowledged
            recs = sorted([o, v] for (pp, o), v in acked.items() if pp == p)
            hi = FakeProducer.offsets.get(p, 0)
            events.append({"t": t, "process": "drain", "type": "invoke", "f": "drain", "partition": p, "low": 0,
                           "high": hi})
            events.append({"t": t, "process": "drain", "type": "ok", "f": "drain-read", "partition": p,
                           "records": recs})
            events.append({"t": t, "process": "drain", "type": "ok", "f": "drain", "partition": p, "low": 0,
                           "high": hi, "reached": hi})
        r = checker.check_events(events)
        # the implicitly acknowledged records are missing from this drain (the fake holds no log): lost
        implicit = sum(1 for e in events if e.get("f") == "send" and e["type"] == "ok" and e["offset"] is None)
        self.assertEqual(r["anomalies"]["lost-write"]["count"], implicit)
        self.assertEqual(r["info"]["acked_without_offset"], implicit)
        self.assertEqual({k: v["count"] for k, v in r["anomalies"].items() if v["count"] and k != "lost-write"}, {})
        self.assertEqual(r["info"]["producer_fatal"]["count"], 1)


if __name__ == "__main__":
    unittest.main()
