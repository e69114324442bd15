#!/usr/bin/python3
"""A local Sluice cluster for tests: N brokerd processes on 127.0.0.1.

    from cluster import Cluster
    with Cluster(nodes=3, build_dir="build/debug") as c:     # or brokerd=..., plugin_dir=...
        c.start()                                              # waits for every Kafka port
        c.wait_brokers()                                       # every node in Kafka Metadata
        leader = c.wait_leader("orders", 0)
        c.sigkill(leader); c.wait_leader_change("orders", 0, leader); c.restart(leader)
        c.pause(2); ...; c.resume(2)
    # leaving the block stops every broker (SIGTERM; each must exit 0) and, on an exception,
    # prints every broker's log tail first

Every node gets its own directory under the work directory (`node<ID>/`: `sluice.yaml`, `data/`,
`brokerd.log`) and three free ports, kept across restarts: Kafka, the raft plugin's inter-broker RPC
and the admin HTTP API. The YAML is the one of docs/CLUSTER.md: node ids 1..N, the raft plugin's
`seeds` list every node's RPC address, `default_replication_factor` is min(3, N). Without the raft
plugin in `plugins` (the harness's self-test) the nodes are N independent single-node brokers.

Faults: `kill(node, sig)` sends any signal (SIGKILL and SIGTERM wait for the exit, SIGSTOP and SIGCONT
track the paused state), `sigkill`, `stop` (SIGTERM; the broker must exit 0), `pause`/`resume`
(SIGSTOP/SIGCONT), `restart` (the same data directory and ports). Waits: `wait_node_ready`,
`wait_brokers`, `wait_leader`, `wait_leader_change`, `wait_leaders`. Kafka Metadata comes from
confluent-kafka's AdminClient (`metadata`, `leader`), bootstrapped from the nodes that are running and
not paused (a stopped process still holds its TCP connections, and a client would wait on it). Admin
routes: `admin_get(node, path)`.

A node that exits without the harness asking is noticed by every wait (`check_alive`): the error names
it, with its exit status. Sanitizer reports in any log and non-zero exits after SIGTERM are collected
in `problems` (returned by `close()`), so a test that passed still fails if a broker misbehaved.

The cluster's directory (configs, data, logs) is removed by `close()` unless `keep` is set, a problem
was found, or the `with` block ended with an exception; the path is printed when it is kept.

Clean-up: `close()` runs at the end of a `with` block, at interpreter exit (atexit) and, after
`install_signal_handlers()`, on SIGTERM/SIGINT/SIGHUP (turned into KeyboardInterrupt so that `finally`
blocks run). Brokers also die with the harness if it is SIGKILLed: they are started by one long-lived
thread of this module with PR_SET_PDEATHSIG (`setpriv --pdeathsig KILL`; the signal follows the thread
that forked, so any thread of a test may call `start_node` or `restart`).

Also a command-line tool: `cluster.py [--build-dir DIR] [--nodes 3] [-- CMD ARG...]` starts a cluster,
runs CMD with $SLUICE_BOOTSTRAP (every node's Kafka address, comma-separated) and $SLUICE_CLUSTER (the
nodes as JSON), then stops it; without CMD it runs until Ctrl-C.

Needs the Debian /usr/bin/python3 (python3-confluent-kafka) for the Metadata helpers; everything else
is the standard library.
"""

import argparse
import atexit
import ctypes
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "ThreadSanitizer", "UndefinedBehaviorSanitizer")
DEFAULT_PLUGINS = ("storage", "raft", "kafka", "admin_http")
LOG_TAIL_LINES = 60
GROUP_DELAY_KEY = "group_initial_rebalance_delay_ms"


class ClusterError(Exception):
    """A harness or broker failure; the message says which node and what to look at."""


