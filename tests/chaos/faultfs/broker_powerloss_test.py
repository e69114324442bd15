#!/usr/bin/python3
"""Power loss under a real brokerd: no record acknowledged with acks=all may be lost.

    broker_powerloss_test.py --brokerd build/debug/bin/brokerd --plugin-dir build/debug/lib/sluice/plugins \\
        --faultfs build/debug/bin/sluice-faultfs [--work-dir DIR] [-k CASE] [--keep]

Each case mounts sluice-faultfs (docs/RELIABILITY.md) and runs one brokerd with its data directory on
the mount (the directory itself is created and made durable by the harness). A confluent-kafka
producer sends unique values with acks=all; the harness SIGKILLs brokerd, drops everything not
fsynced (a power cut), restarts brokerd on the same data directory and reads every partition back:
each acknowledged value must be at the offset its acknowledgement gave.

Cases:
  fresh            storage+kafka: a new topic, acknowledged records, power cut
  synced-dirs      storage+kafka, 64 KiB segments (rolls): the topic's directories are made durable
                   first (`sync`), then three rounds of produce / SIGKILL mid-stream / power cut / restart
  retention        synced-dirs with retention.bytes = 3 segments (segment files recycled as spares);
                   records below the log start may be gone, every other acknowledged one must stay
  raft-*           the same three with the raft plugin (a one-node cluster)

Exit 0 when no case lost an acknowledged record, 1 otherwise (the report names each loss, LOST:,
and each harness or broker failure, FAIL:), 77 when FUSE is missing. SLUICE_CHAOS_KNOWN_GAPS lists
known broker gaps (see KNOWN_GAPS below) whose exact symptom is reported but tolerated. Needs
Debian's /usr/bin/python3 (python3-confluent-kafka).
"""

import argparse
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultfslib import SANITIZER_MARKERS, FaultFS, FaultFSError, fsync_dir, skip_reason  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "clients"))
from run_with_broker import free_port, port_accepts, set_pdeathsig  # noqa: E402

EXIT_SKIP = 77
PARTITIONS = 2
TOPIC = "powerloss"

# Known broker gaps, listed by tests/chaos/faultfs/CMakeLists.txt in SLUICE_CHAOS_KNOWN_GAPS. A listed gap tolerates
# exactly its own symptom, reported as "KNOWN GAP"; anything else still fails. Remove it once fixed.
#   new-dirs-not-fsynced: brokerd creates <data_dir>/storage, kafka, raft, the topic's and the partitions'
#   directories without fsyncing their parents, so a power cut before the OS writes them back loses the
#   topic with every record acknowledged in it.
KNOWN_GAPS = {g for g in os.environ.get("SLUICE_CHAOS_KNOWN_GAPS", "").split(",") if g}
GAP_NEW_DIRS = "new-dirs-not-fsynced"
gaps_seen = {}

try:
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError:  # reported in main()
    Producer = None


def say(msg):
    print(f"broker_powerloss: {msg}", flush=True)


class Broker:
    """One brokerd: config and log beside the mount (they must not be lost), data on it."""

    def __init__(self, args, base, data_dir, raft, storage_config):
        self.args, self.base, self.data_dir, self.raft = args, base, data_dir, raft
        self.port, self.raft_port = free_port(), free_port()
        self.config = os.path.join(base, "sluice.yaml")
        self.log_path = os.path.join(base, "brokerd.log")
        self.proc = None
        lines = ["node:", "  id: 1", f"  data_dir: {data_dir}", "  shards: 2", "  pin_threads: false",
                 f"  plugin_dir: {args.plugin_dir}", "plugins:", "  - name: storage"]
        if storage_config:
            lines += ["    config:"] + [f"      {k}: {v}" for k, v in storage_config.items()]
        if raft:
            lines += ["  - name: raft", "    config:", f"      listen: 127.0.0.1:{self.raft_port}",
                      "      cluster_id: powerloss", "      seeds:", f"        - 1@127.0.0.1:{self.raft_port}",
                      "      election_timeout_ms: 1000", "      heartbeat_interval_ms: 100"]
        lines += ["  - name: kafka", "    config:", "      listeners:", "        - name: PLAINTEXT",
                  f"          address: 127.0.0.1:{self.port}", "      auto_create_topics_enable: false",
                  "      default_replication_factor: 1"]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=90):
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== broker_powerloss: starting brokerd at {time.strftime('%H:%M:%S')} ===\n".encode())
            log.flush()
            self.proc = subprocess.Popen([self.args.brokerd, "--config", self.config], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, cwd=self.base,
                                         preexec_fn=set_pdeathsig)
        deadline = time.monotonic() + timeout
        while not port_accepts(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"brokerd exited with status {self.proc.returncode} at start-up:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"brokerd did not listen within {timeout} s:\n{self.tail()}")
            time.sleep(0.1)
        say(f"brokerd pid {self.proc.pid} listens on {self.bootstrap}")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            say(f"SIGKILLed brokerd pid {self.proc.pid}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])


def create_topic(bootstrap, config):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 60
    while True:
        fut = admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=1,
                                            config=config)])[TOPIC]
        try:
            fut.result(timeout=30)
            return
        except KafkaException as e:
            if time.monotonic() > deadline:
                raise RuntimeError(f"cannot create topic {TOPIC}: {e}")
            time.sleep(0.5)


