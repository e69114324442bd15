#!/usr/bin/python3
"""Runs one client test against a fresh brokerd.

Starts brokerd from a build tree on a free 127.0.0.1 port with a new data
directory and a YAML config loading the storage and kafka plugins, waits until
the port accepts connections, runs the client command with the bootstrap
address, then stops the broker with SIGTERM and deletes the directory. The
broker must also exit 0 and print no sanitizer report: a test whose client
passed still fails if the broker crashed or failed to drain.

    tests/clients/run_with_broker.py [--build-dir build/debug] -- CMD [ARG...]

In CMD, "{bootstrap}" is replaced by HOST:PORT; the environment also gets
SLUICE_BOOTSTRAP=HOST:PORT, SLUICE_BROKER_ID and SLUICE_BROKER_LOG (the broker's
log file, for the client's own failure messages). With --plugins naming
admin_http (e.g. storage,kafka,admin_http) the admin API listens on another
free port, kept across restarts, and SLUICE_ADMIN=http://127.0.0.1:PORT.

Broker restarts: SLUICE_BROKER_CONTROL=127.0.0.1:PORT is a control socket of
the harness. A client connects, sends one line, "restart" (SIGTERM; the broker
must exit 0 within 40 s) or "kill" (SIGKILL), and reads one line back: "ok PID"
once a new brokerd on the same data directory and the same port accepts
connections, or "error MESSAGE". SLUICE_BROKER_PID is the first broker's pid
(informational: clients never signal the broker themselves). A failed restart
also fails the test at the end.

When the kafka plugin knows group_initial_rebalance_delay_ms (the consumer-group
coordinator), the config sets it to --group-rebalance-delay-ms (default 0) so
group tests do not wait Kafka's default 3 s for every first join.

Exit status: the client's, if the broker behaved; 77 (CTest SKIP_RETURN_CODE)
when the kafka plugin is not built yet, unless SLUICE_CLIENTS_REQUIRE_KAFKA=1;
1 for every harness or broker failure, with the broker's log tail on stderr.
Standard library only: runs on any python3.
"""

import argparse
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

EXIT_SKIP = 77
BROKER_ID = 1
LOG_TAIL_LINES = 80
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "ThreadSanitizer", "UndefinedBehaviorSanitizer")


def say(msg):
    print(f"run_with_broker: {msg}", file=sys.stderr, flush=True)


class HarnessError(Exception):
    pass


def repo_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Run a client test against a fresh brokerd (see the module docstring).",
        usage="%(prog)s [options] -- CMD [ARG...]")
    p.add_argument("--build-dir", default=os.environ.get("SLUICE_BUILD_DIR"),
                   help="build tree with bin/brokerd and lib/sluice/plugins "
                        "(default: $SLUICE_BUILD_DIR, else build/debug of this checkout)")
    p.add_argument("--brokerd", help="brokerd executable (overrides --build-dir)")
    p.add_argument("--plugin-dir", help="plugin directory (overrides --build-dir)")
    p.add_argument("--work-dir", help="where the temporary broker directory is created "
                                      "(default: <build dir>/tests/clients; it must support O_DIRECT, so not tmpfs)")
    p.add_argument("--plugins", default="storage,kafka",
                   help="comma-separated plugins to load, in order (default: storage,kafka)")
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--start-timeout", type=float, default=60.0,
                   help="seconds to wait for the port to accept connections (default 60)")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds the client may run before it is killed (default 600)")
    p.add_argument("--group-rebalance-delay-ms", type=int, default=0,
                   help="group_initial_rebalance_delay_ms for a kafka plugin that has it (default 0)")
    p.add_argument("--keep", action="store_true", help="keep the broker directory (config, data, log)")
    p.add_argument("--advertise-proxy", action="store_true",
                   help="the broker advertises a second free port, where the client runs a proxy to the "
                        "broker's real port ($SLUICE_BROKER_REAL); $SLUICE_BOOTSTRAP is the proxy's address")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARG...]")
    a = p.parse_args(argv)
    if a.command and a.command[0] == "--":
        a.command = a.command[1:]
    if not a.command:
        p.error("no client command given (put it after --)")
    build = a.build_dir or os.path.join(repo_root(), "build", "debug")
    a.brokerd = os.path.abspath(a.brokerd or os.path.join(build, "bin", "brokerd"))
    a.plugin_dir = os.path.abspath(a.plugin_dir or os.path.join(build, "lib", "sluice", "plugins"))
    a.work_dir = os.path.abspath(a.work_dir or os.path.join(build, "tests", "clients"))
    a.plugins = [x for x in a.plugins.split(",") if x]
    return a


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


