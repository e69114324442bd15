#!/usr/bin/python3
"""Tests run_with_broker.py with a stand-in brokerd (a small Python program), so the harness is checked
without the kafka plugin: the config it writes, the bootstrap address it passes, waiting for the port,
the client's exit status, the broker's exit status and sanitizer reports, the log tail on failure, the
skip when the kafka plugin is not built, the client timeout, and that the broker is always stopped and
the directory always removed.
"""

import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(HERE, "run_with_broker.py")

FAKE_BROKERD = r'''#!/usr/bin/python3
import os, re, signal, socket, sys, time
mode = os.environ.get("FAKE_MODE", "serve")
cfg = open(sys.argv[sys.argv.index("--config") + 1]).read()
with open(os.environ["FAKE_PIDFILE"], "w") as f:
    f.write(str(os.getpid()))
print("fake brokerd starting; config:\n" + cfg, flush=True)
if mode == "exit-early":
    print("brokerd: plugin 'kafka': something is wrong", flush=True)
    sys.exit(2)
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
s = None
if mode != "no-listen":
    port = int(re.search(r"address: 127\.0\.0\.1:(\d+)", cfg).group(1))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    s.settimeout(0.05)
print("fake brokerd ready", flush=True)
while not stop:
    if s:
        try:
            s.accept()[0].close()
        except OSError:
            pass
    else:
        time.sleep(0.05)
print("fake brokerd got SIGTERM", flush=True)
print("info  [brokerd] received SIGTERM, draining and stopping", flush=True)
if mode == "sanitizer":
    print("==1==ERROR: AddressSanitizer: heap-use-after-free on address 0x1", flush=True)
sys.exit(3 if mode == "bad-exit" else 0)
'''

failures = []
passes = []