class Producing:
    """A producer thread sending unique values with acks=all; `acked` holds (partition, offset, value)."""

    def __init__(self, bootstrap, tag, value_bytes):
        self.tag, self.value_bytes = tag, value_bytes
        self.acked = []
        self.failed = 0
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2,
                           "message.timeout.ms": 60000, "enable.idempotence": False,
                           "max.in.flight.requests.per.connection": 5})
        self.thread = threading.Thread(target=self.run, daemon=True)

    def on_delivery(self, err, msg):
        with self.lock:
            if err is None:
                self.acked.append((msg.partition(), msg.offset(), msg.value()))
            else:
                self.failed += 1

    def run(self):
        i = 0
        while not self.stop_flag.is_set():
            value = f"{self.tag}-{i:08d}-".encode().ljust(self.value_bytes, b"x")
            try:
                self.p.produce(TOPIC, value=value, partition=i % PARTITIONS, on_delivery=self.on_delivery)
                i += 1
            except BufferError:
                pass
            self.p.poll(0.001 if i % 20 else 0.01)

    def start(self):
        self.thread.start()

    def count(self):
        with self.lock:
            return len(self.acked)

    def wait_acks(self, n, timeout=120):
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.count()} of {n} acknowledgements within {timeout} s")
            time.sleep(0.01)

    def finish(self):
        """After the broker is dead: forget what is in flight (never resent to the restarted broker)."""
        self.stop_flag.set()
        self.thread.join()
        self.p.purge(in_queue=True, in_flight=True, blocking=False)
        self.p.flush(0)
        self.p.poll(0.5)
        with self.lock:
            return list(self.acked)


