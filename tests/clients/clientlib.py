"""Shared helpers of the Python client tests (kcat_test.py, confluent_kafka_test.py,
kafka_python_test.py): the bootstrap address, a fail-fast reachability check,
unique topic names, deterministic payloads and checks that fail loudly.

Standard library only. Each test is a plain program: `TEST [HOST:PORT]`, or the
address from $SLUICE_BOOTSTRAP (set by run_with_broker.py).
"""

import hashlib
import os
import random
import socket
import sys
import time
import traceback


class TestFailure(Exception):
    pass


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def describe_bytes(b):
    if b is None:
        return "None (null)"
    if len(b) <= 48:
        return f"{len(b)} bytes {b!r}"
    return f"{len(b)} bytes {b[:24]!r}...{b[-8:]!r} (sha256 {hashlib.sha256(b).hexdigest()[:16]})"


def check_bytes(got, want, what):
    """Byte-exact comparison that tells where the first difference is; None is null."""
    if got == want and type(got) is type(want):
        return
    if got is None or want is None:
        fail(f"{what}: got {describe_bytes(got)}, want {describe_bytes(want)}")
    if isinstance(got, str):
        got = got.encode()
    if isinstance(want, str):
        want = want.encode()
    if got == want:
        return
    first = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), min(len(got), len(want)))
    fail(f"{what}: got {describe_bytes(got)}, want {describe_bytes(want)}; first difference at byte {first}")


def check_eq(got, want, what):
    if got != want:
        fail(f"{what}: got {got!r}, want {want!r}")


def bootstrap():
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    bs = args[0] if args else os.environ.get("SLUICE_BOOTSTRAP")
    if not bs:
        print(f"usage: {os.path.basename(sys.argv[0])} HOST:PORT   (or set SLUICE_BOOTSTRAP)", file=sys.stderr)
        sys.exit(2)
    return bs


def broker_id():
    return int(os.environ.get("SLUICE_BROKER_ID", "1"))


def target():
    """(bootstrap address, expected broker id, expected advertised host:port)."""
    bs = bootstrap()
    return bs, broker_id(), os.environ.get("SLUICE_ADVERTISED", bs)


def require_reachable(bs, timeout=10.0):
    """Fails at once with a clear message when nothing listens at the bootstrap address."""
    host, _, port = bs.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        fail(f"cannot connect to the broker at {bs}: {e.strerror or e} -- is brokerd running with the kafka "
             f"plugin listening there? (tests/clients/run_with_broker.py starts one)")


_run_id = f"{os.getpid()}-{int(time.time() * 1000) % 10**9}"


def topic_name(test, what):
    """Unique per run, so runs against a long-lived broker never share a topic."""
    return f"sluice-{test}-{what}-{_run_id}"


def now_ms():
    return int(time.time() * 1000)


def wait_past_ms(t):
    """Returns once the wall clock has moved past millisecond t (at most a few ms: no fixed sleep)."""
    while now_ms() <= t:
        time.sleep(0.0005)


