#!/usr/bin/python3
"""Network namespaces for the reliability harness (docs/RELIABILITY.md, "Network faults").

Each broker runs in its own namespace, linked to a bridge by a veth pair:

    host (the clients)  10.<net>.0.1/24 on bridge slbr<net>
    node i              10.<net>.0.<10+i>/24 on eth0 in namespace sl<net>n<i>

Faults are iptables rules in the nodes' namespaces (INPUT chain), so the host's own tables are never
touched:

- partition(groups): nodes in different groups drop each other's packets (both directions); the
  clients on the host still reach every node (a majority/minority split as Jepsen does it);
- isolate(node): the node drops every peer's packets and the peers drop its packets;
- loss(node, percent): the node drops that share of incoming packets from peers, at random;
- delay(node, ms, jitter_ms): every TCP connection between the node and its peers or the clients goes
  through delayproxy.py (a user-space proxy in each namespace, reached by nat REDIRECT rules), which
  holds each chunk that long; established connections are aborted (`ss -K`) so that the brokers
  reconnect through it;
- heal(): every rule removed, every proxy stopped (connections through it close, and reconnect direct).

The Network object creates everything in __enter__ and removes everything in __exit__ (also after
an error); names carry the net number, so two harnesses on one machine do not collide. It needs
root, `ip` (iproute2), `iptables` with the statistic match, and network-namespace support: check()
says what is missing.
"""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROXY_MARK = 0x5D1  # the delay proxy's own connections carry it, and the REDIRECT rules skip them


class NetError(Exception):
    pass


