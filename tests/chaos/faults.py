#!/usr/bin/python3
"""Faults for the reliability harness (docs/RELIABILITY.md, "Faults"): a seeded schedule and the code
that injects and heals each kind against a running cluster.

A schedule is a list of Fault(start_s, kind, targets, duration_s) drawn from a random.Random(seed):
the same seed gives the same schedule, and a run logs every injection and heal with its time, so a
failing run is replayed with its seed. Targets are chosen when the fault starts (the partition's
leader then), from the same seeded generator, so they are replayable too as far as the cluster's own
elections allow.

Kinds (the names the reports use):

  kill-leader      SIGKILL the leader of a partition; restart it after the duration
  kill-follower    SIGKILL a follower of a partition; restart it after the duration
  kill-majority    SIGKILL two of the three brokers; restart them after the duration
  pause            SIGSTOP a partition's leader for longer than the election timeout; SIGCONT
  partition        isolate one broker (the minority) from the other two; heal
  partition-leader isolate a partition's leader; heal
  loss             one broker drops 30% of its peers' packets at random; heal
  delay            every TCP connection of one broker (to its peers and from the clients) goes through
                   a user-space proxy that holds each chunk 20-400 ms (+ up to 25% jitter); heal
  power-loss       SIGKILL one broker and drop every write it had not fsynced (faultfs); restart
  power-loss-all   the same for all three brokers at once
  clock-jump       one broker's clock (libfaketime) jumps forward or back by 30-120 s; back to 0
  disk-eio         one broker's storage fails its fdatasyncs with EIO; cleared, broker restarted
  disk-enospc      one broker's storage fails its writes with ENOSPC; cleared, broker restarted
  disk-full        one broker's whole data directory is full (faultfs: every write, create, fallocate
                   and fsync fails with ENOSPC: logs, Raft state, controller log, offsets);
                   space comes back, broker restarted
  transfer         leadership of every partition moves to another replica (admin API)
  rolling-restart  each broker in turn is stopped (SIGTERM) and started again
  corrupt-segment  SIGKILL one broker, flip a bit in or truncate a closed segment of the topic; restart

Kinds that need something the machine lacks (namespaces, faultfs, libfaketime) are reported as
unavailable by available_kinds() and never scheduled.
"""
import os
import random
import time

ALL_KINDS = ["kill-leader", "kill-follower", "kill-majority", "pause", "partition", "partition-leader", "loss",
             "delay", "power-loss", "power-loss-all", "clock-jump", "disk-eio", "disk-enospc", "disk-full",
             "transfer", "rolling-restart", "corrupt-segment"]
NETWORK_KINDS = {"partition", "partition-leader", "loss", "delay"}
POWER_KINDS = {"power-loss", "power-loss-all"}
FAULTFS_KINDS = POWER_KINDS | {"disk-full"}
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


class Fault:
    def __init__(self, start_s, kind, duration_s):
        self.start_s, self.kind, self.duration_s = start_s, kind, duration_s
        self.targets = []
        self.injected_at = self.healed_at = None
        self.note = ""

    def as_json(self):
        return {"start_s": round(self.start_s, 3), "kind": self.kind, "duration_s": round(self.duration_s, 3),
                "targets": self.targets, "injected_at": self.injected_at, "healed_at": self.healed_at,
                "note": self.note}


def available_kinds(network=None, faultfs=False):
    kinds = []
    for k in ALL_KINDS:
        if k in NETWORK_KINDS and network is None:
            continue
        if k == "delay" and not getattr(network, "can_delay", False):
            continue
        if k in FAULTFS_KINDS and not faultfs:
            continue
        if k == "clock-jump" and not os.path.exists(FAKETIME_LIB):
            continue
        kinds.append(k)
    return kinds


def schedule(rng, kinds, duration_s, first_s=5.0, heal_before_end_s=10.0):
    """Faults one after another (never overlapping, so each recovery is measured on its own), each
    lasting 3-10 s with 3-8 s of calm between them, within [first_s, duration_s - heal_before_end_s]."""
    out, t = [], first_s
    end = duration_s - heal_before_end_s
    while True:
        d = rng.uniform(3.0, 10.0)
        if t + d > end:
            break
        out.append(Fault(t, rng.choice(kinds), d))
        t += d + rng.uniform(3.0, 8.0)
    return out


