#!/usr/bin/python3
"""The admin_http plugin against a real brokerd: status endpoints, JSON errors (404, 405, 400, 413),
a half-open connection that does not block others, chunked bodies received in small pieces, and /metrics checked by a real Prometheus parser
(Debian's python3-prometheus-client).

    admin_http_test.py BROKERD PLUGIN_DIR
"""

import socket
import sys
import time

from prometheus_client.parser import text_string_to_metric_families

from adminlib import Broker, check, failures, request

brokerd, plugin_dir = sys.argv[1], sys.argv[2]


def main():
    b = Broker(brokerd, plugin_dir, admin_yaml="      max_body_bytes: 1024\n")
    try:
        port, kafka_port = b.port, b.kafka_port
        if port is None:
            return
        status, headers, body = request(port, "/v1/status/live")
        check(status == 200 and body == b'{"status":"live"}', f"live: {status} {body!r}")
        status, headers, body = request(port, "/v1/status/ready")
        check(status == 200 and headers["Content-Type"] == "application/json", f"ready: {status} {headers}")

        # A half-open connection (a request head that never ends) must not block anyone.
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"GET /v1/status/live HTTP/1.1\r\nHost: x\r\n")
        status, _, _ = request(port, "/v1/status/live")
        check(status == 200, "a second client is served while another connection is half-open")

        status, _, body = request(port, "/v1/no/such/route")
        check(status == 404 and b'"code":404' in body and b"/v1/no/such/route" in body, f"404: {status} {body!r}")
        status, headers, body = request(port, "/v1/status/live", method="POST", body=b"{}")
        check(status == 405 and headers.get("Allow") == "GET, HEAD" and b'"code":405' in body, f"405: {status} {body!r}")
        status, _, body = request(port, "/v1/status/live", method="PUT", body=b"x" * 5000)
        check(status == 413 and b'"code":413' in body, f"body above max_body_bytes: {status} {body!r}")
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"NOT-HTTP\r\n\r\n")
        reply = s.recv(4096)
        check(reply.startswith(b"HTTP/1.1 400") and b'"code":400' in reply, f"malformed request: {reply[:80]!r}")
        s.close()

        # Chunked bodies arriving in small pieces. Boost 1.81's parser asserts (debug builds, which
        # this broker is) when an empty chunked body's final chunk is fed again with fewer than 5
        # bytes; the plugin waits for them (feed_request). Then a body sent one byte at a time.
        for what, pieces in [("an empty chunked body in pieces", [b"0\r\n", b"\r", b"\n"]),
                             ("a chunked body one byte at a time",
                              [bytes([c]) for c in b"5\r\nhello\r\n0\r\n\r\n"])]:
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(b"POST /v1/status/live HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in pieces:
                time.sleep(0.05)
                s.sendall(piece)
            s.settimeout(10)
            reply = s.recv(4096)
            s.close()
            check(reply.startswith(b"HTTP/1.1 405"), f"{what}: parsed and answered: {reply[:60]!r}")
            status, _, _ = request(port, "/v1/status/live")
            check(status == 200, f"{what}: the broker still serves")

        # Some Kafka traffic for the per-API metrics.
        from confluent_kafka import Producer
        prod = Producer({"bootstrap.servers": f"127.0.0.1:{kafka_port}"})
        for i in range(10):
            prod.produce("metrics-topic", value=b"x%d" % i)
        check(prod.flush(30) == 0, "10 records produced through the kafka plugin")

        status, headers, body = request(port, "/metrics")
        check(status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4"),
              f"/metrics content type: {headers['Content-Type']}")
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        check("sluice_admin_http_requests" in families and families["sluice_admin_http_requests"].type == "counter",
              f"the admin plugin's own counter is exposed: {sorted(families)[:10]}")
        served = [s.value for s in families["sluice_admin_http_requests"].samples if s.name.endswith("_total")]
        check(served and served[0] >= 6, f"requests counted: {served}")
        kafka = families.get("sluice_kafka_requests")
        check(kafka is not None and kafka.type == "counter", "kafka_requests_total is one counter family")
        if kafka is not None:
            by_api = {s.labels.get("api"): s.value for s in kafka.samples if s.name.endswith("_total")}
            check(by_api.get("Produce", 0) >= 1 and by_api.get("Metadata", 0) >= 1,
                  f"requests counted per API: {by_api}")
        lat = families.get("sluice_kafka_request_latency_us")
        check(lat is not None and lat.type == "histogram", "kafka request latency is a histogram family")
        if lat is not None:
            produce = [s for s in lat.samples if s.labels.get("api") == "Produce" and s.name.endswith("_count")]
            check(produce and produce[0].value >= 1, f"Produce latency recorded: {produce}")
        h = families.get("sluice_storage_append_latency_us")
        check(h is not None and h.type == "histogram", "storage append latency is a histogram")
        if h is not None:
            buckets = [s for s in h.samples if s.name.endswith("_bucket")]
            values = [s.value for s in buckets]
            check(values == sorted(values), "histogram buckets are cumulative")
            check(buckets[-1].labels["le"] == "+Inf", "the last bucket is +Inf")
        slow.close()
    finally:
        b.close()


if __name__ == "__main__":
    main()
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)
