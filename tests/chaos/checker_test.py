#!/usr/bin/python3
"""Unit tests of checker.py on small synthetic histories: one clean history, and one history per anomaly
with that anomaly planted. MutationTest then removes each anomaly's detection in turn (its reports are
dropped) and checks that the test of that anomaly fails without it.

    /usr/bin/python3 -m unittest discover -s tests/chaos -p 'checker_test.py' -v
"""

import os
import sys
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402


class H:
    """A history under construction; every event gets the next time."""

    def __init__(self, partitions=1, initial=None):
        self.t = 0
        self.events = [{"type": "meta", "t": 0, "version": 1, "topic": "test", "run": "r", "seed": 0,
                        "partitions": partitions,
                        "initial": initial or [[p, 0, 0] for p in range(partitions)]}]

    def ev(self, **kw):
        self.t += 1
        self.events.append({"t": self.t, **kw})
        return self

    def invoke(self, proc, value, p):
        return self.ev(process=proc, type="invoke", f="send", value=value, partition=p, key="k")

    def ack(self, proc, value, p, offset):
        return self.ev(process=proc, type="ok", f="send", value=value, partition=p, offset=offset)

    def send(self, proc, value, p, offset):
        return self.invoke(proc, value, p).ack(proc, value, p, offset)

    def failed(self, proc, value, p, error, definite=True):
        self.invoke(proc, value, p)
        return self.ev(process=proc, type="fail" if definite else "info", f="send", value=value, partition=p,
                       error=error)

    def poll(self, proc, *records):
        return self.ev(process=proc, type="ok", f="poll", records=[list(r) for r in records])

    def assign(self, proc, *parts):
        return self.ev(process=proc, type="ok", f="assign", partitions=[list(x) for x in parts])

    def revoke(self, proc, *parts):
        return self.ev(process=proc, type="ok", f="revoke", partitions=list(parts))

    def commit(self, proc, group, *offsets, ok=True):
        self.ev(process=proc, type="invoke", f="commit", group=group, offsets=[list(x) for x in offsets])
        return self.ev(process=proc, type="ok" if ok else "info", f="commit", group=group,
                       offsets=[[p, o, None if ok else "REQUEST_TIMED_OUT"] for p, o in offsets])

    def committed(self, proc, group, *offsets):
        self.ev(process=proc, type="invoke", f="committed", group=group)
        return self.ev(process=proc, type="ok", f="committed", group=group, offsets=[list(x) for x in offsets])

    def watermarks(self, proc, p, low, high):
        self.ev(process=proc, type="invoke", f="watermarks", partition=p)
        return self.ev(process=proc, type="ok", f="watermarks", partition=p, low=low, high=high)

    def drain(self, p, low, high, *records, reached=None):
        """records: (offset, value) in the log from low to high."""
        self.ev(process="drain", type="invoke", f="drain", partition=p, low=low, high=high)
        if records:
            self.ev(process="drain", type="ok", f="drain-read", partition=p, records=[list(r) for r in records])
        reached = high if reached is None else reached
        return self.ev(process="drain", type="ok" if reached >= high else "info", f="drain", partition=p, low=low,
                       high=high, reached=reached)

    def check(self, provenance=None):
        return checker.check_events(list(self.events), provenance)


def nonzero(result):
    return {k: v["count"] for k, v in result["anomalies"].items() if v["count"]}