def repo_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_ports(n):
    """n distinct ports that were free a moment ago (all bound at once, so never the same one twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_accepts(port, timeout=1.0, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def missing_plugins(plugin_dir, plugins):
    """The plugin files that do not exist, as (name, path)."""
    out = []
    for name in plugins:
        so = os.path.join(plugin_dir, f"libsluice_{name}.so")
        if not os.path.exists(so):
            out.append((name, so))
    return out


def plugin_knows(plugin_dir, plugin, key):
    """Whether the plugin's .so contains a setting's name: brokerd refuses unknown keys, and the harness
    must run both before and after a setting lands."""
    try:
        with open(os.path.join(plugin_dir, f"libsluice_{plugin}.so"), "rb") as f:
            return key.encode() in f.read()
    except OSError:
        return False


def log_tail(path, n=LOG_TAIL_LINES, title=None):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return f"(cannot read {path}: {e.strerror})"
    lines = data.decode("utf-8", "replace").splitlines()
    head = f"--- {title + ': ' if title else ''}last {min(n, len(lines))} of {len(lines)} lines of {path} ---"
    return "\n".join([head] + lines[-n:] + ["--- end ---"])


# ---- process spawning -------------------------------------------------------------------------------

_SETPRIV = shutil.which("setpriv")


def _setpriv_has_pdeathsig():
    if not _SETPRIV:
        return False
    try:
        out = subprocess.run([_SETPRIV, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "--pdeathsig" in out


# SLUICE_CLUSTER_NO_SETPRIV=1 forces the preexec_fn fallback (the self-test checks both).
_USE_SETPRIV = os.environ.get("SLUICE_CLUSTER_NO_SETPRIV") != "1" and _setpriv_has_pdeathsig()
try:
    _prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl  # resolved before any fork
except OSError:
    _prctl = None


def _pdeathsig_preexec():
    # Fallback when setpriv has no --pdeathsig. Runs between fork and exec: it calls nothing that allocates.
    if _prctl is not None:
        _prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL


class _Spawner:
    """One thread that lives as long as the process and starts every broker: PR_SET_PDEATHSIG fires when
    the *thread* that forked exits, so children of a short-lived test thread would die with it."""

    def __init__(self):
        self._q = queue.Queue()
        self._thread = None
        self._lock = threading.Lock()

    def _run(self):
        while True:
            argv, kw, box, done = self._q.get()
            try:
                if _USE_SETPRIV:
                    box["proc"] = subprocess.Popen([_SETPRIV, "--pdeathsig", "KILL", "--"] + argv, **kw)
                else:
                    box["proc"] = subprocess.Popen(argv, preexec_fn=_pdeathsig_preexec, **kw)
            except BaseException as e:  # handed to the caller
                box["error"] = e
            done.set()

    def popen(self, argv, **kw):
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cluster-spawner", daemon=True)
                self._thread.start()
        box, done = {}, threading.Event()
        self._q.put((argv, kw, box, done))
        done.wait()
        if "error" in box:
            raise box["error"]
        return box["proc"]


_spawner = _Spawner()

# ---- clean-up at exit -------------------------------------------------------------------------------

_live_clusters = []
_live_lock = threading.Lock()


def _close_all_at_exit():
    with _live_lock:
        clusters = list(_live_clusters)
    for c in clusters:
        try:
            c.close(graceful=False)
        except Exception as e:  # at exit: report and go on with the next cluster
            print(f"cluster: clean-up of {c.base_dir} failed: {e}", file=sys.stderr, flush=True)


atexit.register(_close_all_at_exit)
_interrupted = []


def install_signal_handlers():
    """SIGTERM, SIGINT and SIGHUP raise KeyboardInterrupt in the main thread, so that `with` blocks and
    `finally` clauses stop the brokers (atexit alone does not run on a signal's default action).
    `interrupted()` tells which signal arrived. Call it from the main thread."""

    def on_signal(signum, _frame):
        _interrupted.append(signum)
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)


def interrupted():
    return _interrupted[0] if _interrupted else None


# ---- the cluster ------------------------------------------------------------------------------------


class Node:
    """One brokerd: its id, ports and files (kept across restarts) and its current process."""

    def __init__(self, node_id, base_dir, kafka_port, raft_port, admin_port):
        self.id = node_id
        self.dir = os.path.join(base_dir, f"node{node_id}")
        self.data_dir = os.path.join(self.dir, "data")
        self.config_path = os.path.join(self.dir, "sluice.yaml")
        self.log_path = os.path.join(self.dir, "brokerd.log")
        self.kafka_port, self.raft_port, self.admin_port = kafka_port, raft_port, admin_port
        # Where it listens, and how it is started: tests/chaos runs each node in its own network
        # namespace (host = its address there, prefix = `ip netns exec NS`), optionally with extra
        # environment (libfaketime).
        self.host = "127.0.0.1"
        self.prefix = []
        self.env = {}
        self.proc = None
        self.paused = False
        self.expect_exit = False  # the harness signalled it to exit (or it was never started)
        self.starts = 0
        self._log = None

    @property
    def kafka_address(self):
        return f"{self.host}:{self.kafka_port}"

    @property
    def raft_address(self):
        return f"{self.host}:{self.raft_port}" if self.raft_port else None

    @property
    def admin_url(self):
        return f"http://{self.host}:{self.admin_port}" if self.admin_port else None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        """Started and not exited (paused counts as running)."""
        return self.proc is not None and self.proc.poll() is None

    def available(self):
        """Running and not paused: it can answer."""
        return self.running() and not self.paused

    def describe(self):
        state = "not started"
        if self.proc is not None:
            rc = self.proc.poll()
            state = (("running" if rc is None else f"killed by {signal.Signals(-rc).name}" if rc < 0 else
                      f"exited with status {rc}") if not (rc is None and self.paused) else "paused (SIGSTOP)")
            state = f"pid {self.proc.pid}, {state}"
        return (f"node {self.id} ({state}; kafka {self.kafka_address}"
                + (f", raft {self.raft_address}" if self.raft_port else "")
                + (f", admin {self.admin_url}" if self.admin_port else "") + ")")

    def as_json(self):
        return {"id": self.id, "kafka": self.kafka_address, "raft": self.raft_address, "admin": self.admin_url,
                "pid": self.pid, "dir": self.dir, "log": self.log_path}


class Cluster:
    """N brokerd processes on loopback (see the module docstring). Thread-safe enough for one fault
    thread plus observers: process state changes take a lock; waits only read."""

    def __init__(self, nodes=3, build_dir=None, brokerd=None, plugin_dir=None, work_dir=None,
                 plugins=DEFAULT_PLUGINS, shards=2, election_timeout_ms=1000, heartbeat_interval_ms=100,
                 cluster_id="local", replication_factor=None, kafka_config=None, raft_config=None, storage_config=None,
                 log_level="info", keep=False, name="cluster", start_timeout=60.0, out=sys.stderr, seeds=None,
                 node_setup=None):
        build = build_dir or os.environ.get("SLUICE_BUILD_DIR") or os.path.join(repo_root(), "build", "debug")
        self.brokerd = os.path.abspath(brokerd or os.path.join(build, "bin", "brokerd"))
        self.plugin_dir = os.path.abspath(plugin_dir or os.path.join(build, "lib", "sluice", "plugins"))
        self.work_dir = os.path.abspath(work_dir or os.path.join(build, "tests", "cluster"))
        self.n = nodes
        self.seeds = seeds or nodes  # the first `seeds` nodes are the controller's voters; the others join
        self.plugins = list(plugins)
        self.shards = shards
        self.election_timeout_ms = election_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.cluster_id = cluster_id
        self.clustered = "raft" in self.plugins
        self.replication_factor = replication_factor or (min(3, nodes) if self.clustered else 1)
        self.kafka_config = dict(kafka_config or {})
        self.raft_config = dict(raft_config or {})
        self.storage_config = dict(storage_config or {})
        self.node_setup = node_setup  # called with each Node before its YAML is written (host, prefix, env)
        self.log_level = log_level
        self.keep = keep
        self.name = name
        self.start_timeout = start_timeout
        self.out = out
        self.nodes = {}
        self.base_dir = None
        self.problems = []  # broker misbehaviour found along the way (also returned by close())
        self.events = []  # (seconds since creation, text): the fault timeline, printed with the logs
        self._t0 = time.monotonic()
        self._lock = threading.RLock()
        self._closed = False
        self._logs_dumped = False

    # ---- set-up ---------------------------------------------------------------------------------

    def say(self, msg):
        print(f"{self.name}: {msg}", file=self.out, flush=True)

    def event(self, msg):
        t = time.monotonic() - self._t0
        self.events.append((t, msg))
        self.say(f"[{t:7.2f} s] {msg}")

    def check_built(self):
        """Raises ClusterError naming brokerd or every plugin that is not built."""
        if not os.access(self.brokerd, os.X_OK):
            raise ClusterError(f"no brokerd at {self.brokerd}: build it (cmake --build BUILD_DIR --target brokerd) "
                               f"or pass --build-dir/--brokerd")
        missing = missing_plugins(self.plugin_dir, self.plugins)
        if missing:
            what = "; ".join(f"plugin '{n}' is not built: {p} does not exist" for n, p in missing)
            hint = (" (the raft plugin, issue 8, target sluice_plugin_raft: the cluster tests need it)"
                    if any(n == "raft" for n, _ in missing) else "")
            raise ClusterError(what + hint)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.dump_logs(f"{exc_type.__name__}: {exc}")
            if not issubclass(exc_type, KeyboardInterrupt):
                self.keep = True  # data and logs for the post-mortem
        # After a failure the brokers get less time to drain: a test stopped by its own deadline must still
        # finish before CTest's.
        problems = self.close(graceful=exc_type is None or not issubclass(exc_type, KeyboardInterrupt),
                              timeout=40.0 if exc_type is None else 15.0)
        if exc_type is None and problems:
            self.dump_logs("broker problems at shutdown")
            raise ClusterError("; ".join(problems))
        return False

    def _write_config(self, node):
        knows_delay = plugin_knows(self.plugin_dir, "kafka", GROUP_DELAY_KEY)
        lines = [
            f"# Written by tests/cluster/cluster.py: node {node.id} of {self.n}",
            "node:",
            f"  id: {node.id}",
            f"  data_dir: {node.data_dir}",
            f"  shards: {self.shards}",
            "  pin_threads: false",
            f"  plugin_dir: {self.plugin_dir}",
            f"  log_level: {self.log_level}",
            "plugins:",
        ]
        for name in self.plugins:
            lines.append(f"  - name: {name}")
            if name == "raft":
                cfg = {"listen": node.raft_address, "cluster_id": self.cluster_id,
                       "election_timeout_ms": self.election_timeout_ms,
                       "heartbeat_interval_ms": self.heartbeat_interval_ms}
                cfg.update(self.raft_config)
                lines += ["    config:", f"      listen: {cfg.pop('listen')}",
                          f"      cluster_id: {cfg.pop('cluster_id')}", "      seeds:"]
                lines += [f"        - {n.id}@{n.raft_address}" for n in self.nodes.values() if n.id <= self.seeds]
                lines += [f"      {k}: {_yaml_scalar(v)}" for k, v in cfg.items()]
            elif name == "kafka":
                cfg = {"auto_create_topics_enable": False, "default_replication_factor": self.replication_factor}
                if knows_delay:
                    cfg[GROUP_DELAY_KEY] = 0
                cfg.update(self.kafka_config)
                lines += ["    config:", "      listeners:", "        - name: PLAINTEXT",
                          f"          address: {node.kafka_address}"]
                lines += [f"      {k}: {_yaml_scalar(v)}" for k, v in cfg.items()]
            elif name == "storage" and self.storage_config:
                lines += ["    config:"] + [f"      {k}: {_yaml_scalar(v)}" for k, v in self.storage_config.items()]
            elif name == "admin_http":
                lines += ["    config:", f"      listen: {node.host}:{node.admin_port}"]
        with open(node.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _allocate(self):
        ports = free_ports(3 * self.n)
        with_admin = "admin_http" in self.plugins
        self.nodes = {}
        for i in range(1, self.n + 1):
            k, r, a = ports[3 * (i - 1):3 * i]
            node = Node(i, self.base_dir, k, r if self.clustered else None, a if with_admin else None)
            os.makedirs(node.dir, exist_ok=True)
            shutil.rmtree(node.data_dir, ignore_errors=True)
            if self.node_setup:
                self.node_setup(node)
            self.nodes[i] = node
        for node in self.nodes.values():
            self._write_config(node)

    def prepare(self):
        """Creates the cluster's directory (once), picks every node's ports and writes every node's YAML
        (`nodes[i].config_path`), with empty data directories. start() calls it."""
        if self.base_dir is None:
            os.makedirs(self.work_dir, exist_ok=True)
            self.base_dir = tempfile.mkdtemp(prefix=f"{self.name}.", dir=self.work_dir)
            with _live_lock:
                _live_clusters.append(self)
        self._allocate()
        return self

    def start(self, wait=True, timeout=None, only=None):
        """Checks the build, writes every node's YAML and starts every node (or the ids in `only`; the
        others can join later with start_node); with wait, returns once their ports accept connections.
        Retries on fresh ports if another process took one first."""
        self.check_built()
        for attempt in range(3):
            self.prepare()
            started = [n for n in self.nodes.values() if only is None or n.id in only]
            for node in started:
                self._spawn(node)
            if not wait:
                return self
            try:
                for node in started:
                    self.wait_node_ready(node.id, timeout)
                break
            except ClusterError:
                busy = [n for n in self.nodes.values() if not n.running() and self._address_in_use(n)]
                if busy and attempt < 2:
                    self.event(f"port taken before node(s) {[n.id for n in busy]} bound it: all nodes again "
                               f"on new ports")
                    self._kill_all()
                    continue
                raise
        self.event(f"{len(started)} of {self.n} node(s) up in {self.base_dir}: " +
                   ", ".join(f"{n.id}={n.kafka_address}" for n in started))
        return self

    def _spawn(self, node):
        with self._lock:
            if node.running():
                raise ClusterError(f"start node {node.id}: it is running already ({node.describe()})")
            if node._log is not None:
                node._log.close()
            node._log = open(node.log_path, "ab")
            node.starts += 1
            node._log.write(f"\n=== cluster.py: node {node.id} start {node.starts} at "
                            f"{time.strftime('%H:%M:%S')} ===\n".encode())
            node._log.flush()
            env = dict(os.environ, **node.env) if node.env else None
            node.proc = _spawner.popen(node.prefix + [self.brokerd, "--config", node.config_path],
                                       stdin=subprocess.DEVNULL, stdout=node._log, stderr=subprocess.STDOUT,
                                       cwd=node.dir, start_new_session=True, env=env)
            node.paused = False
            node.expect_exit = False

    def _address_in_use(self, node):
        try:
            with open(node.log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(node.log_path) - 65536))
                return b"Address already in use" in f.read()
        except OSError:
            return False

    # ---- waiting --------------------------------------------------------------------------------

    def node(self, node_id):
        if node_id not in self.nodes:
            raise ClusterError(f"no node {node_id} (nodes {sorted(self.nodes)})")
        return self.nodes[node_id]

    def check_alive(self):
        """Raises ClusterError if a node exited without the harness asking it to."""
        for n in self.nodes.values():
            if n.proc is not None and not n.expect_exit and n.proc.poll() is not None:
                n.expect_exit = True  # reported once
                rc = n.proc.returncode
                how = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with status {rc}"
                msg = f"node {n.id} (pid {n.proc.pid}) {how} without the harness asking (log {n.log_path})"
                self.problems.append(msg)
                raise ClusterError(msg)

    def _wait(self, pred, what, timeout, interval=0.1):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            self.check_alive()
            try:
                v = pred()
            except ClusterError:
                raise
            except Exception as e:  # a client error while the cluster changes: keep polling
                v, last = None, f"{type(e).__name__}: {e}"
            if v:
                return v
            if time.monotonic() >= deadline:
                raise ClusterError(f"{what}: still not true after {timeout:g} s" + (f" (last error: {last})"
                                                                                     if last else ""))
            time.sleep(interval)

    def wait_node_ready(self, node_id, timeout=None):
        """Until the node's Kafka port (and admin port, if any) accept connections."""
        n = self.node(node_id)
        timeout = timeout or self.start_timeout

        def ready():
            if not n.running():
                rc = n.proc.returncode if n.proc else None
                raise ClusterError(f"node {n.id} exited with status {rc} before it accepted connections "
                                   f"(config {n.config_path}, log {n.log_path})")
            return port_accepts(n.kafka_port, host=n.host) and (not n.admin_port or port_accepts(n.admin_port, host=n.host))

        self._wait(ready, f"node {n.id}: Kafka port {n.kafka_port} accepting connections (is the kafka plugin "
                          f"loaded and listening? config {n.config_path})", timeout, interval=0.05)

    def wait_all_ready(self, timeout=None):
        for i in self.nodes:
            self.wait_node_ready(i, timeout)

    # ---- faults ---------------------------------------------------------------------------------

    def kill(self, node_id, sig=signal.SIGKILL, wait=True, timeout=40.0):
        """Sends sig. SIGKILL/SIGTERM/SIGINT/SIGQUIT/SIGABRT: the node is expected to exit, and with wait the
        call returns its exit status once it has (SIGKILL also kills a paused process; the others first get
        a SIGCONT). SIGSTOP/SIGCONT: paused/running."""
        n = self.node(node_id)
        with self._lock:
            if not n.running():
                raise ClusterError(f"kill node {node_id} with {signal.Signals(sig).name}: it is not running "
                                   f"({n.describe()})")
            self.check_alive()
            exiting = sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGABRT)
            if exiting:
                n.expect_exit = True
            self.event(f"{signal.Signals(sig).name} node {node_id} (pid {n.pid})")
            n.proc.send_signal(sig)
            if sig == signal.SIGSTOP:
                n.paused = True
            elif sig == signal.SIGCONT:
                n.paused = False
            elif exiting and n.paused and sig != signal.SIGKILL:
                n.proc.send_signal(signal.SIGCONT)  # a stopped process handles nothing but SIGKILL
                n.paused = False
        if exiting and wait:
            try:
                rc = n.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                rc = n.proc.wait()
                self.problems.append(f"node {node_id} did not exit within {timeout:g} s of "
                                     f"{signal.Signals(sig).name} and was killed")
            n.paused = False
            self._wait_ports_closed(n)
            return rc
        return None

    def _wait_ports_closed(self, n, timeout=10.0):
        """After the process is gone its listeners may still accept for a moment: the kernel tears an
        io_uring instance (and the sockets it holds) down asynchronously. Waits until they refuse, so that
        a killed node is really unreachable and a restart can bind its ports."""
        ports = [p for p in (n.kafka_port, n.raft_port, n.admin_port) if p]
        deadline = time.monotonic() + timeout
        while any(port_accepts(p, timeout=0.2, host=n.host) for p in ports):
            if time.monotonic() > deadline:
                self.event(f"node {n.id}: its ports still accept connections {timeout:g} s after it exited")
                return
            time.sleep(0.02)

    def sigkill(self, node_id):
        """A crash: nothing drains; the data directory stays."""
        return self.kill(node_id, signal.SIGKILL)

    def closed_segments(self, node_id, topic):
        """The closed segment files (every .log of a partition directory but its last) of a topic on a
        node, as {partition: [paths in log order]}."""
        root = os.path.join(self.node(node_id).data_dir, "storage", topic)
        out = {}
        for d in sorted(os.listdir(root)) if os.path.isdir(root) else []:
            logs = sorted(f for f in os.listdir(os.path.join(root, d)) if f.endswith(".log") and len(f) == 24)
            if len(logs) > 1:
                out[int(d.split("_")[0])] = [os.path.join(root, d, f) for f in logs[:-1]]
        return out

    def corrupt_segment(self, node_id, topic, rng, how=None, partition=None):
        """Damages one closed segment of `topic` on a stopped node: flips one bit (how="flip") of, or
        truncates (how="truncate") the file at, a random byte among its batches (up to its last non-zero
        byte: the zero padding after them is not data). Returns a description, or None when the node has
        no closed segment of the topic."""
        check(not self.node(node_id).running(), f"node {node_id} is stopped before its segments are damaged")
        segs = self.closed_segments(node_id, topic)
        if partition is not None:
            segs = {p: s for p, s in segs.items() if p == partition}
        if not segs:
            return None
        p = rng.choice(sorted(segs))
        path = rng.choice(segs[p])
        with open(path, "rb") as fh:
            data = fh.read()
        end = len(data.rstrip(b"\0"))
        if end == 0:
            return None
        how = how or rng.choice(["flip", "truncate"])
        at = rng.randrange(end)
        if how == "flip":
            bit = rng.randrange(8)
            with open(path, "r+b") as fh:
                fh.seek(at)
                fh.write(bytes([data[at] ^ (1 << bit)]))
                fh.flush()
                os.fsync(fh.fileno())
            what = f"flipped bit {bit} of byte {at}"
        else:
            os.truncate(path, at)
            what = f"truncated at byte {at}"
        desc = f"{what} of {path} ({end} bytes of batches)"
        self.event(f"node {node_id}: {desc}")
        return desc

    def stop(self, node_id, timeout=40.0):
        """SIGTERM and wait: the node must drain and exit 0 (otherwise recorded in problems)."""
        rc = self.kill(node_id, signal.SIGTERM, timeout=timeout)
        if rc != 0:
            self.problems.append(f"node {node_id} exited with status {rc} after SIGTERM (expected 0; "
                                 f"log {self.node(node_id).log_path})")
        return rc

    def pause(self, node_id):
        """SIGSTOP: the process keeps its sockets but answers nothing (a hung broker)."""
        self.kill(node_id, signal.SIGSTOP)

    def resume(self, node_id):
        self.kill(node_id, signal.SIGCONT)

    def start_node(self, node_id, wait=True, timeout=None):
        """Starts a stopped node on its data directory and ports. Retries while the old listener's port is
        still taken."""
        n = self.node(node_id)
        timeout = timeout or self.start_timeout
        deadline = time.monotonic() + timeout
        while True:
            self._spawn(n)
            self.event(f"started node {node_id} (pid {n.pid}, start {n.starts})")
            if not wait:
                return n.pid
            try:
                self.wait_node_ready(node_id, max(1.0, deadline - time.monotonic()))
                return n.pid
            except ClusterError:
                if not n.running() and self._address_in_use(n) and time.monotonic() < deadline:
                    n.expect_exit = True
                    time.sleep(0.3)
                    continue
                raise

    def restart(self, node_id, graceful=False, wait=True, timeout=None):
        """Stops the node if it runs (SIGKILL, or SIGTERM with graceful) and starts it again on the same
        data directory and ports. Returns the new pid."""
        n = self.node(node_id)
        if n.running():
            if graceful:
                self.stop(node_id)
            else:
                self.sigkill(node_id)
        return self.start_node(node_id, wait=wait, timeout=timeout)

    # ---- Kafka metadata -------------------------------------------------------------------------

    def available_nodes(self):
        return [n.id for n in self.nodes.values() if n.available()]

    def bootstrap(self, nodes=None):
        """Kafka addresses, comma-separated: of `nodes`, default every node (for long-lived clients, which
        must find the cluster again whichever nodes are down)."""
        ids = self.nodes if nodes is None else nodes
        return ",".join(self.node(i).kafka_address for i in ids)

    def metadata(self, topic=None, nodes=None, timeout=5.0):
        """confluent_kafka ClusterMetadata (brokers, controller_id, topics with partitions' leader, replicas,
        isrs) from a fresh AdminClient bootstrapped from `nodes` (default: every available node)."""
        from confluent_kafka.admin import AdminClient
        ids = self.available_nodes() if nodes is None else list(nodes)
        if not ids:
            raise ClusterError("no node is running and unpaused: nobody can answer Metadata")
        a = AdminClient({"bootstrap.servers": self.bootstrap(ids), "socket.timeout.ms": int(timeout * 1000),
                         "error_cb": lambda _e: None, "log_level": 0})
        return a.list_topics(topic=topic, timeout=timeout)

    def partition(self, topic, partition, nodes=None, timeout=5.0):
        """The PartitionMetadata (leader, replicas, isrs, error) or None."""
        md = self.metadata(topic, nodes, timeout)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            return None
        return t.partitions.get(partition)

    def leader(self, topic, partition, nodes=None, timeout=5.0):
        """The partition's leader in Metadata, or -1 (none, or the topic unknown)."""
        p = self.partition(topic, partition, nodes, timeout)
        return p.leader if p is not None and p.error is None else -1

    def wait_brokers(self, ids=None, timeout=60.0, via=None):
        """Until Metadata lists exactly `ids` (default: every node) as brokers and a controller; returns
        the ClusterMetadata. via: ask only these nodes (e.g. a restarted node, to see that it rejoined:
        a cluster may keep listing a dead broker); default every available node."""
        want = set(self.nodes if ids is None else ids)

        def ok():
            md = self.metadata(nodes=via, timeout=3.0)
            return md if set(md.brokers) == want and md.controller_id in self.nodes else None

        return self._wait(ok, f"Metadata{f' from node(s) {list(via)}' if via else ''} listing brokers "
                              f"{sorted(want)} and a controller", timeout, interval=0.25)

    def _live_leader(self, topic, partition, exclude=()):
        p = self.partition(topic, partition, timeout=3.0)
        if p is None or p.error is not None or p.leader not in self.nodes or p.leader in exclude:
            return None
        return p.leader if self.nodes[p.leader].available() else None

    def wait_leader(self, topic, partition, timeout=30.0, exclude=()):
        """Until Metadata names a leader for the partition that is a running, unpaused node not in
        exclude; returns its id."""
        return self._wait(lambda: self._live_leader(topic, partition, exclude),
                          f"{topic}[{partition}]: a live leader" + (f" other than {list(exclude)}" if exclude else ""),
                          timeout, interval=0.1)

    def wait_leader_change(self, topic, partition, old, timeout=30.0):
        """Until a live node other than `old` leads the partition; returns it."""
        return self.wait_leader(topic, partition, timeout, exclude=(old,))

    def wait_leaders(self, topic, partitions, timeout=60.0, replicas=None):
        """Until every partition has a live leader (and, with replicas, that many replicas); returns
        {partition: leader}."""
        def ok():
            md = self.metadata(topic, timeout=3.0)
            t = md.topics.get(topic)
            if t is None or t.error is not None:
                return None
            out = {}
            for p in range(partitions):
                pm = t.partitions.get(p)
                if pm is None or pm.error is not None or pm.leader not in self.nodes:
                    return None
                if not self.nodes[pm.leader].available():
                    return None
                if replicas is not None and len(pm.replicas) != replicas:
                    return None
                out[p] = pm.leader
            return out

        return self._wait(ok, f"{topic}: a live leader for each of {partitions} partition(s)"
                              + (f" with {replicas} replicas" if replicas else ""), timeout, interval=0.2)

    # ---- admin API ------------------------------------------------------------------------------

    def admin_get(self, node_id, path, timeout=3.0):
        """GET on the node's admin API: (status, parsed JSON or text), or (None, error text) when it does
        not answer."""
        return self.admin_request(node_id, "GET", path, timeout)

    def admin_put(self, node_id, path, timeout=10.0):
        return self.admin_request(node_id, "PUT", path, timeout)

    def admin_delete(self, node_id, path, timeout=10.0):
        return self.admin_request(node_id, "DELETE", path, timeout)

    def admin_post(self, node_id, path, body=None, timeout=10.0):
        """POST with `body` (JSON-encoded unless bytes or str)."""
        return self.admin_request(node_id, "POST", path, timeout, body=body)

    def admin_request(self, node_id, method, path, timeout=3.0, body=None):
        """One request to the node's admin API: (status, parsed JSON or text), or (None, error text)."""
        n = self.node(node_id)
        if not n.admin_port:
            return None, "admin_http is not loaded"
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        try:
            req = urllib.request.Request(n.admin_url + path, method=method, data=body,
                                         headers={"Content-Type": "application/json"} if body is not None else {})
            with urllib.request.urlopen(req, timeout=timeout) as r:
                body, status = r.read(), r.status
        except urllib.error.HTTPError as e:
            body, status = e.read(), e.code
        except (OSError, urllib.error.URLError) as e:
            return None, str(e)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode("utf-8", "replace")

    # ---- logs and shutdown ----------------------------------------------------------------------

    def log_tail(self, node_id, n=LOG_TAIL_LINES):
        node = self.node(node_id)
        return log_tail(node.log_path, n, f"node {node_id}")

    def dump_logs(self, why="", n=LOG_TAIL_LINES):
        """Prints the fault timeline, every node's state and every node's log tail."""
        if not self.nodes:
            return
        out = self.out
        print(f"===== {self.name}: broker logs" + (f" ({why})" if why else "") + " =====", file=out)
        for t, msg in self.events[-40:]:
            print(f"  [{t:7.2f} s] {msg}", file=out)
        for node in self.nodes.values():
            print(f"  {node.describe()}", file=out)
        for node_id in self.nodes:
            print(self.log_tail(node_id, n), file=out)
        out.flush()
        self._logs_dumped = True

    def _kill_all(self):
        for n in self.nodes.values():
            if n.running():
                n.expect_exit = True
                n.proc.kill()
                n.proc.wait()
            n.paused = False

    def _scan_logs(self):
        for node in self.nodes.values():
            try:
                with open(node.log_path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            for marker in SANITIZER_MARKERS:
                if marker in text:
                    self.problems.append(f"node {node.id}'s log contains a sanitizer report ({marker!r}; "
                                         f"{node.log_path})")
                    break

    def close(self, graceful=True, timeout=40.0):
        """Stops every node (graceful: SIGCONT then SIGTERM to all at once, each must exit 0 within
        timeout; otherwise SIGKILL), checks the logs for sanitizer reports, removes the directory unless
        keep (or a problem was found), and returns the problems. Idempotent."""
        with self._lock:
            if self._closed:
                return self.problems
            self._closed = True
            try:
                self.check_alive()
            except ClusterError:
                pass  # recorded in problems
            if graceful:
                stopping = [n for n in self.nodes.values() if n.running()]
                for n in stopping:
                    n.expect_exit = True
                    if n.paused:
                        n.proc.send_signal(signal.SIGCONT)
                        n.paused = False
                    n.proc.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + timeout
                for n in stopping:
                    try:
                        rc = n.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        n.proc.kill()
                        n.proc.wait()
                        self.problems.append(f"node {n.id} did not exit within {timeout:g} s of SIGTERM at "
                                             f"shutdown and was killed")
                        continue
                    if rc != 0:
                        self.problems.append(f"node {n.id} exited with status {rc} after SIGTERM at shutdown "
                                             f"(expected 0; log {n.log_path})")
            self._kill_all()
            for n in self.nodes.values():
                if n._log is not None:
                    n._log.close()
                    n._log = None
            self._scan_logs()
            if self.problems and not self._logs_dumped:
                self.dump_logs("; ".join(self.problems))
            with _live_lock:
                if self in _live_clusters:
                    _live_clusters.remove(self)
            if self.base_dir:
                if self.keep or self.problems:
                    self.say(f"kept {self.base_dir}")
                else:
                    shutil.rmtree(self.base_dir, ignore_errors=True)
            return self.problems


def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class Failure(Exception):
    """A scenario check that did not hold."""


def check(cond, what):
    """Raises Failure(what) unless cond; prints "ok: what" otherwise."""
    if not cond:
        raise Failure(what)
    print(f"ok: {what}", flush=True)


def produce_acked(bootstrap, topic, stop, acked, failed, value=lambda i: f"v{i}".encode(), pause_s=0.003):
    """An idempotent acks=all producer to partition 0 of topic until stop is set, then flushed: the
    (offset, value) of every acknowledged record goes to acked, every delivery error to failed. Run it
    in a thread (confluent_kafka is imported here, not at the module's top: the harness runs without)."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "message.timeout.ms": 120000})
    i = 0
    while not stop.is_set():
        p.produce(topic, value=value(i), partition=0,
                  on_delivery=lambda e, m: acked.append((m.offset(), m.value())) if e is None else failed.append(str(e)))
        i += 1
        p.poll(0)
        time.sleep(pause_s)
    p.flush(120)


def read_partition(bootstrap, topic, group, timeout=60.0, config=None):
    """Reads partition 0 of topic from offset 0 to its end: ([(offset, value)], [errors], reached the end)."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    cons = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.partition.eof": True, **(config or {})})
    cons.assign([TopicPartition(topic, 0, 0)])
    got, errors, done, deadline = [], [], False, time.monotonic() + timeout
    while not done and time.monotonic() < deadline:
        for m in cons.consume(1000, 1.0):
            if m.error() is None:
                got.append((m.offset(), m.value()))
            elif m.error().code() == KafkaError._PARTITION_EOF:
                done = True
            else:
                errors.append(str(m.error()))
    cons.close()
    return got, errors, done


