#!/usr/bin/python3
"""Checks a workload history (tests/chaos/workload.py) in one pass, in time linear in its size.

    /usr/bin/python3 tests/chaos/checker.py HISTORY[.gz] [--json OUT.json] [--quiet] [--provenance P.json]
    /usr/bin/python3 tests/chaos/checker.py --bench 100000,200000,400000   # the checker's time vs size

Every acknowledged send carries its offset, so the broker itself reveals the order of the writes and no
search over interleavings is needed: the history is read once, in time order, into hash maps per
partition (offset -> value, value -> position), plus a few running maxima per partition, group and
observer; a final pass over the acknowledged values compares them with the drain. Anomalies (named as in
Jepsen's analyses of Kafka-compatible systems; docs/RELIABILITY.md "Checker" defines each):

  lost-write, duplicate, inconsistent-offsets, phantom   -> exit status 1
  realtime-order, nonmonotonic-send, nonmonotonic-poll, poll-skip, nonmonotonic-commit,
  nonmonotonic-watermark, stale-watermark, aborted-read,
  resent-after-epoch-bump                                -> reported (exit status unaffected)
  unseen (count), offset gaps, indeterminate sends read back, offset resets -> information

Exit status: 0 clean, 1 a lost-write, duplicate, inconsistent-offsets or phantom, 2 the history is
malformed (no meta line, events out of time order, unreadable), 3 otherwise clean but the drain is missing
or incomplete (lost writes cannot be ruled out).
"""

import argparse
import bisect
import gc
import gzip
import json
import os
import sys
import time

FATAL = ("lost-write", "duplicate", "inconsistent-offsets", "phantom")
REPORTED = ("realtime-order", "nonmonotonic-send", "nonmonotonic-poll", "poll-skip", "nonmonotonic-commit",
            "nonmonotonic-watermark", "stale-watermark", "aborted-read", "resent-after-epoch-bump")
ANOMALIES = FATAL + REPORTED
EXAMPLES = 10
_SHIFT = 40  # a position (partition, offset) as one int: partition << 40 | offset


class HistoryError(Exception):
    """The history cannot be checked (malformed, out of time order)."""


def _pos(p, o):
    return (p << _SHIFT) | o


def _unpos(x):
    return x >> _SHIFT, x & ((1 << _SHIFT) - 1)


class Anomalies:
    def __init__(self):
        self.count = {k: 0 for k in ANOMALIES}
        self.examples = {k: [] for k in ANOMALIES}

    def add(self, kind, example):
        self.count[kind] += 1
        if len(self.examples[kind]) < EXAMPLES:
            self.examples[kind].append(example)