class CheckerTest(unittest.TestCase):
    def assertAnomalies(self, result, expected):
        """Exactly these anomaly counts are non-zero."""
        self.assertEqual(nonzero(result), expected, checker.human(result))

    # ---- a clean history: faults' traces that are not anomalies ----------------------------------

    def test_clean(self):
        h = H(partitions=2, initial=[[0, 0, 0], [1, 0, 2]])  # partition 1 held 2 records before the run
        h.send("p0", "a", 0, 0).send("p1", "b", 0, 1)
        h.invoke("p0", "c", 0).invoke("p1", "d", 1)
        h.poll("a0", (0, 0, "a"), (0, 1, "b"))
        h.ack("p0", "c", 0, 3)  # offset 2: a leader change's control batch (a gap)
        h.ack("p1", "d", 1, 2)
        h.failed("p0", "e", 1, "_MSG_TIMED_OUT", definite=False)  # indeterminate, never written
        h.failed("p1", "f", 1, "_MSG_TIMED_OUT", definite=False)  # indeterminate, written after all
        h.failed("p0", "g", 0, "MSG_SIZE_TOO_LARGE")  # definitely not written
        h.send("p1", "i", 1, 5)
        h.send("p1", "j", 1, None)  # an implicit ack: written, offset unknown
        h.poll("a0", (0, 3, "c"), (1, 0, "old-0"), (1, 1, "old-1"), (1, 2, "d"))  # old-*: before the run
        h.assign("g0", (0, None), (1, None))
        h.poll("g0", (0, 0, "a"), (0, 1, "b"), (0, 3, "c"), (1, 2, "d"), (1, 4, "f"))
        h.commit("g0", "G", (0, 4), (1, 5))
        h.committed("g0", "G", (0, 4), (1, 5))
        h.revoke("g0", 1).assign("g1", (1, None))
        h.poll("g1", (1, 4, "f"), (1, 5, "i"), (1, 6, "j"))  # re-read after the rebalance: allowed
        h.commit("g1", "G", (1, 7))
        h.commit("g0", "G", (0, 2), ok=False)  # a failed commit may be anything
        h.ev(process="a0", type="info", f="reset", partition=1, detail="offset reset")
        h.poll("a0", (1, 2, "d"))  # after the reset: going back is no anomaly
        h.watermarks("w0", 0, 0, 4).watermarks("w0", 0, 0, 4).watermarks("w0", 1, 0, 7)
        h.drain(0, 0, 4, (0, "a"), (1, "b"), (3, "c"))
        h.drain(1, 0, 7, (0, "old-0"), (1, "old-1"), (2, "d"), (4, "f"), (5, "i"), (6, "j"))
        r = h.check()
        self.assertAnomalies(r, {})
        self.assertTrue(r["valid"])
        self.assertEqual(checker.exit_status(r), 0)
        s = r["ops"]["send"]
        self.assertEqual((s["attempted"], s["ok"], s["failed"], s["indeterminate"]), (9, 6, 1, 2))
        self.assertEqual(r["info"]["acked_without_offset"], 1)
        self.assertEqual(r["info"]["indeterminate_read"], 1)
        self.assertEqual(r["info"]["unseen"], 0)
        self.assertEqual(r["info"]["offset_gaps"]["per_partition"]["0"]["gaps"], 1)
        self.assertEqual(r["info"]["offset_gaps"]["per_partition"]["1"]["missing_offsets"], 1)
        self.assertEqual(r["info"]["offset_resets"]["count"], 1)

    # ---- the anomalies whose presence fails the run (exit status 1) ------------------------------

    def test_lost_write(self):
        h = H()
        h.send("p0", "a", 0, 0).send("p0", "b", 0, 1).send("p0", "c", 0, 2).send("p0", "d", 0, 3)
        h.poll("a0", (0, 0, "a"), (0, 1, "b"), (0, 2, "c"))
        h.drain(0, 0, 3, (0, "a"), (2, "c"))  # b is gone; d lies beyond the high watermark
        r = h.check()
        self.assertAnomalies(r, {"lost-write": 2})
        self.assertEqual(sorted(e["value"] for e in r["anomalies"]["lost-write"]["examples"]), ["b", "d"])
        self.assertEqual(checker.exit_status(r), 1)

    def test_lost_write_acked_without_offset(self):
        """librdkafka's implicit acks carry no offset: lost only if absent from a drain of the whole run."""
        h = H(partitions=2)
        h.send("p0", "a", 0, 0).send("p0", "b", 0, None).send("p0", "c", 1, None).send("p0", "d", 1, 1)
        h.poll("a0", (0, 0, "a"), (1, 0, "c"), (1, 1, "d"))
        h.drain(0, 0, 1, (0, "a"))  # b is gone
        h.drain(1, 0, 2, (0, "c"), (1, "d"))
        r = h.check()
        self.assertAnomalies(r, {"lost-write": 1})
        self.assertEqual(r["anomalies"]["lost-write"]["examples"][0]["value"], "b")
        self.assertEqual(r["info"]["acked_without_offset"], 2)

    def test_lost_write_needs_coverage(self):
        """Acknowledged below the log start or past where an incomplete drain stopped: not lost, unknown."""
        h = H()
        h.send("p0", "a", 0, 0).send("p0", "b", 0, 1).send("p0", "c", 0, 2)
        h.drain(0, 1, 3, (1, "b"), reached=2)
        r = h.check()
        self.assertAnomalies(r, {})
        self.assertEqual(r["info"]["acked_not_covered_by_drain"], 2)
        self.assertEqual(checker.exit_status(r), 3)

    def test_duplicate(self):
        h = H()
        h.failed("p0", "a", 0, "_MSG_TIMED_OUT", definite=False)  # a retry written twice
        h.send("p0", "b", 0, 2)
        h.poll("a0", (0, 0, "a"), (0, 1, "a"), (0, 2, "b"))
        h.drain(0, 0, 3, (0, "a"), (1, "a"), (2, "b"))
        r = h.check()
        self.assertAnomalies(r, {"duplicate": 1})
        self.assertEqual(r["anomalies"]["duplicate"]["examples"][0]["read_at"], [[0, 0], [0, 1]])
        self.assertEqual(checker.exit_status(r), 1)

    def test_duplicate_positions_listed(self):
        h = H()
        h.failed("p0", "a", 0, "_MSG_TIMED_OUT", definite=False)
        h.drain(0, 0, 2, (0, "a"), (1, "a"))
        self.assertEqual(h.check()["info"]["duplicate_positions"], [[0, 0], [0, 1]])

    def resent_history(self):
        # p0's batch at offset 1 got no answer (a broker restart); the client bumped its epoch and sent
        # the record again, acknowledged at 3.
        h = H()
        h.send("p0", "x", 0, 0).invoke("p0", "a", 0).send("p1", "y", 0, 2).ack("p0", "a", 0, 3)
        h.drain(0, 0, 4, (0, "x"), (1, "a"), (2, "y"), (3, "a"))
        return h

    def test_resent_after_epoch_bump(self):
        r = self.resent_history().check({(0, 1): (7, 0, 12), (0, 3): (7, 1, 0)})
        self.assertAnomalies(r, {"resent-after-epoch-bump": 1})
        self.assertEqual(r["anomalies"]["resent-after-epoch-bump"]["examples"][0]["producer_epoch_sequence"],
                         [[7, 0, 12], [7, 1, 0]])
        self.assertEqual(checker.exit_status(r), 0)

    def test_duplicate_despite_provenance(self):
        h = self.resent_history()
        # without provenance, or one sequence twice, or another producer, or an older epoch later: the
        # broker's duplicate (and the acknowledged copy is not the first: inconsistent too)
        for prov in (None, {(0, 1): (7, 1, 0), (0, 3): (7, 1, 0)}, {(0, 1): (7, 0, 12), (0, 3): (8, 1, 0)},
                     {(0, 1): (7, 1, 12), (0, 3): (7, 0, 0)}, {(0, 3): (7, 1, 0)}):
            with self.subTest(provenance=prov):
                r = h.check(prov)
                self.assertAnomalies(r, {"duplicate": 1, "inconsistent-offsets": 1})
                self.assertEqual(checker.exit_status(r), 1)

    def test_inconsistent_offsets_two_values(self):
        h = H()
        h.invoke("p0", "a", 0).invoke("p1", "b", 0)
        h.ack("p0", "a", 0, 0).ack("p1", "b", 0, 0)  # two acknowledgements of offset 0
        h.drain(0, 0, 1, (0, "a"))
        r = h.check()
        self.assertAnomalies(r, {"inconsistent-offsets": 1, "lost-write": 1})
        self.assertEqual(r["anomalies"]["inconsistent-offsets"]["examples"][0]["offset"], 0)
        self.assertEqual(checker.exit_status(r), 1)

    def test_inconsistent_offsets_moved_value(self):
        h = H()
        h.send("p0", "a", 0, 0).send("p0", "b", 0, 1)
        h.poll("a0", (0, 0, "a"), (0, 2, "b"))  # b acknowledged at 1 but read at 2
        h.drain(0, 0, 3, (0, "a"), (2, "b"))
        r = h.check()
        self.assertAnomalies(r, {"inconsistent-offsets": 1})
        ex = r["anomalies"]["inconsistent-offsets"]["examples"][0]
        self.assertEqual((ex["value"], ex["acked"], ex["read_at"]), ("b", [0, 1], [[0, 2]]))

    def test_phantom(self):
        h = H()
        h.send("p0", "a", 0, 0)
        h.poll("a0", (0, 0, "a"), (0, 1, "never-sent"))
        h.drain(0, 0, 2, (0, "a"), (1, "never-sent"))
        r = h.check()
        self.assertAnomalies(r, {"phantom": 1})
        self.assertEqual(checker.exit_status(r), 1)

    # ---- anomalies reported without failing the run ----------------------------------------------

    def test_realtime_order(self):
        h = H()
        h.send("p0", "a", 0, 5)  # acknowledged before b was sent ...
        h.send("p1", "b", 0, 3)  # ... yet b precedes it in the log
        h.poll("a0", (0, 3, "b"), (0, 5, "a"))
        h.drain(0, 3, 6, (3, "b"), (5, "a"))
        r = h.check()
        self.assertAnomalies(r, {"realtime-order": 1})
        self.assertEqual(checker.exit_status(r), 0)

    def test_concurrent_sends_any_order(self):
        """Sends in flight together may land in either order: no realtime-order anomaly."""
        h = H()
        h.invoke("p0", "a", 0).invoke("p1", "b", 0).ack("p0", "a", 0, 1).ack("p1", "b", 0, 0)
        h.poll("a0", (0, 0, "b"), (0, 1, "a"))
        h.drain(0, 0, 2, (0, "b"), (1, "a"))
        self.assertAnomalies(h.check(), {})

    def test_nonmonotonic_send(self):
        h = H()
        h.invoke("p0", "a", 0).invoke("p0", "b", 0)  # one producer, a before b
        h.ack("p0", "b", 0, 0).ack("p0", "a", 0, 1)  # b lands first
        h.poll("a0", (0, 0, "b"), (0, 1, "a"))
        h.drain(0, 0, 2, (0, "b"), (1, "a"))
        r = h.check()
        self.assertAnomalies(r, {"nonmonotonic-send": 1})

    def test_nonmonotonic_poll(self):
        h = H()
        h.send("p0", "a", 0, 0).send("p0", "b", 0, 1)
        h.assign("a0", (0, "beginning"))
        h.poll("a0", (0, 0, "a"), (0, 1, "b"))
        h.poll("a0", (0, 1, "b"))  # back to 1 without a seek, reset or rebalance
        h.drain(0, 0, 2, (0, "a"), (1, "b"))
        r = h.check()
        self.assertAnomalies(r, {"nonmonotonic-poll": 1})

    def test_poll_skip(self):
        h = H()
        h.send("p0", "a", 0, 0).send("p0", "b", 0, 1).send("p0", "c", 0, 3)
        h.poll("a0", (0, 0, "a"))
        h.poll("a0", (0, 3, "c"))  # skips 1, which holds b (2 is a control batch: skipping it is fine)
        h.poll("a1", (0, 1, "b"), (0, 3, "c"))  # over the gap only: fine
        h.drain(0, 0, 4, (0, "a"), (1, "b"), (3, "c"))
        r = h.check()
        self.assertAnomalies(r, {"poll-skip": 1})
        ex = r["anomalies"]["poll-skip"]["examples"][0]
        self.assertEqual((ex["process"], ex["first_skipped"], ex["value"]), ("a0", 1, "b"))
        self.assertEqual(r["info"]["unseen"], 0)

    def test_poll_skip_from_start(self):
        h = H()
        h.send("p0", "a", 0, 0).send("p0", "b", 0, 1)
        h.assign("a0", (0, "beginning"))
        h.poll("a0", (0, 1, "b"))  # the first record read is not the first in the log
        h.assign("g0", (0, None))  # a group member starts at the committed offset: unknown here
        h.poll("g0", (0, 1, "b"))
        h.poll("a1", (0, 0, "a"))
        h.drain(0, 0, 2, (0, "a"), (1, "b"))
        r = h.check()
        self.assertAnomalies(r, {"poll-skip": 1})

    def test_nonmonotonic_commit(self):
        h = H()
        h.commit("g0", "G", (0, 5))
        h.commit("g1", "G", (0, 3))  # invoked after 5 was committed
        r = h.check()
        self.assertAnomalies(r, {"nonmonotonic-commit": 1})

    def test_nonmonotonic_commit_read_back(self):
        h = H()
        h.commit("g0", "G", (0, 5))
        h.committed("g0", "G", (0, 4))  # the group's committed offset went back below an acknowledged commit
        h.committed("g1", "OTHER", (0, 1))  # another group
        r = h.check()
        self.assertAnomalies(r, {"nonmonotonic-commit": 1})

    def test_nonmonotonic_watermark(self):
        h = H()
        h.watermarks("w0", 0, 0, 5).watermarks("w0", 0, 0, 4)
        h.watermarks("w1", 0, 0, 3)  # another observer may be behind
        r = h.check()
        self.assertAnomalies(r, {"nonmonotonic-watermark": 1})

    def test_stale_watermark(self):
        h = H()
        h.send("p0", "a", 0, 5)
        h.watermarks("w0", 0, 0, 5)  # offset 5 was acknowledged before this query: the high watermark must pass it
        h.watermarks("w0", 0, 0, 6)
        h.drain(0, 5, 6, (5, "a"))
        r = h.check()
        self.assertAnomalies(r, {"stale-watermark": 1})

    def test_aborted_read(self):
        h = H()
        h.failed("p0", "a", 0, "MSG_SIZE_TOO_LARGE")  # a definite failure ...
        h.poll("a0", (0, 0, "a"))  # ... that was written anyway
        h.drain(0, 0, 1, (0, "a"))
        r = h.check()
        self.assertAnomalies(r, {"aborted-read": 1})

    # ---- information ----------------------------------------------------------------------------

    def test_unseen(self):
        h = H()
        h.send("p0", "a", 0, 0).send("p0", "b", 0, 1)
        h.poll("a0", (0, 0, "a"))  # nobody polled b before the drain
        h.drain(0, 0, 2, (0, "a"), (1, "b"))
        r = h.check()
        self.assertAnomalies(r, {})
        self.assertEqual(r["info"]["unseen"], 1)

    def test_malformed(self):
        h = H()
        h.send("p0", "a", 0, 0)
        h.events[-1]["t"] = 0  # the ack before its invoke
        with self.assertRaises(checker.HistoryError):
            h.check()
        with self.assertRaises(checker.HistoryError):
            checker.check_events([{"t": 0, "type": "ok", "f": "poll"}])

    def test_missing_drain(self):
        h = H()
        h.send("p0", "a", 0, 0)
        r = h.check()
        self.assertAnomalies(r, {})
        self.assertFalse(r["drain_complete"])
        self.assertEqual(checker.exit_status(r), 3)