def _run(args, check=True):
    r = subprocess.run(args, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise NetError(f"{' '.join(args)}: {r.stderr.strip() or r.stdout.strip() or 'exit ' + str(r.returncode)}")
    return r


def check():
    """"" if this machine can run the harness's network, else what is missing."""
    if os.geteuid() != 0:
        return "the network-fault harness needs root (network namespaces, veth, iptables)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (scripts/install-deps.sh installs iproute2 and iptables)"
    probe = "slprobe%d" % os.getpid()
    r = _run(["ip", "netns", "add", probe], check=False)
    if r.returncode != 0:
        return f"the kernel refuses network namespaces: {r.stderr.strip()}"
    try:
        r = _run(["ip", "netns", "exec", probe, "iptables", "-A", "INPUT", "-m", "statistic", "--mode", "random",
                  "--probability", "0.3", "-j", "DROP"], check=False)
        if r.returncode != 0:
            return f"iptables cannot drop packets at random in a namespace: {r.stderr.strip()}"
    finally:
        _run(["ip", "netns", "del", probe], check=False)
    return ""


class Network:
    def __init__(self, nodes, net=77):
        if not 1 <= net <= 250:
            raise NetError(f"net {net}: must be 1..250 (it is the second byte of 10.x.0.0/24)")
        self.n, self.net = nodes, net
        self.bridge = f"slbr{net}"
        self.host_ip = f"10.{net}.0.1"
        self.rules = []  # (node, iptables args) currently installed
        self.proxies = {}  # node -> delay proxy process in its namespace
        self.can_delay = False  # nat REDIRECT works in the namespaces (set up by __enter__)
        self._made = []  # what to remove, in reverse order

    # ---- names ----------------------------------------------------------------------------------

    def ns(self, node):
        return f"sl{self.net}n{node}"

    def ip(self, node):
        return f"10.{self.net}.0.{10 + node}"

    def exec_prefix(self, node):
        """The command prefix that runs a program in the node's namespace."""
        return ["ip", "netns", "exec", self.ns(node)]

    # ---- set-up and tear-down ---------------------------------------------------------------------

    def __enter__(self):
        why = check()
        if why:
            raise NetError(why)
        self._cleanup_leftovers()
        try:
            _run(["ip", "link", "add", self.bridge, "type", "bridge"])
            self._made.append(["ip", "link", "del", self.bridge])
            _run(["ip", "addr", "add", f"{self.host_ip}/24", "dev", self.bridge])
            _run(["ip", "link", "set", self.bridge, "up"])
            for i in range(1, self.n + 1):
                ns, veth = self.ns(i), f"slv{self.net}n{i}"
                _run(["ip", "netns", "add", ns])
                self._made.append(["ip", "netns", "del", ns])
                _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
                self._made.append(["ip", "link", "del", veth])
                _run(["ip", "link", "set", veth, "master", self.bridge, "up"])
                _run(["ip", "-n", ns, "addr", "add", f"{self.ip(i)}/24", "dev", "eth0"])
                _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
                _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            self.can_delay = self._probe_nat()
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        self._stop_proxies()
        for args in reversed(self._made):
            _run(args, check=False)
        self._made = []
        self.rules = []
        return False

    def _probe_nat(self):
        """Whether the delay fault can run: nat REDIRECT rules with a mark match, and `ss -K`."""
        if shutil.which("ss") is None:
            return False
        args = ["iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "192.0.2.1", "-m", "mark", "!",
                "--mark", hex(PROXY_MARK), "-j", "REDIRECT", "--to-ports", "9"]
        ok = _run(self.exec_prefix(1) + args, check=False).returncode == 0
        _run(self.exec_prefix(1) + ["iptables", "-t", "nat", "-F", "OUTPUT"], check=False)
        return ok

    def _cleanup_leftovers(self):
        """A harness killed before its __exit__ leaves its namespaces and bridge: remove them."""
        listed = _run(["ip", "netns", "list"], check=False).stdout.split()
        for i in range(1, 64):
            if self.ns(i) in listed:
                _run(["ip", "netns", "del", self.ns(i)], check=False)
        _run(["ip", "link", "del", self.bridge], check=False)

    # ---- faults ---------------------------------------------------------------------------------

    def _add(self, node, args):
        _run(self.exec_prefix(node) + ["iptables", "-A", "INPUT"] + args)
        self.rules.append((node, args))

    def drop_between(self, a, b):
        """a and b drop each other's packets."""
        self._add(a, ["-s", self.ip(b), "-j", "DROP"])
        self._add(b, ["-s", self.ip(a), "-j", "DROP"])

    def partition(self, groups):
        """groups: lists of node ids; nodes in different groups cannot talk (clients reach all)."""
        for gi, g in enumerate(groups):
            for h in groups[gi + 1:]:
                for a in g:
                    for b in h:
                        self.drop_between(a, b)

    def isolate(self, node):
        self.partition([[node], [i for i in range(1, self.n + 1) if i != node]])

    def loss(self, node, percent):
        """The node drops `percent` % of the packets its peers send it (not the clients')."""
        for peer in range(1, self.n + 1):
            if peer != node:
                self._add(node, ["-s", self.ip(peer), "-m", "statistic", "--mode", "random",
                                 "--probability", f"{percent / 100.0:.3f}", "-j", "DROP"])

    def _add_nat(self, node, chain, args):
        _run(self.exec_prefix(node) + ["iptables", "-t", "nat", "-A", chain] + args)
        self.rules.append((node, ["-t", "nat", chain] + args))

    def _start_proxy(self, node, delay_ms, jitter_ms, seed):
        """Starts delayproxy.py in the node's namespace; returns the port it listens on."""
        proc = subprocess.Popen(self.exec_prefix(node) + [
            sys.executable, os.path.join(HERE, "delayproxy.py"), "--delay-ms", f"{delay_ms:g}",
            "--jitter-ms", f"{jitter_ms:g}", "--mark", hex(PROXY_MARK), "--seed", str(seed)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.proxies[node] = proc
        line = proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            raise NetError(f"the delay proxy in {self.ns(node)} did not start: {' '.join(line) or 'no output'} "
                           f"(exit {proc.poll()})")
        return int(line[1])

    def _stop_proxies(self):
        for proc in self.proxies.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.proxies.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        self.proxies = {}

    def delay(self, node, delay_ms, jitter_ms=0.0, seed=1):
        """Every TCP connection between the node and its peers (either side may open it) and between the
        clients and the node takes delay_ms (+ up to jitter_ms) each way, through the proxies."""
        peers = [i for i in range(1, self.n + 1) if i != node]
        mark = ["-m", "mark", "!", "--mark", hex(PROXY_MARK)]
        port = self._start_proxy(node, delay_ms, jitter_ms, seed)
        for p in peers:
            self._add_nat(node, "OUTPUT", ["-p", "tcp", "-d", self.ip(p)] + mark + ["-j", "REDIRECT",
                                                                                   "--to-ports", str(port)])
        self._add_nat(node, "PREROUTING", ["-p", "tcp", "-s", self.host_ip, "-j", "REDIRECT",
                                           "--to-ports", str(port)])
        for p in peers:
            peer_port = self._start_proxy(p, delay_ms, jitter_ms, seed + p)
            self._add_nat(p, "OUTPUT", ["-p", "tcp", "-d", self.ip(node)] + mark + ["-j", "REDIRECT",
                                                                                   "--to-ports", str(peer_port)])
        # NAT applies to new connections only: abort the node's established ones (both ends see a reset).
        for dst in [self.ip(p) for p in peers] + [self.host_ip]:
            _run(self.exec_prefix(node) + ["ss", "-K", "dst", dst], check=False)

    def heal(self):
        # The proxies first, while the NAT rules that lead to them still stand: each proxied connection
        # is then closed on both sides at once. With the rules flushed first, the proxies' closes never
        # reached the clients, whose connections stayed silent until their own request timeouts (5 s
        # for the workload's producers), which looked like a slow recovery after every `delay` heal.
        self._stop_proxies()
        for node in range(1, self.n + 1):
            _run(self.exec_prefix(node) + ["iptables", "-F", "INPUT"], check=False)
            for chain in ("OUTPUT", "PREROUTING"):
                _run(self.exec_prefix(node) + ["iptables", "-t", "nat", "-F", chain], check=False)
        self.rules = []

    def describe(self):
        return [f"node {n}: iptables " + (f"-t nat -A {a[2]} {' '.join(a[3:])}" if a[:1] == ["-t"] else
                                           f"-A INPUT {' '.join(a)}") for n, a in self.rules]


if __name__ == "__main__":
    why = check()
    print(why or "ok: network namespaces, veth, bridge and iptables work here")
    sys.exit(1 if why else 0)
