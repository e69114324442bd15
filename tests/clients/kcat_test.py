#!/usr/bin/python3
"""kcat (librdkafka's command-line client) against a Sluice broker.

    kcat_test.py [HOST:PORT]        (or $SLUICE_BOOTSTRAP; $KCAT picks the kcat binary)

Checks, with kcat's documented options only:
  -L / -L -J       the broker's id and advertised host:port, the controller id, topics and partitions
  -P FILE...       each file is one message (kcat's whole-file mode): random binary files, including
                   newlines, NULs and 0xff, come back byte for byte with -C -f '%s', at offsets 0..N-1
  -K -H -Z         keys, headers (duplicates, empty and null values, order), null keys and values
  compression      none, gzip, snappy, lz4 and zstd (-X compression.codec), each on its own topic and
                   all mixed in one partition; every key, value and offset checked
  -o               beginning, absolute, -1 (last), s@TS and e@TS (start and stop by timestamp)
  -Q               offsets for timestamps: the earliest offset whose timestamp is >= the query, -1 past
                   the end, and the special -1 (latest) and -2 (earliest) timestamps
  unknown topic    a consumer (which does not ask for auto-creation) gets UNKNOWN_TOPIC_OR_PARTITION and
                   the topic is not created
Topics are created by auto-creation (auto_create_topics_enable: true, num_partitions: 1).
"""

import json
import os
import random
import re
import subprocess
import sys
import tempfile

import clientlib as cl

KCAT = os.environ.get("KCAT", "kcat")
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
ENV = {k: v for k, v in os.environ.items() if k not in ("KCAT_CONFIG", "KAFKACAT_CONFIG")}

bs, bid, advertised = cl.target()
tmp = tempfile.TemporaryDirectory(prefix="kcat_test.")


def kcat(args, stdin=None, timeout=120, expect_ok=True):
    """Runs kcat; returns (stdout bytes, stderr str). Fails with the command and its stderr if it fails."""
    cmd = [KCAT, "-b", bs, "-F", "none", "-m", "15"] + args
    try:
        p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           env=ENV)
    except subprocess.TimeoutExpired as e:
        cl.fail(f"kcat did not finish within {timeout} s: {' '.join(cmd)}\nstderr: "
                f"{(e.stderr or b'').decode(errors='replace')[-2000:]}")
    err = p.stderr.decode(errors="replace")
    if expect_ok and p.returncode != 0:
        cl.fail(f"kcat exited with {p.returncode}: {' '.join(cmd)}\nstderr:\n{err[-3000:]}")
    return p.stdout, err, p.returncode


def produce_args(topic, codec="none"):
    # A delivery failure makes kcat exit 1; the timeout keeps a broker that never answers from hanging the test.
    return ["-P", "-t", topic, "-p", "0", "-X", "message.timeout.ms=30000", "-X", f"compression.codec={codec}",
            "-X", "linger.ms=20"]


def consume_json(topic, *offset_args, count=None):
    args = ["-C", "-t", topic, "-p", "0", "-e", "-J"] + list(offset_args or ("-o", "beginning"))
    if count is not None:
        args += ["-c", str(count)]
    out, _, _ = kcat(args)
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


def headers_of(msg):
    """kcat prints headers as a flat [name, value, ...] list (or, in newer versions, a name -> [values] map)."""
    h = msg.get("headers")
    if h is None:
        return []
    if isinstance(h, dict):
        return [(k, v) for k, vs in h.items() for v in vs]
    return list(zip(h[0::2], h[1::2]))