GROUP_DELAY_KEY = "group_initial_rebalance_delay_ms"


def plugin_knows(plugin_dir, key):
    """Whether libsluice_kafka.so contains the setting's name: a config with a key the plugin does not know
    is refused, and the harness must run both before and after a setting lands."""
    try:
        with open(os.path.join(plugin_dir, "libsluice_kafka.so"), "rb") as f:
            return key.encode() in f.read()
    except OSError:
        return False


def write_config(path, data_dir, plugin_dir, plugins, port, shards, group_delay_ms=None, advertised_port=None,
                 admin_port=None):
    lines = [
        "# Written by tests/clients/run_with_broker.py",
        "node:",
        f"  id: {BROKER_ID}",
        f"  data_dir: {data_dir}",
        f"  shards: {shards}",
        "  pin_threads: false",
        f"  plugin_dir: {plugin_dir}",
        "plugins:",
    ]
    for name in plugins:
        lines.append(f"  - name: {name}")
        if name == "kafka":
            lines += [
                "    config:",
                "      listeners:",
                "        - name: PLAINTEXT",
                f"          address: 127.0.0.1:{port}",
                f"          advertised_address: 127.0.0.1:{advertised_port or port}",
                "      auto_create_topics_enable: true",
                "      num_partitions: 1",
                "      default_replication_factor: 1",
            ]
            if group_delay_ms is not None:
                lines.append(f"      {GROUP_DELAY_KEY}: {group_delay_ms}")
        elif name == "admin_http" and admin_port:
            lines += ["    config:", f"      listen: 127.0.0.1:{admin_port}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def log_tail(path, n=LOG_TAIL_LINES):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return f"(cannot read {path}: {e.strerror})"
    lines = data.decode("utf-8", "replace").splitlines()
    head = f"--- last {min(n, len(lines))} of {len(lines)} lines of {path} ---"
    return "\n".join([head] + lines[-n:] + ["--- end of broker log ---"])


def set_pdeathsig():
    # The broker dies with the harness, even if the harness is SIGKILLed.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


class Broker:
    def __init__(self, args, base_dir, port, append=False, advertised_port=None):
        self.args = args
        self.port = port
        self.advertised_port = advertised_port
        self.dir = base_dir
        self.log_path = os.path.join(base_dir, "brokerd.log")
        self.config = os.path.join(base_dir, "sluice.yaml")
        delay = args.group_rebalance_delay_ms if plugin_knows(args.plugin_dir, GROUP_DELAY_KEY) else None
        write_config(self.config, os.path.join(base_dir, "data"), args.plugin_dir, args.plugins, port,
                     args.shards, delay, advertised_port, args.admin_port)
        self.done = False  # stopped or killed already
        self.log = open(self.log_path, "ab" if append else "wb")
        if append:
            self.log.write(b"\n=== run_with_broker: brokerd restarted on the same data directory ===\n")
            self.log.flush()
        self.proc = subprocess.Popen([args.brokerd, "--config", self.config], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=base_dir,
                                     start_new_session=True, preexec_fn=set_pdeathsig)

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise HarnessError(f"brokerd exited with status {self.proc.returncode} before 127.0.0.1:{self.port} "
                                   f"accepted connections (config {self.config})")
            if port_accepts(self.port):
                return
            if time.monotonic() >= deadline:
                raise HarnessError(
                    f"brokerd (pid {self.proc.pid}) is running but nothing accepts connections on "
                    f"127.0.0.1:{self.port} after {timeout:g} s: is the kafka plugin loaded and listening? "
                    f"(plugins: {', '.join(self.args.plugins)}; config {self.config})")
            time.sleep(0.05)

    def address_in_use(self):
        self.log.flush()
        try:
            with open(self.log_path, "rb") as f:
                return b"Address already in use" in f.read()
        except OSError:
            return False

    def kill(self):
        """SIGKILL (a crash: nothing is drained) and wait."""
        self.done = True
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def stop(self, check_log=True):
        """SIGTERM, then SIGKILL after 40 s; returns a problem description or None (also when stopped already:
        a failed control restart reported its problem)."""
        if self.done:
            return None
        self.done = True
        problem = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problem = "brokerd did not exit within 40 s of SIGTERM and was killed"
            else:
                if self.proc.returncode != 0:
                    problem = f"brokerd exited with status {self.proc.returncode} after SIGTERM (expected 0)"
        else:
            problem = f"brokerd had already exited with status {self.proc.returncode} before the end of the test"
            self.log.flush()
            with open(self.log_path, "rb") as f:
                if re.search(rb"received SIG(TERM|INT)", f.read()):
                    problem += (" after a SIGTERM/SIGINT that the harness did not send: another process stopped it "
                                "(something like `pkill brokerd` elsewhere on this machine?)")
        self.log.close()
        if problem is None and check_log:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            for marker in SANITIZER_MARKERS:
                if marker in text:
                    problem = f"the broker log contains a sanitizer report ({marker!r})"
                    break
        return problem


class Control:
    """The control socket (SLUICE_BROKER_CONTROL): restarts or kills and restarts the broker for a client."""

    def __init__(self, args, base_dir):
        self.args, self.base_dir = args, base_dir
        self.broker = None
        self.problems = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    cmd = conn.makefile("r").readline().strip()
                    conn.sendall((self.handle(cmd) + "\n").encode())
                except OSError:
                    pass

    def handle(self, cmd):
        if cmd not in ("restart", "kill"):
            return f"error unknown command {cmd!r} (want restart or kill)"
        with self.lock:
            old = self.broker
            if old is None:
                return "error no broker is running"
            say(f"control: {cmd} brokerd pid {old.proc.pid}")
            if cmd == "kill":
                old.kill()
            else:
                problem = old.stop(check_log=False)
                if problem:
                    self.problems.append(f"restart: {problem}")
                    return f"error {problem}"
            deadline = time.monotonic() + self.args.start_timeout
            while True:  # the old listener's port may take a moment to become free
                b = Broker(self.args, self.base_dir, old.port, append=True, advertised_port=old.advertised_port)
                self.broker = b
                try:
                    b.wait_ready(max(1.0, deadline - time.monotonic()))
                    break
                except HarnessError as e:
                    if b.proc.poll() is not None and b.address_in_use() and time.monotonic() < deadline:
                        b.stop(check_log=False)
                        time.sleep(0.2)
                        continue
                    self.problems.append(f"{cmd}: the new brokerd did not come up: {e}")
                    return f"error the new brokerd did not come up: {e}"
            say(f"control: brokerd pid {b.proc.pid} accepts connections on 127.0.0.1:{b.port} again")
            return f"ok {b.proc.pid}"

    def close(self):
        self.sock.close()


def main(argv):
    args = parse_args(argv)

    # Check everything that can be checked before a broker is started.
    if not os.access(args.brokerd, os.X_OK):
        say(f"FAILED: no brokerd at {args.brokerd}: build it (cmake --build BUILD_DIR --target brokerd) "
            "or pass --build-dir/--brokerd")
        return 1
    for name in args.plugins:
        so = os.path.join(args.plugin_dir, f"libsluice_{name}.so")
        if os.path.exists(so):
            continue
        if name == "kafka" and os.environ.get("SLUICE_CLIENTS_REQUIRE_KAFKA") != "1":
            say(f"SKIPPED: the kafka plugin is not built ({so} does not exist); "
                "set SLUICE_CLIENTS_REQUIRE_KAFKA=1 to make this a failure")
            return EXIT_SKIP
        say(f"FAILED: plugin '{name}' is not built: {so} does not exist")
        return 1
    if shutil.which(args.command[0]) is None:
        say(f"FAILED: cannot run the client: {args.command[0]!r} not found (run scripts/install-deps.sh)")
        return 1

    # The admin API keeps its port across restarts (SLUICE_ADMIN).
    args.admin_port = free_port() if "admin_http" in args.plugins else None
    os.makedirs(args.work_dir, exist_ok=True)
    base_dir = tempfile.mkdtemp(prefix="broker.", dir=args.work_dir)
    broker = None
    client = None
    interrupted = []

    def on_signal(signum, _frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)

    status = 1
    show_log = True
    control = Control(args, base_dir)
    try:
        for attempt in range(3):
            port = free_port()
            proxy_port = free_port() if args.advertise_proxy else None
            broker = Broker(args, base_dir, port, advertised_port=proxy_port)
            try:
                broker.wait_ready(args.start_timeout)
                break
            except HarnessError:
                # Another process may have taken the port between free_port() and the broker's bind.
                if broker.proc.poll() is not None and broker.address_in_use() and attempt < 2:
                    say(f"port {port} was taken before brokerd bound it; retrying on another port")
                    broker.stop()
                    shutil.rmtree(os.path.join(base_dir, "data"), ignore_errors=True)
                    continue
                raise
        control.broker = broker
        bootstrap = f"127.0.0.1:{broker.port}"
        say(f"brokerd pid {broker.proc.pid} accepts connections on {bootstrap} (dir {base_dir})")
        real = bootstrap
        if broker.advertised_port:
            bootstrap = f"127.0.0.1:{broker.advertised_port}"
            say(f"the broker advertises {bootstrap}: the client's proxy listens there")

        env = dict(os.environ, SLUICE_BOOTSTRAP=bootstrap, SLUICE_BROKER_REAL=real, SLUICE_BROKER_ID=str(BROKER_ID),
                   SLUICE_BROKER_LOG=broker.log_path, SLUICE_BROKER_CONTROL=control.address,
                   SLUICE_BROKER_PID=str(broker.proc.pid))
        if args.admin_port:
            env["SLUICE_ADMIN"] = f"http://127.0.0.1:{args.admin_port}"
        cmd = [c.replace("{bootstrap}", bootstrap) for c in args.command]
        say("running: " + " ".join(cmd))
        started = time.monotonic()
        client = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = client.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(client.pid, signal.SIGKILL)
            client.wait()
            raise HarnessError(f"the client did not finish within {args.timeout:g} s and was killed")
        say(f"client exited with status {rc} after {time.monotonic() - started:.1f} s")
        status = rc
        show_log = rc != 0
    except HarnessError as e:
        say(f"FAILED: {e}")
        status = 1
    except KeyboardInterrupt:
        say(f"interrupted (signal {interrupted[0] if interrupted else 'SIGINT'}): stopping")
        status = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if client is not None and client.poll() is None:
            os.killpg(client.pid, signal.SIGKILL)
            client.wait()
        control.close()
        with control.lock:  # waits for a restart in progress
            broker = control.broker or broker
            for p in control.problems:
                say(f"FAILED: {p}")
                status = status or 1
                show_log = True
        if broker is not None:
            problem = broker.stop()
            if problem:
                say(f"FAILED: {problem}")
                status = status or 1
                show_log = True
            if show_log:
                print(log_tail(broker.log_path), file=sys.stderr, flush=True)
        if args.keep:
            say(f"kept {base_dir}")
        else:
            shutil.rmtree(base_dir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
