#!/usr/bin/python3
"""The harness's network faults on real namespaces, without brokers (docs/RELIABILITY.md, "Faults"):
a TCP echo server in each node's namespace, clients in the other namespaces and on the host.

- delay: new connections from the node, to the node, and from the host to the node take at least
  2 x delay per round trip; a connection the node had before is aborted (it would bypass the
  proxy); 4 MiB of random bytes come back unchanged and in order through the proxies; a half-close
  is forwarded; connections between the other two nodes are not slowed; heal() closes the proxied
  connections (one with a request in flight sees the close at once), restores direct round trips
  and stops the proxies;
- isolate and loss rules, and heal() removing them.

Needs root, ip, iptables and ss; exits 77 (skipped) where netns.check() says the machine cannot.
"""
import ctypes
import os
import random
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import netns  # noqa: E402

NET = int(os.environ.get("SLUICE_NETNS_TEST_NET", "93"))
PORT = 7000
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def in_namespace(ns, fn):
    """Runs fn() on a thread that has entered network namespace ns (setns affects the calling thread
    only), so its sockets live there."""
    box = {}

    def body():
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:  # os.setns is Python 3.12's
                raise OSError(ctypes.get_errno(), f"setns {ns}")
        finally:
            os.close(fd)
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller
            box["error"] = e

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def echo_server(ip):
    """Listens on ip:PORT (in the current thread's namespace) and echoes each connection until EOF,
    then half-closes. Returns the listening socket (closed by the caller)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((ip, PORT))
    srv.listen(16)

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    def echo(conn):
        with conn:
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        conn.shutdown(socket.SHUT_WR)
                        return
                    conn.sendall(data)
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    return srv


def connect(ip):
    c = socket.create_connection((ip, PORT), timeout=10)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def rtt(c):
    """Median of 5 one-byte round trips on connection c, in seconds."""
    times = []
    for _ in range(5):
        t = time.monotonic()
        c.sendall(b"x")
        if c.recv(1) != b"x":
            raise AssertionError("echo lost a byte")
        times.append(time.monotonic() - t)
    return sorted(times)[2]


def new_rtt(ip):
    with connect(ip) as c:
        return rtt(c)


def roundtrip_bytes(ip, payload):
    """Sends payload, half-closes, and reads the echo to EOF (the proxy must forward the FIN)."""
    with connect(ip) as c:
        got = bytearray()
        sender = threading.Thread(target=lambda: (c.sendall(payload), c.shutdown(socket.SHUT_WR)))
        sender.start()
        while True:
            data = c.recv(1 << 16)
            if not data:
                break
            got += data
        sender.join()
        return bytes(got)


class NetnsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net_ctx = netns.Network(3, net=NET)
        cls.net = cls.net_ctx.__enter__()
        cls.servers = [in_namespace(cls.net.ns(i), lambda i=i: echo_server(cls.net.ip(i))) for i in (1, 2, 3)]

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers:
            s.close()
        cls.net_ctx.__exit__(None, None, None)

    def tearDown(self):
        self.net.heal()

    def from_ns(self, node, fn):
        return in_namespace(self.net.ns(node), fn)

    def test_delay(self):
        net = self.net
        self.assertTrue(net.can_delay, "nat REDIRECT or ss is missing")
        base = self.from_ns(1, lambda: new_rtt(net.ip(2)))
        self.assertLess(base, 0.05, f"a direct round trip took {base:.3f} s")
        # A connection opened before the fault must not bypass the proxy: it is aborted.
        old = self.from_ns(1, lambda: connect(net.ip(2)))
        delay_ms = 150
        net.delay(1, delay_ms, 0)
        with self.assertRaises(OSError):
            for _ in range(3):  # the abort may take a moment to show
                old.sendall(b"x")
                if not old.recv(1):
                    raise ConnectionResetError("closed")
                time.sleep(0.1)
        old.close()
        floor = 2 * delay_ms / 1000.0
        out = self.from_ns(1, lambda: new_rtt(net.ip(2)))      # opened by the node (its proxy)
        inbound = self.from_ns(3, lambda: new_rtt(net.ip(1)))  # opened by a peer (the peer's proxy)
        client = new_rtt(net.ip(1))                             # from the host (PREROUTING)
        other = self.from_ns(2, lambda: new_rtt(net.ip(3)))    # not involving node 1
        for name, v in (("node 1 -> node 2", out), ("node 3 -> node 1", inbound), ("host -> node 1", client)):
            self.assertGreaterEqual(v, floor, f"{name}: round trip {v:.3f} s under delay {delay_ms} ms")
            self.assertLess(v, floor + 1.0, f"{name}: round trip {v:.3f} s, far over the delay")
        self.assertLess(other, 0.05, f"node 2 -> node 3 was slowed: {other:.3f} s")
        payload = random.Random(1).randbytes(4 << 20)
        for node, dst in ((1, net.ip(2)), (3, net.ip(1))):
            got = self.from_ns(node, lambda dst=dst: roundtrip_bytes(dst, payload))
            self.assertEqual(len(got), len(payload), f"node {node} -> {dst}: bytes lost")
            self.assertTrue(got == payload, f"node {node} -> {dst}: bytes changed or reordered")
        self.assertEqual(len(net.proxies), 3)
        # Connections through the proxies with a request in flight at the heal (a produce awaiting its
        # answer): closed at once, so clients reconnect directly. Flushing the NAT rules before the
        # proxies stopped left them silent until the clients' own timeouts.
        waiting = [connect(net.ip(1)), self.from_ns(1, lambda: connect(net.ip(2)))]  # host -> node 1, node 1 -> 2
        for c in waiting:
            c.sendall(b"y")
        net.heal()
        for c in waiting:
            c.settimeout(3.0)
            try:
                self.assertIn(c.recv(16), (b"", b"y"))
                c.sendall(b"z")
                self.assertEqual(c.recv(16), b"", "a proxied connection still forwards after the heal")
            except ConnectionError:
                pass  # a reset: closed too
            except socket.timeout:
                self.fail("a proxied connection stayed silent after the heal instead of closing")
            finally:
                c.close()
        self.assertEqual(net.proxies, {})
        after = self.from_ns(1, lambda: new_rtt(net.ip(2)))
        self.assertLess(after, 0.05, f"after heal a round trip took {after:.3f} s")

    def test_isolate_and_loss(self):
        net = self.net
        net.isolate(2)
        with self.assertRaises(OSError):
            self.from_ns(1, lambda: socket.create_connection((net.ip(2), PORT), timeout=1.0))
        self.assertLess(new_rtt(net.ip(2)), 0.05, "the host (clients) must still reach an isolated node")
        net.heal()
        self.assertLess(self.from_ns(1, lambda: new_rtt(net.ip(2))), 0.05)
        net.loss(3, 30)
        self.assertEqual(len(net.rules), 2)
        self.assertTrue(all("statistic" in a for _, a in net.rules))
        net.heal()
        self.assertEqual(net.rules, [])


if __name__ == "__main__":
    why = netns.check()
    if why:
        print(f"netns_test: skipped: {why}")
        sys.exit(77)
    unittest.main(verbosity=2)
