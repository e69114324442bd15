#!/usr/bin/python3
"""An idempotent producer whose connection is cut after a produce response is lost.

    run_with_broker.py --advertise-proxy -- /usr/bin/python3 idempotence_cut_test.py

The broker advertises a port where this test runs a TCP proxy to the broker's real port
($SLUICE_BROKER_REAL), so every connection the client makes goes through it. The proxy forwards
requests and responses, but for a few Produce requests it lets the request reach the broker, swallows
the response and closes the connection: the client cannot know whether the batch was written and
retries it with the same producer id, epoch and sequence. With enable.idempotence=true every record
must then be in the log exactly once, in order (offsets 0, 1, 2, ...), and every delivery must succeed.
"""

import os
import socket
import struct
import sys
import threading

import clientlib as cl

try:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as e:
    cl.missing_client(e, "python3-confluent-kafka")

bs, _bid, _advertised = cl.target()
real = os.environ.get("SLUICE_BROKER_REAL")
topic = cl.topic_name("idempotence-cut", "main")
COUNT = 2000
CUT_EVERY = 7  # every 7th Produce request loses its response


class CuttingProxy:
    """Listens on the advertised address and forwards to the broker, frame by frame."""

    def __init__(self, listen, target):
        host, port = listen.rsplit(":", 1)
        self.target = target.rsplit(":", 1)
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind((host, int(port)))
        self.server.listen(64)
        self.produce_requests = 0
        self.cut = 0
        self.lock = threading.Lock()
        threading.Thread(target=self.accept_loop, daemon=True).start()

    @staticmethod
    def read_exact(s, n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def accept_loop(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(client,), daemon=True).start()

    def serve(self, client):
        broker = socket.create_connection((self.target[0], int(self.target[1])))
        try:
            while True:
                head = self.read_exact(client, 4)
                if head is None:
                    return
                (size,) = struct.unpack(">i", head)
                body = self.read_exact(client, size)
                if body is None:
                    return
                api_key, _version = struct.unpack(">hh", body[:4])
                broker.sendall(head + body)
                rhead = self.read_exact(broker, 4)
                if rhead is None:
                    return
                rbody = self.read_exact(broker, struct.unpack(">i", rhead)[0])
                if rbody is None:
                    return
                drop = False
                if api_key == 0:
                    with self.lock:
                        self.produce_requests += 1
                        if self.produce_requests % CUT_EVERY == 0:
                            self.cut += 1
                            drop = True
                if drop:
                    return  # the broker wrote the batch; the client never hears of it
                client.sendall(rhead + rbody)
        except OSError:
            return
        finally:
            client.close()
            broker.close()


proxy = None


def step_proxy():
    global proxy
    cl.check(real is not None, "run under run_with_broker.py --advertise-proxy ($SLUICE_BROKER_REAL is unset)")
    proxy = CuttingProxy(bs, real)
    cl.require_reachable(bs)


def step_create_topic():
    a = AdminClient({"bootstrap.servers": bs})
    a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=30)


def step_produce_through_cuts():
    errors = []
    p = Producer({"bootstrap.servers": bs, "enable.idempotence": True, "acks": "all", "linger.ms": 2,
                  "batch.num.messages": 50, "max.in.flight.requests.per.connection": 5,
                  "retry.backoff.ms": 50, "message.timeout.ms": 60000, "socket.timeout.ms": 5000})

    def report(err, msg):
        if err is not None:
            errors.append(str(err))

    for i in range(COUNT):
        p.produce(topic, value=b"v%06d" % i, partition=0, on_delivery=report)
        if i % 100 == 99:
            p.poll(0)
            p.flush(30)  # several produce requests, so several cuts
    left = p.flush(60)
    cl.check_eq(left, 0, "messages still undelivered after flush")
    cl.check(not errors, f"delivery errors: {errors[:3]}")
    cl.check(proxy.cut >= 3, f"the proxy cut only {proxy.cut} produce response(s) of {proxy.produce_requests}")
    return f"{proxy.cut} of {proxy.produce_requests} produce responses lost, every delivery reported ok"


def step_exactly_once_in_the_log():
    c = Consumer({"bootstrap.servers": bs, "group.id": topic, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, 0)])
    seen = []
    try:
        while len(seen) < COUNT:
            m = c.poll(10)
            cl.check(m is not None, f"read {len(seen)} of {COUNT} records, then nothing for 10 s")
            if m.error():
                continue
            cl.check_eq(m.offset(), len(seen), "offset of the next record (a duplicate would shift it)")
            cl.check_eq(m.value(), b"v%06d" % len(seen), f"record at offset {m.offset()}")
            seen.append(m.value())
        low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
        cl.check_eq(high, COUNT, "high watermark: each record exactly once")
    finally:
        c.close()
    return f"{COUNT} records, each once, offsets 0..{COUNT - 1}"


if __name__ == "__main__":
    sys.exit(cl.run_steps("idempotence across lost responses", [
        ("a proxy that loses produce responses", step_proxy),
        ("create the topic", step_create_topic),
        ("produce through the cuts with enable.idempotence", step_produce_through_cuts),
        ("every record exactly once in the log", step_exactly_once_in_the_log),
    ]))