def check(cond, what, detail=""):
    if cond:
        passes.append(what)
        print(f"ok: {what}")
    else:
        failures.append(what)
        print(f"FAILED: {what}\n{detail}", file=sys.stderr)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def main():
    root = tempfile.mkdtemp(prefix="harness_selftest.")
    plugins = os.path.join(root, "plugins")
    work = os.path.join(root, "work")
    os.makedirs(plugins)
    os.makedirs(work)
    for name in ("storage", "kafka"):
        open(os.path.join(plugins, f"libsluice_{name}.so"), "w").close()
    fake = os.path.join(root, "brokerd")
    with open(fake, "w") as f:
        f.write(FAKE_BROKERD)
    os.chmod(fake, 0o755)
    pidfile = os.path.join(root, "pid")

    def run(mode, client, *extra, env_extra=None):
        if os.path.exists(pidfile):
            os.unlink(pidfile)
        env = dict(os.environ, FAKE_MODE=mode, FAKE_PIDFILE=pidfile)
        env.pop("SLUICE_CLIENTS_REQUIRE_KAFKA", None)
        env.update(env_extra or {})
        cmd = [sys.executable, HARNESS, "--brokerd", fake, "--plugin-dir", plugins, "--work-dir", work,
               *extra, "--", *client]
        t = time.monotonic()
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=90)
        pid = int(open(pidfile).read()) if os.path.exists(pidfile) else None
        return p.returncode, p.stdout + p.stderr, pid, time.monotonic() - t

    def cleaned(pid):
        return (pid is None or not alive(pid)) and os.listdir(work) == []

    py = sys.executable
    # The client sees the bootstrap address in argv ({bootstrap}) and in the environment, and can connect.
    client_ok = [py, "-c", "import os, socket, sys; bs = sys.argv[1]; "
                           "assert bs == os.environ['SLUICE_BOOTSTRAP'], (bs, os.environ['SLUICE_BOOTSTRAP']); "
                           "assert os.environ['SLUICE_BROKER_ID'] == '1'; "
                           "assert os.path.exists(os.environ['SLUICE_BROKER_LOG']); "
                           "h, p = bs.rsplit(':', 1); socket.create_connection((h, int(p)), 5).close()",
                 "{bootstrap}"]
    rc, out, pid, _ = run("serve", client_ok)
    check(rc == 0, "a passing client and a clean broker exit give status 0", out)
    check(cleaned(pid), "the broker is stopped and the directory removed", out)
    check("--- last" not in out, "no broker log on success", out)

    rc, out, pid, _ = run("serve", client_ok, "--keep")
    kept = re.search(r"kept (\S+)", out)
    cfg = open(os.path.join(kept.group(1), "sluice.yaml")).read() if kept else ""
    port = re.search(r"accepts connections on 127\.0\.0\.1:(\d+)", out)
    check(rc == 0 and kept is not None, "--keep keeps the directory", out)
    check("group_initial" not in cfg, "no group delay for a plugin without the setting", cfg)
    for needle in ["  id: 1\n", "  shards: 2\n", "  pin_threads: false\n", f"  plugin_dir: {plugins}\n",
                   "  - name: storage\n", "  - name: kafka\n", "        - name: PLAINTEXT\n",
                   "      auto_create_topics_enable: true\n", "      num_partitions: 1\n",
                   "      default_replication_factor: 1\n"]:
        check(needle in cfg, f"the config contains {needle.strip()!r}", cfg)
    if port:
        check(f"address: 127.0.0.1:{port.group(1)}\n" in cfg and
              f"advertised_address: 127.0.0.1:{port.group(1)}\n" in cfg,
              "the listener and advertised address are the port the client got", cfg)
    if kept:
        subprocess.run(["rm", "-rf", kept.group(1)])

    rc, out, pid, _ = run("serve", [py, "-c", "import sys; sys.exit(3)"])
    check(rc == 3, "the client's failing status is passed on", out)
    check("--- last" in out and "fake brokerd got SIGTERM" in out, "the broker log tail is printed on failure", out)
    check(cleaned(pid), "stopped and removed after a failing client", out)

    rc, out, pid, _ = run("exit-early", ["true"])
    check(rc == 1 and "exited with status 2 before" in out and "something is wrong" in out,
          "a broker that exits at start-up fails with its log", out)
    check(cleaned(pid), "removed after a start-up failure", out)

    rc, out, pid, secs = run("no-listen", ["true"], "--start-timeout", "2")
    check(rc == 1 and "nothing accepts connections" in out and secs < 30,
          "a broker that never listens fails after --start-timeout", out)
    check(cleaned(pid), "stopped and removed after the start-up timeout", out)

    rc, out, pid, _ = run("bad-exit", ["true"])
    check(rc == 1 and "exited with status 3 after SIGTERM" in out, "a broker exiting non-zero fails the test", out)

    rc, out, pid, _ = run("sanitizer", ["true"])
    check(rc == 1 and "sanitizer report" in out, "a sanitizer report in the broker log fails the test", out)

    # Another process stops the broker while the client runs (the client plays that process here).
    rc, out, pid, _ = run("serve", [py, "-c", "import os, signal, time; "
                                              "os.kill(int(open(os.environ['FAKE_PIDFILE']).read()), signal.SIGTERM); "
                                              "time.sleep(1)"])
    check(rc == 1 and "already exited" in out and "did not send" in out,
          "a broker stopped by someone else fails the test and says so", out)

    # The control socket: "restart" (SIGTERM) and "kill" (SIGKILL) start a new broker on the same port.
    control = [py, "-c", "import os, socket, sys; sys.path.insert(0, %r); import clientlib as cl; "
                         "pids = [int(os.environ['SLUICE_BROKER_PID'])]; "
                         "pids.append(cl.broker_control('restart')); pids.append(cl.broker_control('kill')); "
                         "assert len(set(pids)) == 3, pids; "
                         "h, p = os.environ['SLUICE_BOOTSTRAP'].rsplit(':', 1); "
                         "socket.create_connection((h, int(p)), 5).close(); print('pids', pids)" % HERE]
    rc, out, pid, _ = run("serve", control)
    check(rc == 0 and out.count("accepts connections on 127.0.0.1") == 3,
          "control restart and kill: a new broker on the same port each time", out)
    check(cleaned(pid), "the last broker is stopped and the directory removed after restarts", out)
    rc, out, pid, _ = run("bad-exit", control)
    check(rc == 1 and "restart: brokerd exited with status 3 after SIGTERM" in out,
          "a broker exiting non-zero on a control restart fails the test", out)

    # group_initial_rebalance_delay_ms only for a kafka plugin that knows the setting.
    with open(os.path.join(plugins, "libsluice_kafka.so"), "w") as f:
        f.write("...group_initial_rebalance_delay_ms...")
    rc, out, pid, _ = run("serve", client_ok, "--keep", "--group-rebalance-delay-ms", "7")
    kept = re.search(r"kept (\S+)", out)
    cfg = open(os.path.join(kept.group(1), "sluice.yaml")).read() if kept else ""
    check("      group_initial_rebalance_delay_ms: 7\n" in cfg, "a plugin with the setting gets the group delay", cfg)
    if kept:
        subprocess.run(["rm", "-rf", kept.group(1)])
    open(os.path.join(plugins, "libsluice_kafka.so"), "w").close()

    rc, out, pid, secs = run("serve", [py, "-c", "import time; time.sleep(60)"], "--timeout", "2")
    check(rc == 1 and "did not finish within 2 s" in out and secs < 30, "a client over --timeout is killed", out)
    check(cleaned(pid), "stopped and removed after the client timeout", out)

    os.unlink(os.path.join(plugins, "libsluice_kafka.so"))
    rc, out, pid, _ = run("serve", ["true"])
    check(rc == 77 and "SKIPPED" in out and pid is None, "no kafka plugin: skipped (77), no broker started", out)
    rc, out, pid, _ = run("serve", ["true"], env_extra={"SLUICE_CLIENTS_REQUIRE_KAFKA": "1"})
    check(rc == 1 and "not built" in out, "no kafka plugin with SLUICE_CLIENTS_REQUIRE_KAFKA=1: failure", out)

    open(os.path.join(plugins, "libsluice_kafka.so"), "w").close()
    rc, out, pid, _ = run("serve", ["no-such-client-program"])
    check(rc == 1 and "not found" in out and pid is None, "a missing client program fails before any broker", out)

    subprocess.run(["rm", "-rf", root])
    if failures:
        print(f"harness self-test: failed checks: {failures}", file=sys.stderr)
    print(f"{len(passes)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
