"""Shared helpers of the sluice CLI tests (cli_test.py, e2e_offsets_test.py).

Each test is a plain program run by tests/clients/run_with_broker.py with
--plugins storage,kafka,admin_http, which sets SLUICE_BOOTSTRAP (Kafka) and
SLUICE_ADMIN (the admin API's base URL):

    TEST --sluice PATH/TO/sluice

Standard library only (plus the curl binary, for the admin API side of the
agreement test).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback


sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "clients"))
from clientlib import TestFailure, check, check_eq, fail, wait_until  # noqa: E402 (tests/clients/clientlib.py)


def free_port():
    """A port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cli:
    """Runs the sluice binary with the broker's addresses in its environment and an empty HOME (no profile)."""

    def __init__(self):
        p = argparse.ArgumentParser()
        p.add_argument("--sluice", required=True, help="the sluice binary")
        a = p.parse_args()
        self.binary = a.sluice
        self.bootstrap = os.environ.get("SLUICE_BOOTSTRAP")
        self.admin = os.environ.get("SLUICE_ADMIN")
        if not self.bootstrap or not self.admin:
            print("SLUICE_BOOTSTRAP and SLUICE_ADMIN must be set (run through tests/clients/run_with_broker.py "
                  "--plugins storage,kafka,admin_http)", file=sys.stderr)
            sys.exit(2)
        self.home = tempfile.TemporaryDirectory(prefix="sluice_cli_test.")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        self.env.update(HOME=self.home.name, SLUICE_BROKERS=self.bootstrap, SLUICE_ADMIN=self.admin)

    def run(self, *args, input=None, expect=0, env=None, timeout=90):
        """Runs `sluice ARGS`; returns (stdout str, stderr str). Fails unless the exit code is `expect`
        (None: any)."""
        cmd = [self.binary] + [str(a) for a in args]
        data = input.encode() if isinstance(input, str) else input
        try:
            p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                               env=env if env is not None else self.env)
        except subprocess.TimeoutExpired as e:
            fail(f"sluice did not finish within {timeout} s: {' '.join(cmd)}\nstderr: "
                 f"{(e.stderr or b'').decode(errors='replace')[-2000:]}")
        out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
        if expect is not None and p.returncode != expect:
            fail(f"`{' '.join(cmd)}` exited with {p.returncode}, expected {expect}\n"
                 f"stdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}")
        self.last_rc = p.returncode
        return out, err

    def json(self, *args, input=None, env=None):
        out, _ = self.run(*args, "--json", input=input, env=env)
        try:
            return json.loads(out)
        except json.JSONDecodeError as e:
            fail(f"`sluice {' '.join(map(str, args))} --json` printed something that is not JSON ({e}):\n{out[:2000]}")

    def popen(self, *args):
        return subprocess.Popen([self.binary] + [str(a) for a in args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env)


def curl_json(url, expect_status=200):
    """GET url with the real curl; returns the parsed body."""
    p = subprocess.run(["curl", "-sS", "--max-time", "30", "-w", "\n%{http_code}", url], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        fail(f"curl {url} failed with exit code {p.returncode}: {p.stderr.decode(errors='replace')}")
    body, _, status = p.stdout.decode(errors="replace").rpartition("\n")
    if int(status) != expect_status:
        fail(f"curl {url}: HTTP {status}, expected {expect_status}: {body[:1000]}")
    try:
        return json.loads(body)
    except json.JSONDecodeError as e:
        fail(f"curl {url}: the body is not JSON ({e}): {body[:1000]}")


def run_tests(tests):
    """Runs each (name, fn) in order; prints PASS/FAIL; returns the exit status."""
    failed = []
    for name, fn in tests:
        started = time.monotonic()
        try:
            fn()
            print(f"PASS {name} ({time.monotonic() - started:.1f} s)", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported and the next test runs
            failed.append(name)
            print(f"FAIL {name}: {e}", flush=True)
            if not isinstance(e, TestFailure):
                traceback.print_exc()
    print(f"{len(tests) - len(failed)} of {len(tests)} passed" + (f"; failed: {', '.join(failed)}" if failed else ""),
          flush=True)
    return 1 if failed else 0
