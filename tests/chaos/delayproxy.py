#!/usr/bin/python3
"""A transparent TCP proxy that delays every byte it forwards: the `delay` fault of the reliability
harness (docs/RELIABILITY.md, "Faults"). netem is not available in this kernel, so latency is added in
user space.

Run inside a node's network namespace; iptables' nat table sends the connections to delay here
(`-j REDIRECT --to-ports PORT`, OUTPUT for connections the node opens, PREROUTING for connections to
it). The proxy reads each connection's original destination (SO_ORIGINAL_DST), connects there itself
with SO_MARK = --mark (the REDIRECT rules skip marked packets, so its own connections are not
redirected again), and forwards both directions, each chunk --delay-ms (plus up to --jitter-ms) after
it arrived. Chunks keep their order: a chunk is never sent before the one read ahead of it. A
half-close is forwarded once the data before it is; a reset closes both sides.

    ip netns exec NS python3 delayproxy.py --delay-ms 200 --jitter-ms 40 --mark 0x5d1

prints `listening PORT` on its first line once it accepts, and runs until SIGTERM or SIGINT.
"""
import argparse
import asyncio
import random
import signal
import socket
import struct
import sys
import time

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h


def original_destination(sock):
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, = struct.unpack_from("!H", raw, 2)
    return socket.inet_ntoa(raw[4:8]), port


class Delayer:
    """Due times for one direction of one connection: now + delay + jitter, never before the previous
    chunk's (TCP is a stream: reordering chunks would corrupt it)."""

    def __init__(self, delay_s, jitter_s, rng):
        self.delay_s, self.jitter_s, self.rng = delay_s, jitter_s, rng
        self.last_due = 0.0

    def due(self, now):
        d = now + self.delay_s + (self.rng.uniform(0.0, self.jitter_s) if self.jitter_s > 0 else 0.0)
        self.last_due = max(self.last_due, d)
        return self.last_due


async def pump(reader, writer, delayer):
    """Forwards reader to writer, each chunk at its due time. Returns when the reader ends."""
    queue = asyncio.Queue()

    async def send():
        while True:
            item = await queue.get()
            if item is None:
                break
            due, data = item
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    sender = asyncio.ensure_future(send())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            queue.put_nowait((delayer.due(time.monotonic()), data))
        queue.put_nowait(None)
        await sender
    finally:
        if not sender.done():
            sender.cancel()


async def handle(client_reader, client_writer, args, rng):
    sock = client_writer.get_extra_info("socket")
    upstream_writer = None
    try:
        host, port = original_destination(sock)
        up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        up.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, args.mark)
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up.setblocking(False)
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(up, (host, port)), 10.0)
        upstream_reader, upstream_writer = await asyncio.open_connection(sock=up)
        delay_s, jitter_s = args.delay_ms / 1000.0, args.jitter_ms / 1000.0
        await asyncio.gather(pump(client_reader, upstream_writer, Delayer(delay_s, jitter_s, rng)),
                             pump(upstream_reader, client_writer, Delayer(delay_s, jitter_s, rng)))
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        pass  # a reset or refused upstream: close both sides, as the peer would see it
    finally:
        for w in (client_writer, upstream_writer):
            if w is not None:
                w.close()


async def serve(args):
    rng = random.Random(args.seed)
    server = await asyncio.start_server(lambda r, w: handle(r, w, args, rng), args.listen, args.port)
    port = server.sockets[0].getsockname()[1]
    print(f"listening {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with server:
        await stop.wait()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    ap.add_argument("--delay-ms", type=float, required=True)
    ap.add_argument("--jitter-ms", type=float, default=0.0)
    ap.add_argument("--mark", type=lambda s: int(s, 0), default=0x5D1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.delay_ms < 0 or args.jitter_ms < 0:
        ap.error("--delay-ms and --jitter-ms must not be negative")
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