def text_value(r, n):
    # Printable ASCII without the -D/-K delimiters, with the characters JSON and CSV output must escape.
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \"\\,=:;{}[]'/%$#@!~`^&*()-+?<>|."
    if r.random() < 0.3:
        unit = "".join(r.choice(alphabet) for _ in range(r.randint(1, 8)))
        return (unit * (n // len(unit) + 1))[:n]
    return "".join(r.choice(alphabet) for _ in range(n))


# ---- steps ------------------------------------------------------------------------------------------------------

def step_reachable():
    cl.require_reachable(bs)


def step_metadata_lists_the_broker():
    out, _, _ = kcat(["-L", "-J"])
    md = json.loads(out)
    cl.check_eq(md.get("brokers"), [{"id": bid, "name": advertised}],
                "brokers in Metadata (id and advertised host:port)")
    cl.check_eq(md["originating_broker"]["id"], bid, "originating broker id")
    cl.check_eq(md.get("controllerid"), bid, "controller id of a single-node cluster")
    out, _, _ = kcat(["-L"])
    text = out.decode()
    cl.check(re.search(r"^\s*1 brokers:\s*$", text, re.M) is not None, f"kcat -L should report 1 broker:\n{text}")
    cl.check(re.search(rf"^\s*broker {bid} at {re.escape(advertised)}( \(controller\))?$", text, re.M),
             f"kcat -L should list 'broker {bid} at {advertised}':\n{text}")


def step_binary_files_round_trip():
    topic = cl.topic_name("kcat", "binary")
    files, blobs = [], []
    specials = [b"\n" * 1000, b"\r\n" * 777, b"\0" * 4096, bytes(range(256)) * 64, b"\xff", b"x"]
    for i in range(60):
        data = specials[i] if i < len(specials) else cl.payload("kcat-binary", i, max_len=200_000)
        if not data:
            data = b"\n\0\n"  # kcat skips empty files; keep the count fixed
        path = os.path.join(tmp.name, f"blob{i:03d}.bin")
        with open(path, "wb") as f:
            f.write(data)
        files.append(path)
        blobs.append(data)
    # Without -l, kcat sends each whole file as one message, byte for byte (no delimiter splitting).
    kcat(produce_args(topic) + files)

    out, _, _ = kcat(["-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-f", "%o %S %K\\n"])
    rows = [line.split() for line in out.decode().splitlines()]
    cl.check_eq(len(rows), len(blobs), f"messages in {topic}")
    for i, (off, size, klen) in enumerate(rows):
        cl.check_eq(int(off), i, f"offset of message {i}")
        cl.check_eq(int(size), len(blobs[i]), f"value length at offset {i}")
        cl.check_eq(int(klen), -1, f"key length at offset {i} (kcat sends no key: null)")

    raw, _, _ = kcat(["-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-f", "%s"])
    pos = 0
    for i, want in enumerate(blobs):
        cl.check_bytes(raw[pos:pos + len(want)], want, f"value at offset {i} (file {files[i]})")
        pos += len(want)
    cl.check_eq(len(raw), pos, "total bytes consumed")

    raw, _, _ = kcat(["-C", "-t", topic, "-p", "0", "-o", "-1", "-e", "-f", "%o:%s"])
    cl.check_bytes(raw, f"{len(blobs) - 1}:".encode() + blobs[-1], "-o -1 (the last message)")
    raw, _, _ = kcat(["-C", "-t", topic, "-p", "0", "-o", "7", "-c", "3", "-f", "%s"])
    cl.check_bytes(raw, b"".join(blobs[7:10]), "-o 7 -c 3 (offsets 7..9)")
    return f"{len(blobs)} messages, {sum(map(len, blobs))} bytes"


EXPECTED_HEADERS = [("trace", "abc123"), ("dup", "1"), ("dup", "2"), ("empty", ""), ("nullhdr", None),
                    ("eq", "a=b,c")]
HEADER_ARGS = ["-H", "trace=abc123", "-H", "dup=1", "-H", "dup=2", "-H", "empty=", "-H", "nullhdr",
               "-H", "eq=a=b,c"]


def step_keys_headers_nulls():
    topic = cl.topic_name("kcat", "keys")
    r = random.Random("kcat-keys")
    lines, want = [], []
    for i in range(2000):
        if i % 500 == 1:
            lines.append(f"\tvalue-with-null-key-{i}")     # empty key with -Z: null key
            want.append((None, f"value-with-null-key-{i}"))
        elif i % 500 == 2:
            lines.append(f"key-with-null-value-{i}\t")     # empty value with -Z: null value (a tombstone)
            want.append((f"key-with-null-value-{i}", None))
        elif i % 500 == 3:
            lines.append(f"no-key-delimiter-{i}")          # no delimiter: the whole line is the value, no key
            want.append((None, f"no-key-delimiter-{i}"))
        else:
            k = f"k{i}-" + text_value(r, r.randint(0, 40))
            v = text_value(r, r.randint(1, 3000))
            lines.append(f"{k}\t{v}")
            want.append((k, v))
    kcat(produce_args(topic) + ["-K", "\\t", "-Z"] + HEADER_ARGS, stdin=("\n".join(lines) + "\n").encode())

    msgs = consume_json(topic)
    cl.check_eq(len(msgs), len(want), f"messages in {topic}")
    for i, (m, (k, v)) in enumerate(zip(msgs, want)):
        cl.check_eq(m["offset"], i, f"offset of message {i}")
        cl.check_eq(m["partition"], 0, f"partition of message {i}")
        cl.check_eq(m.get("tstype"), "create", f"timestamp type at offset {i}")
        cl.check_eq(m["key"], k, f"key at offset {i}")
        cl.check_eq(m["payload"], v, f"value at offset {i}")
        cl.check_eq(headers_of(m), EXPECTED_HEADERS, f"headers at offset {i} (names, values, order, null)")

    # The same nulls through the length tokens: -1 means null, 0 means empty.
    out, _, _ = kcat(["-C", "-t", topic, "-p", "0", "-o", "1", "-c", "3", "-f", "%K %S\\n"])
    cl.check_eq(out.decode().split("\n")[:3], [f"-1 {len(want[1][1])}", f"{len(want[2][0])} -1",
                                               f"-1 {len(want[3][1])}"], "key/value lengths of offsets 1..3")
    return f"{len(want)} messages"


def codec_lines(codec, n, seed):
    r = random.Random(seed)
    rows = []
    for i in range(n):
        k = f"{codec}-{i}"
        v = text_value(r, r.choice([1, 10, 100, 1000, 5000]))
        rows.append((k, v))
    return rows


def produce_rows(topic, rows, codec):
    data = "".join(f"{k}\t{v}\n" for k, v in rows).encode()
    kcat(produce_args(topic, codec) + ["-K", "\\t", "-X", "batch.num.messages=500"], stdin=data)


def check_rows(msgs, rows, what, first_offset=0):
    cl.check_eq(len(msgs), len(rows), f"messages in {what}")
    for i, (m, (k, v)) in enumerate(zip(msgs, rows)):
        cl.check_eq(m["offset"], first_offset + i, f"{what}: offset of message {i}")
        cl.check_eq(m["key"], k, f"{what}: key at offset {m['offset']}")
        cl.check_eq(m["payload"], v, f"{what}: value at offset {m['offset']}")


def step_every_codec():
    total = 0
    for codec in CODECS:
        topic = cl.topic_name("kcat", f"codec-{codec}")
        rows = codec_lines(codec, 2000, f"kcat-{codec}")
        produce_rows(topic, rows, codec)
        check_rows(consume_json(topic), rows, f"{topic} ({codec})")
        total += len(rows)
    # All codecs in one partition: one fetch returns batches of different codecs.
    topic = cl.topic_name("kcat", "codec-mixed")
    allrows = []
    for round_ in range(2):
        for codec in CODECS:
            rows = codec_lines(codec, 300, f"kcat-mixed-{codec}-{round_}")
            produce_rows(topic, rows, codec)
            allrows += rows
    check_rows(consume_json(topic), allrows, f"{topic} (codecs mixed)")
    return f"{total + len(allrows)} messages"


def step_offsets_and_timestamps():
    topic = cl.topic_name("kcat", "time")
    a = codec_lines("a", 500, "kcat-time-a")
    produce_rows(topic, a, "none")
    # Every message of batch A got its CreateTime before kcat exited, so before `mid`; B's come after it.
    mid = cl.now_ms()
    cl.wait_past_ms(mid)
    b = codec_lines("b", 500, "kcat-time-b")
    produce_rows(topic, b, "lz4")

    msgs = consume_json(topic)
    check_rows(msgs, a + b, topic)
    ts = [m["ts"] for m in msgs]
    for m in msgs:
        cl.check_eq(m.get("tstype"), "create", f"timestamp type at offset {m['offset']}")
    cl.check(max(ts[:500]) <= mid < min(ts[500:]),
             f"CreateTime not preserved: batch A timestamps end at {max(ts[:500])}, batch B starts at "
             f"{min(ts[500:])}, produced before/after {mid}")

    def expected(q):
        # ListOffsets by timestamp: the earliest offset whose timestamp is >= q; -1 if there is none.
        if q == -1:
            return len(msgs)   # LATEST: the high watermark
        if q == -2:
            return 0           # EARLIEST: the log start offset
        return next((m["offset"] for m in msgs if m["ts"] >= q), -1)

    r = random.Random("kcat-query")
    queries = [mid + 1, mid, ts[0], ts[0] - 60_000, ts[-1], ts[-1] + 1, ts[-1] + 86_400_000, -1, -2]
    queries += [ts[r.randrange(len(ts))] for _ in range(5)]
    for q in queries:
        out, _, _ = kcat(["-Q", "-t", f"{topic}:0:{q}"])
        m = re.fullmatch(rf"{re.escape(topic)} \[0\] offset (-?\d+)\n", out.decode())
        cl.check(m is not None, f"kcat -Q -t {topic}:0:{q}: unexpected output {out.decode()!r}")
        if q in (-1, -2):
            cl.check_eq(int(m.group(1)), expected(q), f"offset for timestamp {q} (kcat -Q)")
        else:  # batch B is lz4-compressed
            cl.check_offset_for_time(f"kcat -Q -t {topic}:0:{q}", int(m.group(1)), expected(q))

    check_rows(consume_json(topic, "-o", f"s@{mid + 1}"), b, f"{topic} from s@{mid + 1}", first_offset=500)
    check_rows(consume_json(topic, "-o", "beginning", "-o", f"e@{mid + 1}"), a, f"{topic} until e@{mid + 1}")
    check_rows(consume_json(topic, "-o", "500"), b, f"{topic} from offset 500", first_offset=500)
    check_rows(consume_json(topic, "-o", "-1"), b[-1:], f"{topic} -o -1", first_offset=999)
    return f"{len(queries)} timestamp queries"


def step_topic_metadata():
    topic = cl.topic_name("kcat", "time")
    out, _, _ = kcat(["-L", "-J", "-t", topic])
    md = json.loads(out)
    tops = [t for t in md["topics"] if t["topic"] == topic]
    cl.check_eq(len(tops), 1, f"{topic} in Metadata")
    t = tops[0]
    cl.check("error" not in t, f"topic error in Metadata: {t.get('error')}")
    cl.check_eq(t["partitions"], [{"partition": 0, "leader": bid, "replicas": [{"id": bid}], "isrs": [{"id": bid}]}],
                f"partitions of {topic} (num_partitions: 1, replication factor 1)")
    out, _, _ = kcat(["-L", "-J"])
    names = {t["topic"] for t in json.loads(out)["topics"]}
    for what in ["binary", "keys", "time", "codec-mixed"] + [f"codec-{c}" for c in CODECS]:
        cl.check(cl.topic_name("kcat", what) in names, f"{cl.topic_name('kcat', what)} missing from kcat -L")


def step_unknown_topic_is_not_created_by_a_consumer():
    topic = cl.topic_name("kcat", "never-created")
    # -d protocol shows which Metadata version librdkafka chose from the broker's ApiVersions.
    _, err, rc = kcat(["-C", "-t", topic, "-p", "0", "-e", "-d", "protocol"], expect_ok=False, timeout=60)
    versions = [int(v) for v in re.findall(r"Sent MetadataRequest \(v(\d+)", err)]
    cl.check(versions, f"kcat sent no MetadataRequest (exit {rc}):\n{err[-2000:]}")
    out, _, _ = kcat(["-L", "-J"])
    names = {t["topic"] for t in json.loads(out)["topics"]}
    if max(versions) >= 4:
        # Metadata v4+ carries allow_auto_topic_creation, and a consumer sends false.
        cl.check(rc != 0 and "Unknown topic or partition" in err,
                 f"consuming a missing topic with Metadata v{max(versions)} (allow_auto_topic_creation=false) "
                 f"should fail with UNKNOWN_TOPIC_OR_PARTITION; kcat exited {rc}:\n{err[-1500:]}")
        cl.check(topic not in names, f"{topic} was auto-created by a Metadata request that did not allow it")
        return f"Metadata v{max(versions)}"
    # Before v4 a Metadata request always auto-creates when the broker enables it (auto_create_topics_enable).
    cl.check(rc == 0 and topic in names,
             f"with Metadata v{max(versions)} (no allow_auto_topic_creation field) the topic should be auto-created; "
             f"kcat exited {rc}:\n{err[-1500:]}")
    return f"Metadata v{max(versions)}: auto-created, as Kafka does before v4"


if __name__ == "__main__":
    sys.exit(cl.run_steps("kcat", [
        ("the broker is reachable", step_reachable),
        ("kcat -L lists the broker", step_metadata_lists_the_broker),
        ("binary files round trip byte for byte", step_binary_files_round_trip),
        ("keys, headers and nulls (-K -H -Z)", step_keys_headers_nulls),
        ("every compression codec", step_every_codec),
        ("offsets, timestamps and kcat -Q", step_offsets_and_timestamps),
        ("kcat -L -t lists the topic and its partition", step_topic_metadata),
        ("a consumer does not auto-create topics", step_unknown_topic_is_not_created_by_a_consumer),
    ]))