class Injector:
    """Applies faults to a cluster (tests/cluster/cluster.py), its Network (netns.py) and its faultfs
    mounts. log(msg) records every step on the run's timeline."""

    def __init__(self, cluster, topic, partitions, rng, log, network=None, faultfs=None, clock_files=None):
        self.c, self.topic, self.partitions, self.rng, self.log = cluster, topic, partitions, rng, log
        self.net, self.faultfs, self.clock_files = network, faultfs or {}, clock_files or {}
        self.counts = {}

    # ---- helpers ----------------------------------------------------------------------------------

    def _nodes(self):
        return sorted(self.c.nodes)

    def _leader(self):
        p = self.rng.randrange(self.partitions)
        try:
            leader = self.c.leader(self.topic, p, timeout=3.0)
        except Exception:  # noqa: BLE001 - no answer: pick any node
            leader = -1
        return leader if leader in self.c.nodes else self.rng.choice(self._nodes())

    def _follower(self):
        leader = self._leader()
        return self.rng.choice([n for n in self._nodes() if n != leader])

    def _restart(self, node):
        if not self.c.node(node).running():
            self.c.start_node(node)

    # ---- inject and heal --------------------------------------------------------------------------

    def inject(self, f):
        k = f.kind
        self.counts[k] = self.counts.get(k, 0) + 1
        if k == "kill-leader":
            f.targets = [self._leader()]
            self.c.sigkill(f.targets[0])
        elif k == "kill-follower":
            f.targets = [self._follower()]
            self.c.sigkill(f.targets[0])
        elif k == "kill-majority":
            f.targets = sorted(self.rng.sample(self._nodes(), 2))
            for n in f.targets:
                self.c.sigkill(n)
        elif k == "pause":
            f.targets = [self._leader()]
            self.c.pause(f.targets[0])
        elif k == "partition":
            f.targets = [self.rng.choice(self._nodes())]
            self.net.isolate(f.targets[0])
        elif k == "partition-leader":
            f.targets = [self._leader()]
            self.net.isolate(f.targets[0])
        elif k == "loss":
            f.targets = [self.rng.choice(self._nodes())]
            self.net.loss(f.targets[0], 30)
        elif k == "delay":
            f.targets = [self.rng.choice(self._nodes())]
            ms = self.rng.randint(20, 400)
            f.note = f"{ms} ms (+ up to {ms // 4} ms)"
            self.net.delay(f.targets[0], ms, ms // 4, seed=self.rng.randrange(1 << 30))
        elif k in POWER_KINDS:
            f.targets = [self.rng.choice(self._nodes())] if k == "power-loss" else self._nodes()
            for n in f.targets:
                self.c.sigkill(n)
            for n in f.targets:
                self.faultfs[n].drop()
        elif k == "clock-jump":
            f.targets = [self.rng.choice(self._nodes())]
            jump = self.rng.choice([-1, 1]) * self.rng.randint(30, 120)
            f.note = f"{jump:+d} s"
            with open(self.clock_files[f.targets[0]], "w") as fh:
                fh.write(f"{jump:+d}s\n")
        elif k in ("disk-eio", "disk-enospc"):
            f.targets = [self.rng.choice(self._nodes())]
            op, err = ("sync", "EIO") if k == "disk-eio" else ("write", "ENOSPC")
            st, body = self.c.admin_request(f.targets[0], "PUT", "/v1/storage/faults", 10.0,
                                            body={"op": op, "error": err, "count": -1})
            f.note = f"{op} {err}: {st}"
        elif k == "disk-full":
            f.targets = [self.rng.choice(self._nodes())]
            self.faultfs[f.targets[0]].control("enospc on")
        elif k == "transfer":
            moved = 0
            for p in range(self.partitions):
                pm = self.c.partition(self.topic, p, timeout=3.0)
                if pm is None or pm.leader not in self.c.nodes:
                    continue
                to = self.rng.choice([r for r in pm.replicas if r != pm.leader] or [pm.leader])
                st, _ = self.c.admin_request(pm.leader, "POST",
                                             f"/v1/raft/groups/{self.topic}/{p}/transfer_leadership?target={to}", 5.0)
                moved += st in (200, 202)
            f.targets = self._nodes()
            f.note = f"{moved} transfer(s) accepted"
        elif k == "corrupt-segment":
            f.targets = [self.rng.choice(self._nodes())]
            self.c.sigkill(f.targets[0])
            f.note = self.c.corrupt_segment(f.targets[0], self.topic, self.rng) or "no closed segment yet"
        elif k == "rolling-restart":
            f.targets = self._nodes()
            for n in f.targets:
                self.c.restart(n, graceful=True)
                time.sleep(1.0)
        else:
            raise ValueError(f"unknown fault kind {k}")
        f.injected_at = time.monotonic()
        self.log(f"inject {k} on {f.targets} {f.note}".rstrip())

    def heal(self, f):
        k = f.kind
        if k in ("kill-leader", "kill-follower", "kill-majority", "corrupt-segment") or k in POWER_KINDS:
            for n in f.targets:
                self._restart(n)
        elif k == "pause":
            self.c.resume(f.targets[0])
        elif k in NETWORK_KINDS:
            self.net.heal()
        elif k == "clock-jump":
            with open(self.clock_files[f.targets[0]], "w") as fh:
                fh.write("+0s\n")
        elif k in ("disk-eio", "disk-enospc", "disk-full"):
            n = f.targets[0]
            if k == "disk-full":
                self.faultfs[n].control("enospc off")
            else:
                self.c.admin_request(n, "DELETE", "/v1/storage/faults", 10.0)
            # A log that failed stays failed until the broker recovers it from disk.
            self.c.restart(n)
        f.healed_at = time.monotonic()
        self.log(f"heal {k} on {f.targets}")

    def heal_all(self):
        """Everything back to normal (after an error, or at the end of a run)."""
        if self.net is not None:
            self.net.heal()
        for n, path in self.clock_files.items():
            with open(path, "w") as fh:
                fh.write("+0s\n")
        for fs in self.faultfs.values():
            fs.control("clear-faults")
        for n in self._nodes():
            node = self.c.node(n)
            if node.running() and node.paused:
                self.c.resume(n)
            if not node.running():
                self.c.start_node(n)


def faketime_env(clock_file):
    """Environment that starts brokerd under libfaketime with its offset read from clock_file on every
    call (write "+30s" to jump). CLOCK_MONOTONIC is left alone: the jump models a wall-clock change."""
    # An ASan build (the debug preset) wants its runtime first in the library list: let it be second.
    asan = ":".join(x for x in (os.environ.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0") if x)
    return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": clock_file, "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1", "ASAN_OPTIONS": asan}


if __name__ == "__main__":
    import json
    import sys
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    print(json.dumps([f.as_json() for f in schedule(random.Random(seed), ALL_KINDS, 60.0)], indent=1))