# Which test shows each anomaly.
DETECTORS = {
    "lost-write": "test_lost_write", "duplicate": "test_duplicate",
    "inconsistent-offsets": "test_inconsistent_offsets_moved_value", "phantom": "test_phantom",
    "realtime-order": "test_realtime_order", "nonmonotonic-send": "test_nonmonotonic_send",
    "nonmonotonic-poll": "test_nonmonotonic_poll", "poll-skip": "test_poll_skip",
    "nonmonotonic-commit": "test_nonmonotonic_commit", "nonmonotonic-watermark": "test_nonmonotonic_watermark",
    "stale-watermark": "test_stale_watermark", "aborted-read": "test_aborted_read",
    "resent-after-epoch-bump": "test_resent_after_epoch_bump",
}


class MutationTest(unittest.TestCase):
    def test_every_anomaly_has_a_test(self):
        self.assertEqual(set(DETECTORS), set(checker.ANOMALIES))

    def test_each_test_fails_without_its_detector(self):
        real_add = checker.Anomalies.add
        for kind, test in DETECTORS.items():
            with self.subTest(kind=kind):
                def add(self_, k, example, _kind=kind):
                    if k != _kind:
                        real_add(self_, k, example)

                with mock.patch.object(checker.Anomalies, "add", add):
                    with self.assertRaises(AssertionError, msg=f"{test} passes without the {kind} detector"):
                        getattr(CheckerTest(test), test)()


if __name__ == "__main__":
    unittest.main()