def partitions_ready(bootstrap, wait_for_topic):
    """Whether the broker names a leader for every partition of TOPIC: True, False (not yet), or None when
    the topic does not exist (after `wait_for_topic` seconds: a restarted broker may still be catching up)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "powerloss-check"})
    try:
        md = c.list_topics(TOPIC, timeout=10)
    except KafkaException:
        return False
    finally:
        c.close()
    t = md.topics.get(TOPIC)
    if t is None or t.error is not None and t.error.code() == 3:  # UNKNOWN_TOPIC_OR_PARTITION
        return None if time.monotonic() > wait_for_topic else False
    if t.error is not None or len(t.partitions) != PARTITIONS:
        return False
    return all(pm.leader >= 0 and pm.error is None for pm in t.partitions.values())


def read_back(bootstrap, timeout=90):
    """{partition: {offset: value}} from the log start to the high watermark, and {partition: (low, high)};
    ({}, None) when the restarted broker does not know the topic."""
    deadline = time.monotonic() + timeout
    topic_deadline = time.monotonic() + 20
    while True:
        ready = partitions_ready(bootstrap, topic_deadline)
        if ready is None:
            say(f"the restarted broker does not know topic {TOPIC}: every record of it is lost")
            return {}, None
        if ready:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"no leader for every partition of {TOPIC} within {timeout} s")
        time.sleep(0.5)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{time.time()}", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "enable.partition.eof": True})
    try:
        highs, marks = {}, {}
        for p in range(PARTITIONS):
            while True:
                try:
                    lo, hi = c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=5)
                    highs[p] = hi
                    marks[p] = (lo, hi)
                    break
                except KafkaException:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        c.assign([TopicPartition(TOPIC, p, marks[p][0]) for p in range(PARTITIONS)])
        found = {p: {} for p in range(PARTITIONS)}
        done = {p for p in range(PARTITIONS) if highs[p] == marks[p][0]}
        while len(done) < PARTITIONS:
            if time.monotonic() > deadline:
                raise RuntimeError(f"reading back timed out: high watermarks {highs}, read "
                                   f"{ {p: len(v) for p, v in found.items()} }")
            msg = c.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == -191:  # _PARTITION_EOF
                    if msg.offset() >= highs[msg.partition()]:
                        done.add(msg.partition())
                    continue
                raise RuntimeError(f"consumer error: {msg.error()}")
            found[msg.partition()][msg.offset()] = msg.value()
            if msg.offset() + 1 >= highs[msg.partition()]:
                done.add(msg.partition())
        return found, marks
    finally:
        c.close()


def verify(acked, found, marks):
    """Every acknowledged record at or past its partition's log start (retention may delete below it) must
    be there, with its value."""
    lost, wrong = [], []
    for p, off, value in acked:
        if marks and off < marks[p][0]:
            continue
        have = found.get(p, {}).get(off)
        if have is None:
            lost.append((p, off, value[:24]))
        elif have != value:
            wrong.append((p, off, value[:24], have[:24]))
    return lost, wrong


def run_case(args, name, case):
    problems = []
    try:
        run_case_on(args, name, case, problems)
    except FaultFSError as e:
        problems.append(f"FAIL: {name}: the filesystem: {e}")
    return problems


def run_case_on(args, name, case, problems):
    with FaultFS(args.faultfs, args.work_dir, keep=args.keep) as fs:
        data = fs.path("data")
        os.mkdir(data)
        fsync_dir(fs.mnt)  # the data directory is the operator's: durable before brokerd starts
        broker = Broker(args, fs.base, data, case.raft, {})
        acked_all = []
        try:
            broker.start()
            create_topic(broker.bootstrap, case.topic_config)
            for r in range(case.rounds):
                prod = Producing(broker.bootstrap, f"{name}-r{r}", case.value_bytes)
                prod.start()
                if case.synced_dirs and r == 0:
                    prod.wait_acks(20)
                    fs.control("sync")  # the topic's directories (and all else so far) reach the disk
                    say("sync: everything so far is durable")
                prod.wait_acks(random.randint(150, 400))
                if case.mid_stream:
                    time.sleep(random.uniform(0, 0.3))
                else:
                    prod.stop_flag.set()  # everything sent is acknowledged before the kill
                    prod.thread.join()
                    prod.p.flush(60)
                broker.kill()
                acked = prod.finish()
                acked_all += acked
                st = fs.stats()
                say(f"round {r}: {len(acked)} acknowledged; pending at the power cut: {st['bytes_pending']} bytes in "
                    f"{st['files_pending']} files, {st['entries_pending']} directory entries")
                # The topic's own directories, and where its metadata lives, that were not durable at the cut.
                topic_dirs = ("+data/storage", "+data/kafka", "+data/raft", f"+data/storage/{TOPIC}")
                volatile_dirs = [x for x in st["pending_entries"]
                                 if x.startswith(topic_dirs) and "__consumer_offsets" not in x]
                if st["entries_pending"]:
                    names = [x for x in st["pending_entries"] if "__consumer_offsets" not in x]
                    say(f"  directory entries not durable (besides __consumer_offsets): {names}")
                fs.drop()
                listing = sorted(os.path.relpath(os.path.join(d, x), data)
                                 for d, dirs, files in os.walk(data) for x in dirs + files)
                offsets = [x for x in listing if "__consumer_offsets" in x]
                listing = [x for x in listing if "__consumer_offsets" not in x]
                say(f"after the drop the data directory holds {len(offsets)} __consumer_offsets names and: "
                    f"{listing[:40]}{' ...' if len(listing) > 40 else ''}")
                broker.start()
                found, marks = read_back(broker.bootstrap)
                lost, wrong = verify(acked_all, found, marks)
                say(f"round {r}: (log start, high watermark) {marks}; {len(acked_all)} acknowledged so far, "
                    f"{len(lost)} lost, {len(wrong)} with other contents")
                if lost and not wrong and volatile_dirs and GAP_NEW_DIRS in KNOWN_GAPS:
                    gaps_seen[GAP_NEW_DIRS] = gaps_seen.get(GAP_NEW_DIRS, 0) + 1
                    say(f"KNOWN GAP {GAP_NEW_DIRS}: {name} round {r}: {len(lost)} of {len(acked_all)} acknowledged "
                        f"records lost with these directory entries not durable at the power cut: {volatile_dirs}")
                    break
                if lost or wrong:
                    problems.append(f"LOST: {name} round {r}: {len(lost)} of {len(acked_all)} acknowledged records lost "
                                    f"(first: {lost[:5]}), {len(wrong)} differ (first: {wrong[:5]}); (log start, "
                                    f"high watermark) after the restart: {marks}")
                    break
        except Exception as e:  # noqa: BLE001 -- reported with the broker's log
            problems.append(f"FAIL: {name}: {type(e).__name__}: {e}")
        finally:
            broker.stop()
            log = broker.tail(1 << 30)
            for marker in SANITIZER_MARKERS:
                if marker in log:
                    problems.append(f"FAIL: {name}: the brokerd log has a sanitizer report ({marker!r})")
                    break
            if problems:
                say(f"--- {name}: brokerd log tail ---\n{broker.tail(60)}")


class Case:
    def __init__(self, raft, synced_dirs, topic_config=None):
        self.raft = raft
        self.synced_dirs = synced_dirs  # `sync` once the topic exists, then three rounds killed mid-stream
        self.topic_config = topic_config or {}
        self.rounds = 3 if synced_dirs else 1
        self.mid_stream = synced_dirs
        self.value_bytes = 1000 if synced_dirs else 100


SMALL_SEGMENTS = {"segment.bytes": "65536"}
RETENTION = {"segment.bytes": "65536", "retention.bytes": "196608"}
CASES = {
    "fresh": Case(raft=False, synced_dirs=False),
    "synced-dirs": Case(raft=False, synced_dirs=True, topic_config=SMALL_SEGMENTS),
    "retention": Case(raft=False, synced_dirs=True, topic_config=RETENTION),
    "raft-fresh": Case(raft=True, synced_dirs=False),
    "raft-synced-dirs": Case(raft=True, synced_dirs=True, topic_config=SMALL_SEGMENTS),
    "raft-retention": Case(raft=True, synced_dirs=True, topic_config=RETENTION),
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--brokerd", required=True)
    p.add_argument("--plugin-dir", required=True)
    p.add_argument("--faultfs", required=True)
    p.add_argument("--work-dir", default=None)
    p.add_argument("-k", dest="only", action="append", help="run only this case (repeatable)")
    p.add_argument("--keep", action="store_true", help="keep the mount's backing directory and logs")
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    reason = skip_reason()
    if reason:
        print(f"SKIP: {reason}")
        return EXIT_SKIP
    if Producer is None:
        print("FAIL: confluent_kafka does not import (run with /usr/bin/python3; apt-get install python3-confluent-kafka)")
        return 1
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    say(f"seed {seed}")
    args.brokerd = os.path.abspath(args.brokerd)
    args.plugin_dir = os.path.abspath(args.plugin_dir)
    if args.work_dir:
        os.makedirs(args.work_dir, exist_ok=True)
    problems = []
    for name, case in CASES.items():
        if args.only and name not in args.only:
            continue
        if case.raft and not os.path.exists(os.path.join(args.plugin_dir, "libsluice_raft.so")):
            say(f"{name}: skipped, the raft plugin is not built")
            continue
        say(f"=== {name}")
        found = run_case(args, name, case)
        say(f"{name}: {'FAILED' if found else 'ok'}")
        problems += found
    for gap in sorted(KNOWN_GAPS):
        if gap in gaps_seen:
            print(f"KNOWN GAP {gap}: tolerated {gaps_seen[gap]} time(s) (SLUICE_CHAOS_KNOWN_GAPS)")
        else:
            print(f"NOTE: known gap {gap} was not observed in this run; if the broker fixed it, remove it from "
                  f"SLUICE_CHAOS_KNOWN_GAPS in tests/chaos/faultfs/CMakeLists.txt")
    for prob in problems:
        print(prob)
    if problems:
        print(f"{len(problems)} problem(s)")
    elif gaps_seen:
        print("no acknowledged record lost beyond the known gaps above")
    else:
        print("every acknowledged record survived")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
