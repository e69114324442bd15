#!/usr/bin/python3
"""The reliability harness's workload: Kafka clients that record what they saw as a history.

    /usr/bin/python3 tests/chaos/workload.py --bootstrap 127.0.0.1:19092,... --topic t --duration 60 \
        --seed 7 --history run.jsonl [--check]
    /usr/bin/python3 tests/chaos/workload.py --cluster --build-dir build/release --duration 30 \
        --history run.jsonl --check                    # on a fresh 3-broker cluster of tests/cluster/cluster.py

Clients, all in this process, every event stamped with the one clock time.monotonic_ns():
- N idempotent acks=all producers (librdkafka), each writing unique values "<run>-p<i>-<seq>" to partitions
  (and keys) chosen by the seed, with a bounded window of records in flight; every send is an `invoke`
  event followed by exactly one completion: `ok` (partition, offset), `fail` (an error that guarantees the
  record was not written: DEFINITE_SEND_ERRORS) or `info` (indeterminate: any other error, or no delivery
  report before the producer was closed);
- assign-mode consumers (all partitions from the beginning, or one per partition) and the members of one
  consumer group with manual synchronous commits, recording every poll result, every (re)assignment and
  offset reset, every commit and, now and then, the group's committed offsets read back;
- an observer of every partition's watermarks (ListOffsets through get_watermark_offsets, uncached);
- after stop() (and whatever the caller heals), a drain: every partition read from its log start to its
  high watermark.

docs/RELIABILITY.md ("Workload and history") describes the events; checker.py checks a history.
As a library: Workload(config).setup(); .start(); time passes, faults happen (note() records them in the
history); .stop(); heal; .drain(); .write(path). run() does all of it.
"""

import argparse
import gzip
import heapq
import json
import logging
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid

try:
    from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                                 TopicPartition)
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as e:  # pragma: no cover - environment problem
    print(f"workload: cannot import confluent_kafka ({e}): use /usr/bin/python3 (python3-confluent-kafka), "
          f"not {sys.executable}", file=sys.stderr)
    raise

HISTORY_VERSION = 1
now_ns = time.monotonic_ns

# Errors in a delivery report that guarantee the record was NOT written, for an idempotent producer.
# All of them reject the record before it is appended: librdkafka refuses it before sending (the local
# "_" codes), or the broker refuses the whole batch at validation, before the log sees it (a retry of the
# same batch is the same bytes, so it cannot be accepted once and refused later). Every other error is
# indeterminate: _MSG_TIMED_OUT and _PURGE_INFLIGHT may hit a batch that was sent and committed with its
# answer lost, a fatal idempotence error (_FATAL, OUT_OF_ORDER_SEQUENCE_NUMBER, ...) fails batches that
# may be in flight, NOT_LEADER_FOR_PARTITION may come from a leader that had appended the batch
# (docs/CLUSTER.md), and retriable errors only surface once retries ran out.
DEFINITE_SEND_ERRORS = frozenset((
    "_UNKNOWN_PARTITION",  # the partition does not exist in the client's metadata: never sent
    "_UNKNOWN_TOPIC",
    "_INVALID_ARG",
    "_PURGE_QUEUE",  # purged from the local queue, never sent (purge() runs only once the rest is recorded)
    "MSG_SIZE_TOO_LARGE",  # larger than message.max.bytes (local), or MESSAGE_TOO_LARGE: refused before append
    "INVALID_MSG",  # broker: CORRUPT_MESSAGE (CRC), refused before append
    "INVALID_RECORD",
    "INVALID_TIMESTAMP",
    "INVALID_REQUIRED_ACKS",
    "RECORD_LIST_TOO_LARGE",
    "TOPIC_AUTHORIZATION_FAILED",
    "CLUSTER_AUTHORIZATION_FAILED",
))

_RESET_RE = re.compile(r"\[(\d+)\]: offset reset")


def _s(x):
    """A JSON string literal (json.dumps is only needed for text that may need escaping)."""
    return json.dumps(x)


# ---- the history of one process ---------------------------------------------------------------------
#
# Every client thread appends events to its own list, in the order of its clock readings (so each list is
# sorted by time); write() merges the lists by time. The bulk (sends and their completions) is kept as
# small tuples and formatted only when written.

_K_INVOKE, _K_OK, _K_FAIL, _K_INFO, _K_JSON = range(5)


class EventLog:
    """One client's events, sorted by time (t in ns of time.monotonic_ns)."""

    def __init__(self, process):
        self.process = process
        self.events = []

    def send_invoke(self, t, value, partition, key):
        self.events.append((t, _K_INVOKE, value, partition, key))

    def send_ok(self, t, value, partition, offset):
        self.events.append((t, _K_OK, value, partition, offset))

    def send_fail(self, t, value, partition, error, definite):
        self.events.append((t, _K_FAIL if definite else _K_INFO, value, partition, error))

    def add(self, t, etype, f, **fields):
        """Any other event: type (invoke/ok/fail/info), f (the operation) and fields."""
        self.events.append((t, _K_JSON, etype, f, fields))