class Checker:
    """Feed it the events in time order (feed), then finish() returns the result."""

    def __init__(self, meta, provenance=None):
        if meta.get("type") != "meta":
            raise HistoryError("the first line is not the meta event")
        self.meta = meta
        self.n = int(meta["partitions"])
        # records below the starting high watermark were there before the run: not this history's
        self.initial_high = {int(p): int(hi) for p, _lo, hi in meta.get("initial", [])}
        self.a = Anomalies()
        # (partition, offset) -> (producer id, producer epoch, sequence) of the record there, read from
        # the log's batch headers after the run (provenance.py) for the positions of duplicates
        self.provenance = {_pos(int(p), int(o)): (int(pid), int(e), int(s))
                           for (p, o), (pid, e, s) in (provenance or {}).items()}
        self.last_t = None
        self.events = 1
        # sends
        self.sent_partition = {}  # value -> partition it was sent to
        self.status = {}  # value -> "ok" | "fail" | "info"
        self.acked = {}  # value -> position
        self.ok_no_offset = {}  # value -> partition: acknowledged without an offset (librdkafka's implicit ack)
        self.rt_floor = {}  # value -> (offset, value): the highest ack completed before its invoke
        self.ack_max = [(-1, None)] * self.n  # per partition: highest acked (offset, value) so far
        self.pp_values = {}  # (process, partition) -> values in invoke order
        self.ops = {"attempted": 0, "ok": 0, "failed": 0, "indeterminate": 0}
        self.send_errors = {}
        # what is at each offset, by any source; and where each value was read
        self.at_offset = [dict() for _ in range(self.n)]
        self.offset_conflicts = {}  # position -> {value: [sources]}
        self.read_pos = {}  # value -> first read position
        self.extra_pos = {}  # value -> set of other read positions
        self.polled = set()  # values read by a consumer (not the drain)
        # consumers
        self.last_read = {}  # (process, partition) -> last offset read since the last (re)positioning
        self.start_at = {}  # (process, partition) -> start offset of a fresh positioning (-1: beginning)
        self.jumps = []  # (process, partition, from offset, to offset, t): reads that moved by more than 1
        self.reads = 0
        self.polls = 0
        self.resets = []
        # commits and committed offsets, per (group, partition)
        self.commit_max = {}
        self.readback_max = {}
        self.pending = {}  # (process, f) -> floors snapshot at invoke
        self.commits = {"ok": 0, "failed": 0, "readbacks": 0}
        # watermarks, per (observer, partition)
        self.last_high = {}
        self.watermarks = 0
        # drain
        self.drain = {}  # partition -> {"low", "high", "reached", "complete"}
        self.drain_offsets = [[] for _ in range(self.n)]
        self.drain_values = [dict() for _ in range(self.n)]  # offset -> value
        self.drain_pos = {}  # value -> position in the drain
        self.nemesis = []
        self.client_errors = {}
        self.fatal = []  # producers that hit a fatal error (a new one took over)

    # ---- feeding -----------------------------------------------------------------------------------

    def feed(self, ev):
        t = ev["t"]
        if self.last_t is not None and t < self.last_t:
            raise HistoryError(f"event {self.events + 1} goes back in time ({t} after {self.last_t}): "
                               f"the history must be sorted by t")
        self.last_t = t
        self.events += 1
        f = ev["f"]
        h = self._handlers.get(f)
        if h is not None:
            h(self, ev)

    def _send(self, ev):
        typ, v, p = ev["type"], ev["value"], ev["partition"]
        if typ == "invoke":
            self.ops["attempted"] += 1
            self.sent_partition[v] = p
            floor = self.ack_max[p]
            if floor[0] >= 0:
                self.rt_floor[v] = floor
            key = (ev["process"], p)
            lst = self.pp_values.get(key)
            if lst is None:
                lst = self.pp_values[key] = []
            lst.append(v)
            return
        if v in self.status:
            raise HistoryError(f"send of {v} completed twice")
        if typ == "ok":
            self.ops["ok"] += 1
            self.status[v] = "ok"
            ap, o = ev["partition"], ev["offset"]
            sp = self.sent_partition.get(v)
            if sp is not None and sp != ap:
                self.a.add("inconsistent-offsets", {"why": "acknowledged on another partition than it was sent to",
                                                    "value": v, "sent": sp, "acked": [ap, o]})
            if o is None:  # librdkafka's implicit ack: written, offset unknown
                self.ok_no_offset[v] = ap
                self.rt_floor.pop(v, None)
                return
            self.acked[v] = _pos(ap, o)
            self._at(ap, o, v, "ack")
            floor = self.rt_floor.pop(v, None)
            if floor is not None and o <= floor[0]:
                self.a.add("realtime-order", {"partition": ap, "value": v, "offset": o,
                                              "acked_before_invoke": {"value": floor[1], "offset": floor[0]}})
            if o > self.ack_max[ap][0]:
                self.ack_max[ap] = (o, v)
        else:
            self.status[v] = typ
            self.rt_floor.pop(v, None)
            if typ == "fail":
                self.ops["failed"] += 1
            else:
                self.ops["indeterminate"] += 1
            err = ev.get("error", "?")
            self.send_errors[f"{typ}:{err}"] = self.send_errors.get(f"{typ}:{err}", 0) + 1

    def _at(self, p, o, v, source):
        """Registers v at (p, o): two different values at one offset is inconsistent-offsets."""
        at = self.at_offset[p]
        x = at.get(o)
        if x is None:
            at[o] = v
        elif x != v:
            c = self.offset_conflicts.setdefault(_pos(p, o), {x: ["earlier"]})
            c.setdefault(v, []).append(source)

    def _read(self, p, o, v, source):
        """A value read at (p, o) by a consumer or the drain."""
        if o < self.initial_high.get(p, 0):
            return  # written before the run
        self._at(p, o, v, source)
        pos = _pos(p, o)
        first = self.read_pos.get(v)
        if first is None:
            self.read_pos[v] = pos
        elif first != pos:
            self.extra_pos.setdefault(v, set()).add(pos)

    def _poll(self, ev):
        if ev["type"] != "ok":
            return
        proc = ev["process"]
        self.polls += 1
        last, polled, start_at = self.last_read, self.polled, self.start_at
        for p, o, v in ev["records"]:
            self.reads += 1
            self._read(p, o, v, proc)
            polled.add(v)
            key = (proc, p)
            prev = last.get(key)
            if prev is None:
                s = start_at.pop(key, None)
                if s is not None and o > s:
                    self.jumps.append((proc, p, s - 1, o, ev["t"], "start"))
            elif o <= prev:
                self.a.add("nonmonotonic-poll", {"process": proc, "partition": p, "offset": o, "after": prev,
                                                 "value": v, "t": ev["t"]})
            elif o > prev + 1:
                self.jumps.append((proc, p, prev, o, ev["t"], "poll"))
            last[key] = o

    def _reposition(self, proc, partitions, starts=None):
        for i, p in enumerate(partitions):
            self.last_read.pop((proc, p), None)
            self.start_at.pop((proc, p), None)
            s = starts[i] if starts else None
            if s == "beginning":
                self.start_at[(proc, p)] = 0
            elif isinstance(s, int) and s >= 0:
                self.start_at[(proc, p)] = s

    def _assign(self, ev):
        parts = ev["partitions"]
        self._reposition(ev["process"], [x[0] for x in parts], [x[1] for x in parts])

    def _revoke(self, ev):
        self._reposition(ev["process"], ev["partitions"])

    def _reset(self, ev):
        p = ev.get("partition")
        self.resets.append({"process": ev["process"], "partition": p, "t": ev["t"], "detail": ev.get("detail")})
        self._reposition(ev["process"], list(range(self.n)) if p is None else [p])

    def _seek(self, ev):
        self._reposition(ev["process"], [ev["partition"]], [ev.get("offset")])

    def _commit(self, ev):
        """Committed offsets per (group, partition) never go below an offset committed (or read back)
        before this commit was invoked."""
        key = (ev["process"], "commit")
        g = ev["group"]
        if ev["type"] == "invoke":
            self.pending[key] = {p: self._commit_floor(g, p) for p, _o in ev["offsets"]}
            return
        floors = self.pending.pop(key, {})
        if ev["type"] != "ok":
            self.commits["failed"] += 1
        else:
            self.commits["ok"] += 1
        for p, o, err in ev.get("offsets", []):
            if err is not None:
                continue
            floor = floors.get(p, -1)
            if o < floor:
                self.a.add("nonmonotonic-commit", {"group": g, "partition": p, "committed": o,
                                                   "after": floor, "process": ev["process"], "t": ev["t"]})
            if o > self.commit_max.get((g, p), -1):
                self.commit_max[(g, p)] = o

    def _commit_floor(self, g, p):
        return max(self.commit_max.get((g, p), -1), self.readback_max.get((g, p), -1))

    def _committed(self, ev):
        key = (ev["process"], "committed")
        g = ev["group"]
        if ev["type"] == "invoke":
            self.pending[key] = {p: self._commit_floor(g, p) for p in range(self.n)}
            return
        floors = self.pending.pop(key, {})
        if ev["type"] != "ok":
            return
        self.commits["readbacks"] += 1
        for p, o in ev["offsets"]:
            floor = floors.get(p, -1)
            if o < floor:
                self.a.add("nonmonotonic-commit", {"group": g, "partition": p, "read_back": o, "after": floor,
                                                   "process": ev["process"], "t": ev["t"]})
            if o > self.readback_max.get((g, p), -1):
                self.readback_max[(g, p)] = o

    def _watermarks(self, ev):
        p = ev["partition"]
        key = (ev["process"], p)
        if ev["type"] == "invoke":
            self.pending[(ev["process"], "watermarks", p)] = self.ack_max[p]
            return
        floor = self.pending.pop((ev["process"], "watermarks", p), (-1, None))
        if ev["type"] != "ok":
            return
        self.watermarks += 1
        hi = ev["high"]
        prev = self.last_high.get(key)
        if prev is not None and hi < prev:
            self.a.add("nonmonotonic-watermark", {"process": ev["process"], "partition": p, "high": hi,
                                                  "after": prev, "t": ev["t"]})
        if prev is None or hi > prev:
            self.last_high[key] = hi
        if hi <= floor[0]:
            self.a.add("stale-watermark", {"process": ev["process"], "partition": p, "high": hi,
                                           "acked_before_invoke": {"offset": floor[0], "value": floor[1]},
                                           "t": ev["t"]})

    def _drain_read(self, ev):
        if ev["type"] != "ok":
            return
        p = ev["partition"]
        offs, vals = self.drain_offsets[p], self.drain_values[p]
        for o, v in ev["records"]:
            if offs and o <= offs[-1]:
                self.a.add("nonmonotonic-poll", {"process": "drain", "partition": p, "offset": o,
                                                 "after": offs[-1], "value": v})
                continue
            offs.append(o)
            vals[o] = v
            self._read(p, o, v, "drain")
            if o >= self.initial_high.get(p, 0):
                self.drain_pos.setdefault(v, _pos(p, o))  # a second position is in extra_pos already

    def _drain(self, ev):
        p = ev["partition"]
        if ev["type"] == "invoke":
            self.drain[p] = {"low": ev["low"], "high": ev["high"], "reached": None, "complete": False}
            return
        d = self.drain.setdefault(p, {"low": ev["low"], "high": ev["high"]})
        d["reached"] = ev.get("reached", ev["high"])
        d["complete"] = ev["type"] == "ok" and d["reached"] >= d["high"]

    def _nemesis(self, ev):
        self.nemesis.append({k: v for k, v in ev.items() if k not in ("type", "f", "process")})

    def _producer_fatal(self, ev):
        self.fatal.append({k: v for k, v in ev.items() if k not in ("type", "f")})

    def _client_error(self, ev):
        e = ev.get("error", "?")
        self.client_errors[e] = self.client_errors.get(e, 0) + 1

    _handlers = {"send": _send, "poll": _poll, "assign": _assign, "revoke": _revoke, "reset": _reset,
                 "seek": _seek, "commit": _commit, "committed": _committed, "watermarks": _watermarks,
                 "drain-read": _drain_read, "drain": _drain, "nemesis": _nemesis, "client-error": _client_error,
                 "producer-fatal": _producer_fatal}

    # ---- the end -----------------------------------------------------------------------------------

    def finish(self):
        a = self.a
        # inconsistent-offsets: two values at one offset
        for pos, vals in self.offset_conflicts.items():
            p, o = _unpos(pos)
            a.add("inconsistent-offsets", {"why": "different values at one offset", "partition": p, "offset": o,
                                           "values": {v: src for v, src in vals.items()}})
        # duplicate: one value read at more than one position. The idempotent producer promises one copy
        # per (producer id, epoch, sequence); a client that bumps its epoch and sends a possibly written
        # batch again (librdkafka < 2.3 does: docs/RELIABILITY.md) makes a second copy the broker cannot
        # tell from new data. With the copies' batch headers known, that case is reported apart.
        resent = set()
        duplicate_positions = []
        for v, extra in self.extra_pos.items():
            positions = sorted({self.read_pos[v]} | extra)
            duplicate_positions += [list(_unpos(x)) for x in positions]
            ids = self._resent_under_new_epochs(positions)
            if ids is not None:
                resent.add(v)
                a.add("resent-after-epoch-bump", {"value": v, "read_at": [list(_unpos(x)) for x in positions],
                                                  "producer_epoch_sequence": ids})
            else:
                a.add("duplicate", {"value": v, "read_at": [list(_unpos(x)) for x in positions]})
        # phantom and aborted-read: values read that were never sent, or whose send definitely failed
        indeterminate_read = 0
        for v in self.read_pos:
            st = self.status.get(v)
            if v not in self.sent_partition:
                p, o = _unpos(self.read_pos[v])
                a.add("phantom", {"value": v, "partition": p, "offset": o})
            elif st == "fail":
                p, o = _unpos(self.read_pos[v])
                a.add("aborted-read", {"value": v, "partition": p, "offset": o})
            elif st != "ok":
                indeterminate_read += 1
        # acknowledged values against the reads and the drain
        unseen = uncovered = 0
        drain, drain_pos, polled, read_pos, extra_pos = self.drain, self.drain_pos, self.polled, self.read_pos, self.extra_pos
        for v, pos in self.acked.items():
            rp = read_pos.get(v)
            if v in resent and (pos == rp or pos in extra_pos[v]):
                pass  # acknowledged at one of the copies: the others are the re-send, reported above
            elif rp is not None and (rp != pos or (v in extra_pos and extra_pos[v] - {pos})):
                others = sorted(({rp} | extra_pos.get(v, set())) - {pos})
                p, o = _unpos(pos)
                a.add("inconsistent-offsets", {"why": "read at another offset than acknowledged", "value": v,
                                               "acked": [p, o], "read_at": [list(_unpos(x)) for x in others]})
            if v not in drain_pos:
                p, o = _unpos(pos)
                d = drain.get(p)
                if d is not None and d["reached"] is not None and d["low"] <= o < d["reached"]:
                    a.add("lost-write", {"value": v, "partition": p, "offset": o,
                                         "drain_holds": self.drain_values[p].get(o), "read_by_consumers": v in polled})
                    continue
                if d is not None and d.get("complete") and o >= d["high"]:
                    a.add("lost-write", {"value": v, "partition": p, "offset": o,
                                         "why": f"beyond the drain's high watermark {d['high']}",
                                         "read_by_consumers": v in polled})
                    continue
                uncovered += 1  # below the log start, or the drain stopped short
            if v not in polled:
                unseen += 1
        # acknowledged without an offset: lost if absent from a drain that read the whole run's range
        for v, p in self.ok_no_offset.items():
            rp = read_pos.get(v)
            if rp is not None and _unpos(rp)[0] != p:
                a.add("inconsistent-offsets", {"why": "read on another partition than acknowledged", "value": v,
                                               "acked": [p, None], "read_at": list(_unpos(rp))})
            if v not in drain_pos:
                d = drain.get(p)
                if d is not None and d.get("complete") and d["low"] <= self.initial_high.get(p, 0):
                    a.add("lost-write", {"value": v, "partition": p, "offset": None,
                                         "why": "acknowledged without an offset; absent from the whole drain",
                                         "read_by_consumers": v in polled})
                    continue
                uncovered += 1
            if v not in polled:
                unseen += 1
        # poll-skip: a consumer jumped over offsets that the drain shows hold data records
        for proc, p, frm, to, t, how in self.jumps:
            offs = self.drain_offsets[p]
            i = bisect.bisect_right(offs, frm)
            if i < len(offs) and offs[i] < to:
                skipped = bisect.bisect_left(offs, to) - i
                a.add("poll-skip", {"process": proc, "partition": p, "from": frm if how == "poll" else None,
                                    "to": to, "skipped_records": skipped, "first_skipped": offs[i],
                                    "value": self.drain_values[p].get(offs[i]), "t": t, "after": how})
        # nonmonotonic-send: per producer and partition, acknowledged offsets increase in invoke order
        acked = self.acked
        for (proc, p), vals in self.pp_values.items():
            prev = prev_v = None
            for v in vals:
                pos = acked.get(v)
                if pos is None:
                    continue  # not acknowledged, or without an offset
                o = pos & ((1 << _SHIFT) - 1)
                if prev is not None and o <= prev:
                    a.add("nonmonotonic-send", {"process": proc, "partition": p, "value": v, "offset": o,
                                                "previous": {"value": prev_v, "offset": prev}})
                prev, prev_v = o, v
        no_completion = len(self.sent_partition) - len(self.status)
        # offset gaps in the drain (information: control batches of leader and membership changes)
        gaps = {}
        for p in range(self.n):
            offs = self.drain_offsets[p]
            d = drain.get(p)
            if not offs or d is None:
                continue
            n_gaps = missing = 0
            prev = d["low"] - 1
            examples = []
            for o in offs:
                if o > prev + 1:
                    n_gaps += 1
                    missing += o - prev - 1
                    if len(examples) < 3:
                        examples.append([prev + 1, o])
                prev = o
            end = d["reached"] if d["reached"] is not None else d["high"]
            if end > prev + 1:
                n_gaps += 1
                missing += end - prev - 1
            gaps[p] = {"gaps": n_gaps, "missing_offsets": missing, "examples": examples}
        drain_missing = [p for p in range(self.n) if p not in drain]
        drain_incomplete = [p for p, d in drain.items() if not d.get("complete")]
        return {
            "history": {"events": self.events, "topic": self.meta.get("topic"), "run": self.meta.get("run"),
                        "partitions": self.n, "seed": self.meta.get("seed")},
            "ops": {"send": dict(self.ops, no_completion=no_completion, errors=self.send_errors),
                    "poll": {"polls": self.polls, "records": self.reads},
                    "commit": self.commits, "watermarks": self.watermarks,
                    "drain": {"records": sum(len(x) for x in self.drain_offsets), "missing": drain_missing,
                              "incomplete": drain_incomplete,
                              "partitions": {str(p): d for p, d in sorted(drain.items())}}},
            "anomalies": {k: {"count": a.count[k], "examples": a.examples[k]} for k in ANOMALIES},
            "info": {"unseen": unseen, "acked_not_covered_by_drain": uncovered,
                     "acked_without_offset": len(self.ok_no_offset),
                     "indeterminate_read": indeterminate_read,
                     "offset_gaps": {"total": sum(g["gaps"] for g in gaps.values()),
                                     "missing_offsets": sum(g["missing_offsets"] for g in gaps.values()),
                                     "per_partition": {str(p): g for p, g in gaps.items()}},
                     "offset_resets": {"count": len(self.resets), "examples": self.resets[:EXAMPLES]},
                     "duplicate_positions": duplicate_positions,
                     "client_errors": self.client_errors, "nemesis": self.nemesis[:50],
                     "producer_fatal": {"count": len(self.fatal), "examples": self.fatal[:EXAMPLES]}},
            "valid": not any(a.count[k] for k in FATAL),
            "drain_complete": not drain_missing and not drain_incomplete,
        }


    def _resent_under_new_epochs(self, positions):
        """[(producer id, epoch, sequence)] of the copies when they are one producer's sends under ever
        newer epochs on one partition (a client-side re-send); None otherwise (a broker duplicate)."""
        ids = [self.provenance.get(x) for x in positions]
        if any(i is None for i in ids) or len({_unpos(x)[0] for x in positions}) != 1:
            return None
        if len({i[0] for i in ids}) != 1 or any(a[1] >= b[1] for a, b in zip(ids, ids[1:])):
            return None
        return [list(i) for i in ids]