def payload(seed, i, max_len=4096):
    """Deterministic bytes for record i: every byte value occurs, including \\n, \\r, \\0, 0xff; length varies,
    sometimes 0, sometimes large; some are compressible runs."""
    r = random.Random(f"{seed}/{i}")
    kind = i % 10
    if kind == 0:
        n = 0
    elif kind == 7:
        n = r.randint(32 * 1024, 256 * 1024) if i % 70 == 7 else r.randint(1, max_len)
    else:
        n = r.randint(1, max_len)
    if kind in (3, 4):  # compressible
        unit = r.randbytes(r.randint(1, 16))
        return (unit * (n // max(1, len(unit)) + 1))[:n]
    return r.randbytes(n)


# Deviations of the broker that are known and documented (docs/KAFKA.md), listed per test in
# SLUICE_CLIENTS_KNOWN_GAPS by tests/clients/CMakeLists.txt. A listed gap tolerates exactly its own symptom,
# reported as "KNOWN GAP"; anything else still fails. Remove an entry when the broker fixes it.
KNOWN_GAPS = {g for g in os.environ.get("SLUICE_CLIENTS_KNOWN_GAPS", "").split(",") if g}
GAP_TS_COMPRESSED = "timestamp-in-compressed-batch"
_gaps_seen = {}


def known_gap(gap, msg):
    """True, after reporting it, when gap is listed in SLUICE_CLIENTS_KNOWN_GAPS."""
    if gap not in KNOWN_GAPS:
        return False
    n = _gaps_seen.get(gap, 0)
    _gaps_seen[gap] = n + 1
    if n < 3:
        print(f"   KNOWN GAP {gap}: {msg}", flush=True)
    return True


def check_offset_for_time(what, got, want, got_ts=None, want_ts=None):
    """A ListOffsets-by-timestamp answer: the earliest offset whose timestamp is >= T (`want`, or the client's
    "none" value), and optionally the timestamp returned with it. Kafka finds the record inside compressed
    batches too; a broker that answers a compressed batch's first offset and max timestamp instead is
    tolerated only under the known gap."""
    if got == want and got_ts == want_ts:
        return
    msg = (f"{what}: got offset {got}" + (f" (timestamp {got_ts})" if got_ts is not None else "") +
           f", want {want}" + (f" (timestamp {want_ts})" if want_ts is not None else ""))
    batch_start = (isinstance(want, int) and isinstance(got, int) and 0 <= got <= want and
                   (want_ts is None or (got_ts is not None and got_ts >= want_ts)))
    if batch_start and known_gap(GAP_TS_COMPRESSED, msg + ": a compressed batch's first offset / max timestamp"):
        return
    fail(msg)


def report_gaps():
    for gap in sorted(KNOWN_GAPS):
        if gap in _gaps_seen:
            print(f"KNOWN GAP {gap}: tolerated {_gaps_seen[gap]} time(s) (SLUICE_CLIENTS_KNOWN_GAPS)")
        else:
            print(f"NOTE: known gap {gap} was not observed in this run; if the broker fixed it, remove it from "
                  f"SLUICE_CLIENTS_KNOWN_GAPS for this test in tests/clients/CMakeLists.txt")


def missing_client(error, package):
    """Exits with a clear message when a client library cannot be imported."""
    print(f"FAILED: cannot import the client ({error}): run scripts/install-deps.sh and use /usr/bin/python3 "
          f"({package}), not {sys.executable}", file=sys.stderr)
    sys.exit(1)


def wait_until(pred, what, timeout=30.0, interval=0.2):
    """Polls pred() until it returns something true and returns that; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            fail(f"{what}: still not true after {timeout:g} s")
        time.sleep(interval)


def timestamp_queries(recs, none):
    """(timestamp, expected offset) pairs for one partition whose records have increasing "ts" and sit at
    offsets 0, 1, 2, ...: a record's own timestamp finds it, a timestamp just before it too (the earliest
    offset whose timestamp is >= T), one before everything finds 0, one after everything finds `none`."""
    picks = sorted({0, 1, len(recs) // 3, len(recs) // 2, len(recs) - 1})
    q = [(recs[k]["ts"], k) for k in picks]
    q += [(recs[k]["ts"] - 1, k) for k in picks if k > 0 and recs[k]["ts"] - 1 > recs[k - 1]["ts"]]
    return q + [(recs[0]["ts"] - 3_600_000, 0), (recs[-1]["ts"] + 1, none)]


class Cursor:
    """Consumption in offset order: want maps partition -> the records expected there, in order."""

    def __init__(self, topic, want, timeout=180.0):
        self.topic, self.want = topic, want
        self.pos = {p: 0 for p in want}
        self.deadline = time.monotonic() + timeout

    def done(self):
        check(time.monotonic() < self.deadline, f"{self.topic}: timed out; consumed {self.pos}")
        return all(self.pos[p] >= len(self.want[p]) for p in self.want)

    def next(self, partition, offset):
        """The record expected at (partition, offset); checks the offset is the next one."""
        check(partition in self.want, f"{self.topic}: a message from unassigned partition {partition}")
        i = self.pos[partition]
        check(i < len(self.want[partition]), f"{self.topic}[{partition}]: more messages than produced "
                                             f"(offset {offset})")
        rec = self.want[partition][i]
        check_eq(offset, rec["offset"], f"{self.topic}[{partition}] ({rec['label']}): offset")
        self.pos[partition] += 1
        return rec, f"{self.topic}[{partition}]@{offset} ({rec['label']})"

    def end_of_partition(self, partition, offset):
        check(self.pos[partition] >= len(self.want[partition]),
              f"{self.topic}[{partition}] ended at offset {offset} after {self.pos[partition]} of "
              f"{len(self.want[partition])} records")

    def count(self):
        return sum(self.pos.values())


def run_steps(name, steps):
    """Runs [(title, fn)] in order; stops at the first failure. Prints the closing line CTest logs show."""
    t0 = time.monotonic()
    passed = 0
    for title, fn in steps:
        print(f"== {name}: {title}", flush=True)
        t = time.monotonic()
        try:
            result = fn()
        except TestFailure as e:
            print(f"FAILED: {name}: {title}: {e}", file=sys.stderr, flush=True)
            print(f"{passed} passed, 1 failed", flush=True)
            return 1
        except Exception:
            traceback.print_exc()
            print(f"FAILED: {name}: {title}: unexpected exception (above)", file=sys.stderr, flush=True)
            print(f"{passed} passed, 1 failed", flush=True)
            return 1
        note = f" ({result})" if isinstance(result, str) and result else ""
        print(f"   ok in {time.monotonic() - t:.1f} s{note}", flush=True)
        passed += 1
    report_gaps()
    print(f"{name}: all {passed} steps passed in {time.monotonic() - t0:.1f} s", flush=True)
    print(f"{passed} passed, 0 failed", flush=True)
    return 0


# The APIs a consumer group needs from the broker (Kafka API keys).
GROUP_APIS = {8: "OffsetCommit", 9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
              13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups"}


def api_versions(bs, timeout=10.0):
    """{api key: (min, max)} from a raw ApiVersions v0 request (no client library involved)."""
    import struct
    host, _, port = bs.rpartition(":")
    body = struct.pack(">hhih", 18, 0, 1, len(b"sluice-clientlib")) + b"sluice-clientlib"
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                fail(f"ApiVersions v0: the broker at {bs} closed the connection after {len(buf)} bytes")
            buf += chunk
    _corr, err, n = struct.unpack(">ihi", buf[4:14])
    check(err == 0, f"ApiVersions v0: error code {err}")
    return {k: (lo, hi) for k, lo, hi in (struct.unpack(">hhh", buf[14 + 6 * i:20 + 6 * i]) for i in range(n))}


def require_group_coordinator(bs, keys=tuple(GROUP_APIS)):
    """Fails at once, naming what is missing, when the broker does not advertise the consumer-group APIs
    `keys` (default: all of GROUP_APIS): a group client would otherwise retry FindCoordinator until a timeout."""
    require_reachable(bs)
    have = api_versions(bs)
    missing = [f"{GROUP_APIS[k]} ({k})" for k in sorted(keys) if k not in have]
    check(not missing, f"the broker at {bs} has no consumer-group coordinator: ApiVersions does not advertise "
                       f"{', '.join(missing)}")
    return ", ".join(f"{GROUP_APIS[k]} v{have[k][0]}-{have[k][1]}" for k in sorted(keys))


def broker_control(cmd, timeout=120.0):
    """Asks run_with_broker.py to "restart" (SIGTERM) or "kill" (SIGKILL) the broker and start it again on the
    same data directory and port; returns the new broker's pid once it accepts connections."""
    addr = os.environ.get("SLUICE_BROKER_CONTROL")
    check(addr, "SLUICE_BROKER_CONTROL is not set: run this test through tests/clients/run_with_broker.py, "
                "which restarts the broker for it")
    host, _, port = addr.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(cmd.encode() + b"\n")
        reply = s.makefile("r").readline().strip()
    check(reply.startswith("ok "), f"broker {cmd} through the harness: {reply or 'no reply'}")
    return int(reply.split()[1])