def _event_time(ev):
    return ev[0]


def _keyed(i, events):
    """(t, log index, event) for heapq.merge: ties go to the lower index, and events never compare."""
    for ev in events:
        yield ev[0], i, ev


def format_event(ev, process):
    t, kind = ev[0], ev[1]
    if kind == _K_INVOKE:
        return (f'{{"t":{t},"process":"{process}","type":"invoke","f":"send","value":"{ev[2]}",'
                f'"partition":{ev[3]},"key":"{ev[4]}"}}\n')
    if kind == _K_OK:
        return (f'{{"t":{t},"process":"{process}","type":"ok","f":"send","value":"{ev[2]}",'
                f'"partition":{ev[3]},"offset":{"null" if ev[4] is None else ev[4]}}}\n')
    if kind in (_K_FAIL, _K_INFO):
        etype = "fail" if kind == _K_FAIL else "info"
        return (f'{{"t":{t},"process":"{process}","type":"{etype}","f":"send","value":"{ev[2]}",'
                f'"partition":{ev[3]},"error":{_s(ev[4])}}}\n')
    d = {"t": t, "process": process, "type": ev[2], "f": ev[3]}
    d.update(ev[4])
    return json.dumps(d, separators=(",", ":")) + "\n"


def open_history(path, mode, gz=None):
    """A history file; gzip when the name ends in .gz (or gz says so)."""
    if path.endswith(".gz") if gz is None else gz:
        return gzip.open(path, mode + "t", compresslevel=1)
    return open(path, mode)


# ---- configuration ----------------------------------------------------------------------------------


class Config:
    """What one run does. Defaults suit a one-minute run on a 2-core machine beside three brokers."""

    def __init__(self, **kw):
        self.bootstrap = "127.0.0.1:9092"
        self.topic = None  # default: chaos-<run id>
        self.partitions = 6
        self.replication_factor = 3
        # Small segments: closed segments exist within seconds (the corrupt-segment fault damages one).
        self.segment_bytes = 131072
        self.duration_s = 60.0
        self.seed = 0
        self.producers = 4
        self.window = 2000  # records in flight per producer
        self.batch = 200  # produce() calls between polls
        self.rate = 5000.0  # total records/s over all producers; 0: as fast as the window allows
        self.keys = 64
        self.value_pad = 0  # bytes of padding after the value (" " then "x" * pad)
        self.linger_ms = 10
        self.message_timeout_ms = 30000
        self.request_timeout_ms = 5000
        # Produce requests in flight per broker connection. 1 by default: with more, librdkafka 2.0.2
        # (Debian bookworm) answers an OUT_OF_ORDER_SEQUENCE_NUMBER on a request behind a failed one
        # (normal during a leader change: the failed one was not appended) by bumping the producer epoch
        # and re-sequencing every unacknowledged message, which duplicates those of other partitions that
        # were in fact written (librdkafka issue 4953, pull request 4972), or by a fatal error after a
        # timeout to a paused leader (fixed in 2.3.0). A broker cannot tell such a re-sent record from a
        # new one, so Apache Kafka would store it too (not tried here: no Kafka on this machine).
        self.max_in_flight = 1
        self.assign_consumers = 1  # assign-mode consumers over all partitions
        self.per_partition_consumers = False  # plus one assign-mode consumer per partition
        self.group_consumers = 2  # members of one consumer group
        self.commit_interval_s = 0.2
        self.committed_interval_s = 1.0  # read the group's committed offsets back
        self.watermark_interval_s = 0.5
        self.drain_timeout_s = 120.0
        self.close_timeout_s = 60.0  # after stop(): wait this long for outstanding delivery reports
        self.client_log = None  # file for librdkafka's log lines (info and above)
        self.producer_debug = None  # librdkafka `debug` contexts for the producers (e.g. "eos,msg")
        for k, v in kw.items():
            if not hasattr(self, k):
                raise TypeError(f"unknown workload setting {k}")
            setattr(self, k, v)

    def as_json(self):
        return {k: v for k, v in vars(self).items()}