def read_events(path):
    """The parsed events of a history file, lazily; .gz is gunzipped."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError as e:
                raise HistoryError(f"{path}:{n}: not JSON: {e}") from e


def check_events(events, provenance=None):
    """Checks an iterable of events (the meta event first). Returns the result dict. provenance:
    {(partition, offset): (producer id, epoch, sequence)} for the positions of duplicates."""
    t0, c0 = time.perf_counter(), time.process_time()
    it = iter(events)
    # The checker builds no reference cycles: the cyclic collector would only rescan its growing maps
    # (a full collection each time they grow by a quarter), which costs more than the checking.
    gc_was = gc.isenabled()
    gc.disable()
    try:
        try:
            meta = next(it)
        except StopIteration:
            raise HistoryError("the history is empty") from None
        c = Checker(meta, provenance)
        feed = c.feed
        try:
            for ev in it:
                feed(ev)
        except KeyError as e:
            raise HistoryError(f"event {c.events + 1} lacks the field {e}") from e
        r = c.finish()
    finally:
        if gc_was:
            gc.enable()
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    r["checker"] = {"events": c.events, "seconds": round(secs, 3), "cpu_seconds": round(cpu, 3),
                    "events_per_s": round(c.events / cpu) if cpu > 0 else None}
    return r


def check_file(path, provenance=None):
    return check_events(read_events(path), provenance)


def read_provenance(path):
    """A provenance file (provenance.py): JSON [[partition, offset, producer id, epoch, sequence], ...]."""
    with open(path) as f:
        return {(p, o): (pid, e, s) for p, o, pid, e, s in json.load(f)}


def exit_status(result):
    if not result["valid"]:
        return 1
    if not result["drain_complete"]:
        return 3
    return 0


def human(r):
    """The summary for people."""
    h, ops, an = r["history"], r["ops"], r["anomalies"]
    s = ops["send"]
    lines = [f"history: {h['events']} events, topic {h['topic']} ({h['partitions']} partitions), run {h['run']}, "
             f"seed {h['seed']}",
             f"sends: {s['attempted']} attempted, {s['ok']} ok, {s['failed']} failed (definite), "
             f"{s['indeterminate']} indeterminate" + (f", {s['no_completion']} without completion"
                                                      if s["no_completion"] else "")
             + (f"; errors {s['errors']}" if s["errors"] else ""),
             f"polls: {ops['poll']['polls']} with {ops['poll']['records']} records; commits {ops['commit']['ok']} ok, "
             f"{ops['commit']['failed']} failed, {ops['commit']['readbacks']} read-backs; "
             f"{ops['watermarks']} watermark observations",
             f"drain: {ops['drain']['records']} records"
             + (f"; MISSING for partitions {ops['drain']['missing']}" if ops["drain"]["missing"] else "")
             + (f"; INCOMPLETE for partitions {ops['drain']['incomplete']}" if ops["drain"]["incomplete"] else "")]
    for k in ANOMALIES:
        n = an[k]["count"]
        mark = "FATAL " if n and k in FATAL else ""
        lines.append(f"  {mark}{k}: {n}")
        for ex in an[k]["examples"][:3 if n else 0]:
            lines.append(f"      e.g. {json.dumps(ex, sort_keys=True)[:400]}")
    i = r["info"]
    g = i["offset_gaps"]
    lines.append(f"info: unseen {i['unseen']}, acked but not covered by the drain {i['acked_not_covered_by_drain']}, "
                 f"acked without offset (librdkafka's implicit acks) {i['acked_without_offset']}, "
                 f"indeterminate sends read back {i['indeterminate_read']}, offset resets {i['offset_resets']['count']}, "
                 f"offset gaps {g['total']} ({g['missing_offsets']} offsets; control batches are expected there)")
    if i["client_errors"]:
        lines.append(f"client errors: {i['client_errors']}")
    for f in i["producer_fatal"]["examples"]:
        lines.append(f"producer fatal error (a new producer took over): {f['process']}: {f.get('detail', '')[:300]}")
    ck = r["checker"]
    lines.append(f"checker: {ck['events']} events in {ck['seconds']:.3f} s ({ck['cpu_seconds']:.3f} s of CPU, "
                 f"{ck['events_per_s']} events per CPU second)")
    verdict = ("VALID" if r["valid"] else "INVALID: " + ", ".join(f"{k} {an[k]['count']}" for k in FATAL
                                                                   if an[k]["count"]))
    if r["valid"] and not r["drain_complete"]:
        verdict += " (but the drain is missing or incomplete: lost writes cannot be ruled out)"
    lines.append(f"result: {verdict}")
    return "\n".join(lines)


# ---- the checker's own time vs size --------------------------------------------------------------------


def synthetic_history(n_sends, partitions=6, producers=4, seed=1):
    """A clean history of n_sends acknowledged sends, read by one consumer and drained (for --bench)."""
    import random
    rng = random.Random(seed)
    t = 0
    yield {"type": "meta", "t": 0, "partitions": partitions, "initial": [[p, 0, 0] for p in range(partitions)],
           "topic": "bench", "run": "bench", "seed": seed}
    nxt = [0] * partitions
    acked = [[] for _ in range(partitions)]
    window = []
    for i in range(n_sends):
        t += 1
        p = rng.randrange(partitions)
        v = f"bench-p{i % producers}-{i}"
        yield {"t": t, "process": f"p{i % producers}", "type": "invoke", "f": "send", "value": v, "partition": p,
               "key": "k"}
        window.append((v, p))
        if len(window) >= 100:
            t += 1
            recs = []
            for v, p in window:
                yield {"t": t, "process": f"p{int(v.split('-')[1][1:])}", "type": "ok", "f": "send", "value": v,
                       "partition": p, "offset": nxt[p]}
                acked[p].append((nxt[p], v))
                recs.append([p, nxt[p], v])
                nxt[p] += 1
            yield {"t": t, "process": "a0", "type": "ok", "f": "poll", "records": recs}
            window = []
    t += 1
    for p in range(partitions):
        yield {"t": t, "process": "drain", "type": "invoke", "f": "drain", "partition": p, "low": 0, "high": nxt[p]}
        yield {"t": t, "process": "drain", "type": "ok", "f": "drain-read", "partition": p,
               "records": [[o, v] for o, v in acked[p]]}
        yield {"t": t, "process": "drain", "type": "ok", "f": "drain", "partition": p, "low": 0, "high": nxt[p],
               "reached": nxt[p]}


def bench(sizes):
    import tempfile
    rows = []
    for n in sizes:
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            for ev in synthetic_history(n):
                f.write(json.dumps(ev, separators=(",", ":")) + "\n")
        try:
            r = check_file(f.name)
        finally:
            os.unlink(f.name)
        assert r["valid"] and r["ops"]["send"]["ok"] == n, r
        ck = r["checker"]
        rows.append((n, ck["events"], ck["cpu_seconds"]))
        print(f"{n:>9} sends  {ck['events']:>9} events  {ck['seconds']:8.3f} s  {ck['cpu_seconds']:8.3f} s CPU  "
              f"{ck['cpu_seconds'] / ck['events'] * 1e6:6.2f} us/event (CPU)", flush=True)
    return rows


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("history", nargs="?")
    ap.add_argument("--json", help="write the full result here ('-': stdout)")
    ap.add_argument("--quiet", action="store_true", help="no human summary")
    ap.add_argument("--provenance", help="the duplicates' batch headers (provenance.py's JSON): re-sends under a "
                                         "bumped producer epoch are reported apart")
    ap.add_argument("--bench", help="comma-separated numbers of sends: time the checker on synthetic histories")
    a = ap.parse_args(argv)
    if a.bench:
        bench([int(x) for x in a.bench.split(",")])
        return 0
    if not a.history:
        ap.error("give a history file (or --bench)")
    try:
        r = check_file(a.history, read_provenance(a.provenance) if a.provenance else None)
    except (HistoryError, OSError, ValueError) as e:
        print(f"checker: {a.history}: {e}", file=sys.stderr)
        return 2
    if a.json == "-":
        json.dump(r, sys.stdout, indent=1)
        print()
    elif a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
    if not a.quiet:
        print(human(r))
    return exit_status(r)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