def run_scenarios(description, name, runs, argv, add_args=None):
    """The main() of a scenario test: parses --brokerd, --plugin-dir and --work-dir (and what
    add_args(parser) adds), then runs each (Cluster keyword arguments, fn(cluster)) on a fresh cluster.
    Prints "FAILED: <why>" (an exception, or broker problems) or "<name>: PASSED"; returns the exit
    status. runs may be a function of the parsed arguments."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--brokerd")
    ap.add_argument("--plugin-dir")
    ap.add_argument("--work-dir")
    if add_args:
        add_args(ap)
    a = ap.parse_args(argv)
    for kw, fn in (runs(a) if callable(runs) else runs):
        c = Cluster(brokerd=a.brokerd, plugin_dir=a.plugin_dir, work_dir=a.work_dir, **kw)
        try:
            with c:
                fn(c)
            problems = c.problems
        except Exception as e:  # noqa: BLE001 - a scenario's failure, reported as its reason
            print(f"FAILED: {type(e).__name__}: {e}", flush=True)
            return 1
        if problems:
            print(f"FAILED: broker problems: {problems}", flush=True)
            return 1
    print(f"{name}: PASSED", flush=True)
    return 0


def main(argv):
    p = argparse.ArgumentParser(description="Start a local Sluice cluster (see the module docstring).",
                                usage="%(prog)s [options] [-- CMD ARG...]")
    p.add_argument("--build-dir", help="build tree with bin/brokerd and lib/sluice/plugins (default build/debug)")
    p.add_argument("--brokerd")
    p.add_argument("--plugin-dir")
    p.add_argument("--work-dir")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--plugins", default=",".join(DEFAULT_PLUGINS))
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--keep", action="store_true", help="keep the directory (configs, data, logs)")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    install_signal_handlers()
    c = Cluster(nodes=a.nodes, build_dir=a.build_dir, brokerd=a.brokerd, plugin_dir=a.plugin_dir,
                work_dir=a.work_dir, plugins=[x for x in a.plugins.split(",") if x], shards=a.shards, keep=a.keep)
    rc = 1
    try:
        with c:
            c.start()
            env = dict(os.environ, SLUICE_BOOTSTRAP=c.bootstrap(),
                       SLUICE_CLUSTER=json.dumps([n.as_json() for n in c.nodes.values()]))
            for n in c.nodes.values():
                c.say(n.describe())
            if cmd:
                rc = subprocess.call(cmd, env=env)
                c.say(f"command exited with status {rc}")
            else:
                c.say("running; Ctrl-C stops every node")
                try:
                    while True:
                        time.sleep(1)
                        c.check_alive()
                except KeyboardInterrupt:
                    rc = 0  # leaving the block stops the nodes with SIGTERM
    except KeyboardInterrupt:
        rc = 1
    except ClusterError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