def client_common(cfg):
    return {"bootstrap.servers": cfg.bootstrap, "socket.timeout.ms": 5000, "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000, "topic.metadata.refresh.interval.ms": 2000}


class _ClientLogger(logging.Handler):
    """librdkafka's log lines of one client: offset resets become history events (the consumer moved
    without a poll showing why); every line goes to the shared client log file, if any."""

    def __init__(self, log, sink):
        super().__init__(logging.DEBUG)
        self.log, self.sink = log, sink

    def emit(self, record):
        msg = record.getMessage()
        if "offset reset" in msg:
            m = _RESET_RE.search(msg)
            self.log.add(now_ns(), "info", "reset", partition=int(m.group(1)) if m else None, detail=msg[:300])
        if self.sink is not None:
            self.sink.write(f"{self.log.process} {msg}\n")


def client_logger(log, sink):
    lg = logging.getLogger(f"rdkafka.{log.process}.{id(log)}")
    lg.setLevel(logging.DEBUG)
    lg.propagate = False
    lg.addHandler(_ClientLogger(log, sink))
    return {"logger": lg, "log_level": 6}


# ---- clients ----------------------------------------------------------------------------------------


class _Client(threading.Thread):
    def __init__(self, wl, name):
        super().__init__(name=name, daemon=True)
        self.wl, self.cfg = wl, wl.cfg
        self.log = EventLog(name)
        self.exc = None
        self.stop_flag = threading.Event()

    def run(self):
        try:
            self.body()
        except BaseException as e:  # reported by Workload.stop()
            self.exc = e
            self.log.add(now_ns(), "info", "crash", error=f"{type(e).__name__}: {e}")


def _is_fatal(err):
    """A KafkaError of a producer that failed fatally. produce() reports it as code _FATAL ("Unable to
    produce message: Local: Fatal error") without the fatal flag, which only error_cb's error carries."""
    return err.fatal() or err.code() == KafkaError._FATAL


def _poll_quietly(p, timeout):
    """poll() of a producer that may have failed fatally; False once poll() raises the fatal error (no
    more delivery reports will come)."""
    try:
        p.poll(timeout)
        return True
    except KafkaException as e:
        if not _is_fatal(e.args[0]):
            raise
        return False


class ProducerClient(_Client):
    """One idempotent acks=all producer: batches of produce() calls up to `window` in flight.

    A fatal error of the idempotent producer (librdkafka gives up on the producer id, e.g. after
    OUT_OF_ORDER_SEQUENCE_NUMBER) ends an incarnation: its outstanding records are purged and recorded as
    indeterminate, and a new librdkafka producer (a new producer id) continues under the process name
    p<i>.<incarnation> (the values keep their one sequence per producer, so they stay unique)."""

    def __init__(self, wl, index):
        super().__init__(wl, f"p{index}")
        self.index = index
        self.rng = random.Random(f"{self.cfg.seed}/producer/{index}")
        self.prefix = f"{wl.run_id}-p{index}-"
        self.sent = self.acked = self.failed = self.unknown = 0
        self.outstanding = 0
        self.fatal = None  # the fatal error of the current incarnation, set by error_cb
        self.incarnations = 0
        self.seq = 0
        self.logs = [self.log]

    def body(self):
        while not self.stop_flag.is_set():
            if self.incarnations:
                self.log = EventLog(f"p{self.index}.{self.incarnations}")
                self.logs.append(self.log)
            self.incarnations += 1
            self.fatal = None
            self._incarnation()

    def _incarnation(self):
        cfg, log = self.cfg, self.log
        pending = []

        def on_delivery(err, msg):
            pending.append((err, msg))

        conf = {**client_common(cfg), "enable.idempotence": True, "acks": "all",
                "max.in.flight.requests.per.connection": cfg.max_in_flight, "retry.backoff.ms": 100,
                "linger.ms": cfg.linger_ms,
                "batch.num.messages": 10000, "message.timeout.ms": cfg.message_timeout_ms,
                "request.timeout.ms": cfg.request_timeout_ms, "on_delivery": on_delivery,
                "error_cb": self._on_error, **client_logger(log, self.wl.client_sink)}
        if cfg.producer_debug:
            conf.update({"debug": cfg.producer_debug, "log_level": 7})
        p = Producer(conf)
        topic, parts, keys, rng, prefix = cfg.topic, cfg.partitions, cfg.keys, self.rng, self.prefix
        pad = (" " + "x" * cfg.value_pad).encode() if cfg.value_pad else b""
        per_s = cfg.rate / cfg.producers if cfg.rate > 0 else 0.0
        t_start = time.monotonic()
        seq0 = self.seq
        in_flight = {}  # value -> partition, for the records without a report yet

        def reap():
            if not pending:
                return
            t = now_ns()
            batch = pending[:]
            del pending[:]
            for err, msg in batch:
                v = msg.value()
                if pad:
                    v = v.partition(b" ")[0]
                v = v.decode()
                part = in_flight.pop(v, None)
                if part is None:
                    continue  # reported after it was recorded as indeterminate
                if err is None:
                    # offset None: librdkafka acknowledged the record implicitly (its request timed out,
                    # a later batch of the same producer was acknowledged, so this one was written)
                    log.send_ok(t, v, msg.partition(), msg.offset())
                    self.acked += 1
                else:
                    name = err.name()
                    definite = name in DEFINITE_SEND_ERRORS
                    log.send_fail(t, v, part, name, definite)
                    if definite:
                        self.failed += 1
                    else:
                        self.unknown += 1
            self.outstanding = len(in_flight)

        v = part = None
        try:
            while not self.stop_flag.is_set() and self.fatal is None:
                room = cfg.window - len(in_flight)
                if per_s:
                    room = min(room, int((time.monotonic() - t_start) * per_s) - (self.seq - seq0))
                if room > 0:
                    n = min(room, cfg.batch)
                    t = now_ns()
                    for _ in range(n):
                        v = f"{prefix}{self.seq}"
                        part = rng.randrange(parts)
                        key = f"k{rng.randrange(keys)}"
                        log.send_invoke(t, v, part, key)
                        self.seq += 1
                        in_flight[v] = part
                        while True:
                            try:
                                p.produce(topic, v.encode() + pad, key.encode(), partition=part)
                                v = None  # queued
                                break
                            except BufferError:  # the local queue is full: serve reports and retry
                                p.poll(0.05)
                                reap()
                    self.sent = self.seq
                    p.poll(0)
                else:
                    p.poll(0.005)
                reap()
        except KafkaException as e:  # a fatal error: produce() and poll() raise it from now on
            if not _is_fatal(e.args[0]):
                raise
            if self.fatal is None:
                self.fatal = e.args[0]
            if v is not None and v in in_flight:  # produce() refused it: never queued
                in_flight.pop(v)
                log.send_fail(now_ns(), v, part, e.args[0].name(), True)
                self.failed += 1
        if self.fatal is not None:
            err = self.fatal
            log.add(now_ns(), "info", "producer-fatal", error=err.name(), detail=err.str()[:500],
                    incarnation=self.incarnations - 1, outstanding=len(in_flight))
            self.wl.say(f"{log.process}: fatal error {err.name()}: {err.str()[:300]}; "
                        f"{len(in_flight)} record(s) outstanding; starting a new producer")
            deadline = time.monotonic() + 5.0  # the reports librdkafka still delivers (with the fatal error)
        else:
            # Stopped: wait for the outstanding reports (the caller may be healing faults meanwhile).
            deadline = time.monotonic() + cfg.close_timeout_s
        while in_flight and time.monotonic() < deadline and _poll_quietly(p, 0.05):
            reap()
        reap()
        p.purge(True, True)
        _poll_quietly(p, 0.1)
        reap()
        t = now_ns()
        for v, part in list(in_flight.items()):
            log.send_fail(t, v, part, "no-report", False)  # indeterminate: never answered
            self.unknown += 1
        in_flight.clear()
        self.outstanding = 0

    def _on_error(self, err):
        self.log.add(now_ns(), "info", "client-error", error=err.name(), detail=str(err)[:500], fatal=err.fatal())
        if err.fatal() and self.fatal is None:
            self.fatal = err


class ConsumerClient(_Client):
    """An assign-mode consumer (partitions from the beginning) or a member of the consumer group (subscribe,
    manual synchronous commits)."""

    def __init__(self, wl, name, partitions=None, group=None):
        super().__init__(wl, name)
        self.partitions = partitions  # assign mode: the partitions; None: group member
        self.group = group
        self.reads = 0
        self.commits_ok = self.commits_failed = 0
        self.positions = {}

    def body(self):
        cfg, log = self.cfg, self.log
        group_mode = self.partitions is None
        conf = {**client_common(cfg), "enable.auto.commit": False, "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest", "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000,
                "error_cb": self._on_error, **client_logger(log, self.wl.client_sink)}
        conf["group.id"] = self.group if group_mode else f"{self.wl.run_id}-{self.name}-unused"
        c = Consumer(conf)
        pad = bool(cfg.value_pad)
        positions = self.positions = {}  # partition -> next offset read, not committed yet
        try:
            if group_mode:
                c.subscribe([cfg.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                            on_lost=self._on_lost)
            else:
                log.add(now_ns(), "ok", "assign", partitions=[[p, "beginning"] for p in self.partitions])
                c.assign([TopicPartition(cfg.topic, p, OFFSET_BEGINNING) for p in self.partitions])
            last_commit = last_committed = time.monotonic()
            while not self.stop_flag.is_set():
                msgs = c.consume(2000, 0.2)
                t = now_ns()
                recs = []
                for m in msgs:
                    e = m.error()
                    if e is not None:
                        if e.code() != KafkaError._PARTITION_EOF:
                            log.add(t, "info", "poll", error=e.name(), detail=str(e)[:300],
                                    partition=m.partition())
                        continue
                    v = m.value()
                    if pad:
                        v = v.partition(b" ")[0]
                    p, o = m.partition(), m.offset()
                    recs.append([p, o, v.decode(errors="replace")])
                    positions[p] = o + 1
                if recs:
                    self.reads += len(recs)
                    log.add(t, "ok", "poll", records=recs)
                if group_mode:
                    mono = time.monotonic()
                    if positions and mono - last_commit >= cfg.commit_interval_s:
                        last_commit = mono
                        if self._commit(c, positions):
                            positions.clear()
                    if mono - last_committed >= cfg.committed_interval_s:
                        last_committed = mono
                        self._read_committed(c)
        finally:
            try:
                c.close()
            except Exception as e:  # leaving the group uncleanly is no anomaly
                log.add(now_ns(), "info", "close", error=str(e)[:300])

    def _commit(self, c, positions):
        log = self.log
        offsets = [[p, o] for p, o in sorted(positions.items())]
        log.add(now_ns(), "invoke", "commit", group=self.group, offsets=offsets)
        try:
            res = c.commit(offsets=[TopicPartition(self.cfg.topic, p, o) for p, o in offsets], asynchronous=False)
        except KafkaException as e:
            self.commits_failed += 1
            log.add(now_ns(), "info", "commit", group=self.group, error=e.args[0].name(),
                    offsets=[[p, o, e.args[0].name()] for p, o in offsets])
            return False
        out, ok = [], True
        for tp in res or []:
            err = tp.error.name() if tp.error is not None else None
            ok = ok and err is None
            out.append([tp.partition, positions.get(tp.partition, tp.offset), err])
        if ok:
            self.commits_ok += 1
        else:
            self.commits_failed += 1
        log.add(now_ns(), "ok" if ok else "info", "commit", group=self.group, offsets=out)
        return ok

    def _read_committed(self, c):
        log = self.log
        log.add(now_ns(), "invoke", "committed", group=self.group)
        try:
            res = c.committed([TopicPartition(self.cfg.topic, p) for p in range(self.cfg.partitions)], timeout=5)
        except KafkaException as e:
            log.add(now_ns(), "info", "committed", group=self.group, error=e.args[0].name())
            return
        got = [[tp.partition, tp.offset] for tp in res if tp.error is None and tp.offset >= 0]
        log.add(now_ns(), "ok", "committed", group=self.group, offsets=got)

    def _on_assign(self, _c, parts):
        self.log.add(now_ns(), "ok", "assign", group=self.group,
                     partitions=[[tp.partition, tp.offset if tp.offset >= 0 else None] for tp in parts])

    def _on_revoke(self, _c, parts):
        self.log.add(now_ns(), "ok", "revoke", group=self.group, partitions=[tp.partition for tp in parts])
        for tp in parts:
            self.positions.pop(tp.partition, None)

    def _on_lost(self, _c, parts):
        for tp in parts:
            self.positions.pop(tp.partition, None)
        self.log.add(now_ns(), "ok", "revoke", group=self.group, partitions=[tp.partition for tp in parts],
                     lost=True)

    def _on_error(self, err):
        self.log.add(now_ns(), "info", "client-error", error=err.name(), detail=str(err)[:300])


class WatermarkClient(_Client):
    """Every partition's (low, high) watermarks from its leader, one partition after the other."""

    def __init__(self, wl):
        super().__init__(wl, "w0")
        self.observations = 0

    def body(self):
        cfg, log = self.cfg, self.log
        c = Consumer({**client_common(cfg), "group.id": f"{self.wl.run_id}-watermarks",
                      "error_cb": lambda e: None, **client_logger(log, self.wl.client_sink)})
        try:
            while not self.stop_flag.wait(cfg.watermark_interval_s):
                for p in range(cfg.partitions):
                    log.add(now_ns(), "invoke", "watermarks", partition=p)
                    try:
                        lo, hi = c.get_watermark_offsets(TopicPartition(cfg.topic, p), timeout=2, cached=False)
                    except KafkaException as e:
                        log.add(now_ns(), "info", "watermarks", partition=p, error=e.args[0].name())
                        continue
                    log.add(now_ns(), "ok", "watermarks", partition=p, low=lo, high=hi)
                    self.observations += 1
        finally:
            c.close()


# ---- the workload -----------------------------------------------------------------------------------


class WorkloadError(Exception):
    pass


def _retry_watermarks(consumer, topic, partition, timeout):
    """(low, high), retried while a restarted cluster settles (no leader yet, unknown partition)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5, cached=False)
        except KafkaException as e:
            if time.monotonic() > deadline:
                raise WorkloadError(f"watermarks of {topic}[{partition}]: {e}") from e
            time.sleep(0.25)


class Workload:
    def __init__(self, cfg, out=sys.stderr):
        self.cfg = cfg
        self.out = out
        self.run_id = uuid.UUID(int=random.Random(f"{cfg.seed}/{time.time_ns()}").getrandbits(128)).hex[:8]
        if cfg.topic is None:
            cfg.topic = f"chaos-{self.run_id}"
        self.client_sink = open(cfg.client_log, "a", buffering=1 << 16) if cfg.client_log else None
        self.main_log = EventLog("main")
        self.drain_log = EventLog("drain")
        self.nemesis_log = EventLog("nemesis")
        self.nemesis_lock = threading.Lock()
        self.meta = None
        self.clients = []
        self.t_start = self.t_stop = None
        self.drain_summary = None

    def say(self, msg):
        if self.out is not None:
            print(f"workload: {msg}", file=self.out, flush=True)

    def note(self, action, **fields):
        """A fault (or anything else) in the history, on the clients' clock; callable from any thread."""
        with self.nemesis_lock:
            self.nemesis_log.add(now_ns(), "info", "nemesis", action=action, **fields)

    def setup(self, timeout=60.0):
        """Creates the topic if missing, waits for a leader of every partition, records the starting
        watermarks (records below them are not this run's)."""
        cfg = self.cfg
        admin = AdminClient({**client_common(cfg)})
        fut = admin.create_topics([NewTopic(cfg.topic, num_partitions=cfg.partitions,
                                            replication_factor=cfg.replication_factor,
                                            config={"segment.bytes": str(cfg.segment_bytes)})],
                                  operation_timeout=30)[cfg.topic]
        try:
            fut.result(timeout=timeout)
            created = True
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise WorkloadError(f"create topic {cfg.topic}: {e}") from e
            created = False
        deadline = time.monotonic() + timeout
        while True:
            md = admin.list_topics(cfg.topic, timeout=5)
            t = md.topics.get(cfg.topic)
            if (t is not None and t.error is None and len(t.partitions) >= cfg.partitions
                    and all(pm.leader >= 0 and pm.error is None for pm in t.partitions.values())):
                if len(t.partitions) != cfg.partitions:
                    raise WorkloadError(f"topic {cfg.topic} has {len(t.partitions)} partitions, not {cfg.partitions}")
                break
            if time.monotonic() > deadline:
                raise WorkloadError(f"topic {cfg.topic}: no leader for every partition after {timeout:g} s")
            time.sleep(0.2)
        c = Consumer({**client_common(cfg), "group.id": f"{self.run_id}-setup"})
        try:
            initial = [[p, *_retry_watermarks(c, cfg.topic, p, timeout)] for p in range(cfg.partitions)]
        finally:
            c.close()
        self.meta = {"t": now_ns(), "type": "meta", "version": HISTORY_VERSION, "run": self.run_id,
                     "topic": cfg.topic, "partitions": cfg.partitions, "seed": cfg.seed, "created": created,
                     "initial": initial, "wall_time": time.time(),
                     "definite_send_errors": sorted(DEFINITE_SEND_ERRORS), "config": cfg.as_json()}
        self.say(f"topic {cfg.topic}: {cfg.partitions} partitions ({'created' if created else 'existed'}), "
                 f"starting watermarks {initial}")
        return self

    def start(self):
        cfg = self.cfg
        self.clients = [ProducerClient(self, i) for i in range(cfg.producers)]
        for i in range(cfg.assign_consumers):
            self.clients.append(ConsumerClient(self, f"a{i}", partitions=list(range(cfg.partitions))))
        if cfg.per_partition_consumers:
            for p in range(cfg.partitions):
                self.clients.append(ConsumerClient(self, f"a-p{p}", partitions=[p]))
        group = f"{self.run_id}-group"
        for i in range(cfg.group_consumers):
            self.clients.append(ConsumerClient(self, f"g{i}", group=group))
        if cfg.watermark_interval_s > 0:
            self.clients.append(WatermarkClient(self))
        self.t_start = now_ns()
        self.main_log.add(self.t_start, "info", "start")
        for c in self.clients:
            c.start()
        return self

    def producers(self):
        return [c for c in self.clients if isinstance(c, ProducerClient)]

    def progress(self):
        ps = self.producers()
        return {"sent": sum(p.sent for p in ps), "acked": sum(p.acked for p in ps),
                "failed": sum(p.failed for p in ps), "unknown": sum(p.unknown for p in ps),
                "outstanding": sum(p.outstanding for p in ps),
                "producer_fatal": sum(max(0, p.incarnations - 1) for p in ps)}

    def check_clients(self):
        for c in self.clients:
            if c.exc is not None:
                raise WorkloadError(f"client {c.name} failed: {type(c.exc).__name__}: {c.exc}")

    def stop(self):
        """Stops sending and consuming; producers then wait up to close_timeout_s for their outstanding
        delivery reports (what stays unanswered is recorded as indeterminate)."""
        self.t_stop = now_ns()
        self.main_log.add(self.t_stop, "info", "stop")
        for c in self.clients:
            c.stop_flag.set()
        for c in self.clients:
            c.join(self.cfg.close_timeout_s + 30)
            if c.is_alive():
                raise WorkloadError(f"client {c.name} did not stop")
        self.check_clients()

    def drain(self):
        """Reads every partition from its log start to the high watermark (taken first); records the
        chunks read and, per partition, the range covered."""
        cfg, log = self.cfg, self.drain_log
        c = Consumer({**client_common(cfg), "group.id": f"{self.run_id}-drain", "enable.auto.commit": False,
                      "enable.partition.eof": True, "auto.offset.reset": "earliest",
                      **client_logger(log, self.client_sink)})
        summary = {}
        try:
            ends = {}
            for p in range(cfg.partitions):
                t0 = now_ns()
                lo, hi = _retry_watermarks(c, cfg.topic, p, 60.0)
                log.add(t0, "invoke", "drain", partition=p, low=lo, high=hi)
                ends[p] = (lo, hi)
            c.assign([TopicPartition(cfg.topic, p, OFFSET_BEGINNING) for p in range(cfg.partitions)])
            reached = {p: ends[p][0] for p in ends}
            counts = {p: 0 for p in ends}
            deadline = time.monotonic() + cfg.drain_timeout_s
            while any(reached[p] < ends[p][1] for p in ends) and time.monotonic() < deadline:
                msgs = c.consume(5000, 0.5)
                t = now_ns()
                chunk = {}
                for m in msgs:
                    e = m.error()
                    if e is not None:
                        if e.code() == KafkaError._PARTITION_EOF:
                            reached[m.partition()] = max(reached[m.partition()], m.offset())
                        else:
                            log.add(t, "info", "drain-read", partition=m.partition(), error=e.name(),
                                    detail=str(e)[:300])
                        continue
                    v = m.value()
                    if cfg.value_pad:
                        v = v.partition(b" ")[0]
                    p, o = m.partition(), m.offset()
                    chunk.setdefault(p, []).append([o, v.decode(errors="replace")])
                    reached[p] = max(reached[p], o + 1)
                for p, recs in chunk.items():
                    counts[p] += len(recs)
                    log.add(t, "ok", "drain-read", partition=p, records=recs)
            t = now_ns()
            for p, (lo, hi) in ends.items():
                done = reached[p] >= hi
                log.add(t, "ok" if done else "info", "drain", partition=p, low=lo, high=hi,
                        reached=min(reached[p], hi))
                summary[p] = {"low": lo, "high": hi, "reached": reached[p], "records": counts[p]}
        finally:
            c.close()
        self.drain_summary = summary
        incomplete = {p: s for p, s in summary.items() if s["reached"] < s["high"]}
        if incomplete:
            self.say(f"drain INCOMPLETE after {cfg.drain_timeout_s:g} s: {incomplete}")
        return summary

    def write(self, path):
        """The history: the meta line, then every client's events merged by time."""
        logs = [lg for c in self.clients for lg in getattr(c, "logs", [c.log])]
        logs += [self.main_log, self.nemesis_log, self.drain_log]
        for lg in logs:
            lg.events.sort(key=_event_time)  # sorted already, unless a log line came from another thread
        streams = [_keyed(i, lg.events) for i, lg in enumerate(logs)]
        n = 0
        tmp = path + ".tmp"
        with open_history(tmp, "w", gz=path.endswith(".gz")) as f:
            f.write(json.dumps(self.meta, separators=(",", ":")) + "\n")
            buf = []
            for _t, i, ev in heapq.merge(*streams):
                buf.append(format_event(ev, logs[i].process))
                if len(buf) >= 4096:
                    f.write("".join(buf))
                    n += len(buf)
                    buf = []
            f.write("".join(buf))
            n += len(buf)
        os.replace(tmp, path)
        if self.client_sink is not None:
            self.client_sink.flush()
        return n + 1

    def summary(self):
        pr = self.progress()
        secs = (self.t_stop - self.t_start) / 1e9 if self.t_stop and self.t_start else float("nan")
        cons = [c for c in self.clients if isinstance(c, ConsumerClient)]
        return {"run": self.run_id, "topic": self.cfg.topic, "seconds": round(secs, 2), **pr,
                "ack_rate": round(pr["acked"] / secs, 1) if secs == secs and secs > 0 else None,
                "reads": sum(c.reads for c in cons), "commits_ok": sum(c.commits_ok for c in cons),
                "commits_failed": sum(c.commits_failed for c in cons),
                "drain_records": sum(s["records"] for s in (self.drain_summary or {}).values())}

    def run(self, history, before_drain=None, on_tick=None):
        """setup (unless done), start, run for duration_s (on_tick(self, seconds) once a second), stop,
        before_drain(self) (heal faults), drain, write the history. Returns summary()."""
        if self.meta is None:
            self.setup()
        self.start()
        t0 = time.monotonic()
        next_report = t0 + 10
        while True:
            left = self.cfg.duration_s - (time.monotonic() - t0)
            if left <= 0:
                break
            time.sleep(min(1.0, left))
            if self.client_sink is not None:
                self.client_sink.flush()
            self.check_clients()
            if on_tick is not None:
                on_tick(self, time.monotonic() - t0)
            if time.monotonic() >= next_report:
                next_report += 10
                self.say(f"{time.monotonic() - t0:5.1f} s: {self.progress()}")
        self.stop()
        if before_drain is not None:
            before_drain(self)
        self.drain()
        n = self.write(history)
        s = self.summary()
        self.say(f"{n} events in {history}; {s}")
        return s


# ---- command line -----------------------------------------------------------------------------------


def add_workload_args(ap):
    d = Config()
    ap.add_argument("--bootstrap", help="Kafka bootstrap servers (not with --cluster)")
    ap.add_argument("--topic", help="default chaos-<run id> (created if missing: --partitions, RF 3)")
    ap.add_argument("--partitions", type=int, default=d.partitions)
    ap.add_argument("--replication-factor", type=int, default=d.replication_factor)
    ap.add_argument("--duration", type=float, default=d.duration_s, help="seconds of load (default 60)")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--producers", type=int, default=d.producers)
    ap.add_argument("--window", type=int, default=d.window, help="records in flight per producer")
    ap.add_argument("--rate", type=float, default=d.rate, help="total records/s (0: as fast as the window allows)")
    ap.add_argument("--value-pad", type=int, default=d.value_pad, help="padding bytes per value")
    ap.add_argument("--linger-ms", type=int, default=d.linger_ms)
    ap.add_argument("--message-timeout-ms", type=int, default=d.message_timeout_ms)
    ap.add_argument("--assign-consumers", type=int, default=d.assign_consumers)
    ap.add_argument("--per-partition-consumers", action="store_true")
    ap.add_argument("--group-consumers", type=int, default=d.group_consumers)
    ap.add_argument("--commit-interval", type=float, default=d.commit_interval_s)
    ap.add_argument("--watermark-interval", type=float, default=d.watermark_interval_s)
    ap.add_argument("--close-timeout", type=float, default=d.close_timeout_s)
    ap.add_argument("--client-log", help="librdkafka's log lines of every client")
    ap.add_argument("--producer-debug", help="librdkafka debug contexts for the producers (e.g. eos,msg; "
                                             "with --client-log)")


def config_from_args(a, bootstrap):
    return Config(bootstrap=bootstrap, topic=a.topic, partitions=a.partitions,
                  replication_factor=a.replication_factor, duration_s=a.duration, seed=a.seed,
                  producers=a.producers, window=a.window, rate=a.rate, value_pad=a.value_pad,
                  linger_ms=a.linger_ms, message_timeout_ms=a.message_timeout_ms,
                  assign_consumers=a.assign_consumers, per_partition_consumers=a.per_partition_consumers,
                  group_consumers=a.group_consumers, commit_interval_s=a.commit_interval,
                  watermark_interval_s=a.watermark_interval, close_timeout_s=a.close_timeout,
                  client_log=a.client_log, producer_debug=a.producer_debug)


def run_check(history, out_json=None, provenance=None):
    """checker.py on a history: (exit status, summary dict). provenance: see checker.check_events."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import checker  # noqa: E402
    result = checker.check_file(history, provenance)
    print(checker.human(result))
    if out_json:
        with open(out_json, "w") as f:
            json.dump(result, f, indent=1)
    return checker.exit_status(result), result


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_workload_args(ap)
    ap.add_argument("--history", required=True, help="the history file (JSON lines; .gz: gzip)")
    ap.add_argument("--before-drain", help="shell command run after the clients stop, before the drain "
                                           "(e.g. heal every fault)")
    ap.add_argument("--check", action="store_true", help="run checker.py on the history; its exit status")
    ap.add_argument("--check-json", help="with --check: the checker's JSON result")
    ap.add_argument("--cluster", action="store_true",
                    help="start a fresh 3-broker cluster (tests/cluster/cluster.py) and run against it")
    ap.add_argument("--build-dir", help="with --cluster: build tree (default $SLUICE_BUILD_DIR or build/debug)")
    ap.add_argument("--work-dir", help="with --cluster: where the cluster's directory goes")
    ap.add_argument("--keep", action="store_true", help="with --cluster: keep the cluster's directory")
    a = ap.parse_args(argv)
    if a.cluster == bool(a.bootstrap):
        ap.error("give exactly one of --bootstrap and --cluster")

    def before_drain(_wl):
        if a.before_drain:
            rc = subprocess.call(a.before_drain, shell=True)
            print(f"workload: --before-drain exited with status {rc}", file=sys.stderr, flush=True)

    if a.cluster:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cluster"))
        import cluster as clusterlib  # noqa: E402
        clusterlib.install_signal_handlers()
        c = clusterlib.Cluster(nodes=3, build_dir=a.build_dir, work_dir=a.work_dir, keep=a.keep, name="workload")
        with c:
            c.start()
            c.wait_brokers()
            wl = Workload(config_from_args(a, c.bootstrap()))
            wl.run(a.history, before_drain=before_drain)
        if c.problems:
            print(f"workload: broker problems: {c.problems}", file=sys.stderr)
            return 1
    else:
        wl = Workload(config_from_args(a, a.bootstrap))
        wl.run(a.history, before_drain=before_drain)
    if a.check:
        return run_check(a.history, a.check_json)[0]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
