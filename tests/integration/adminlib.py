"""Shared by the admin API tests: a brokerd with storage, kafka and admin_http on free ports, HTTP requests,
and failure bookkeeping. Standard library only (runs on Debian's /usr/bin/python3)."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAILED:", what, flush=True)
    return cond


def request(port, path, method="GET", body=None, headers=None):
    """(status, headers, body bytes); HTTP errors are answers, not exceptions."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def get_json(port, path, headers=None):
    status, _, body = request(port, path, headers=headers)
    check(status == 200, f"GET {path}: {status} {body[:200]!r}")
    return json.loads(body) if status == 200 else None


class Broker:
    """brokerd on a fresh directory; admin_yaml is extra YAML lines under admin_http's config."""

    def __init__(self, brokerd, plugin_dir, admin_yaml="", kafka_yaml=""):
        self.brokerd = brokerd
        self.dir = tempfile.mkdtemp(prefix="admin_test.")
        self.config = os.path.join(self.dir, "sluice.yaml")
        with open(self.config, "w") as f:
            f.write(f"node: {{ id: 0, data_dir: {self.dir}/data, shards: 2, pin_threads: false, "
                    f"plugin_dir: {plugin_dir} }}\n"
                    "plugins:\n  - name: storage\n  - name: kafka\n    config:\n"
                    "      listeners: [{ address: 127.0.0.1:0 }]\n"
                    "      group_initial_rebalance_delay_ms: 0\n" + kafka_yaml +
                    "  - name: admin_http\n    config:\n"
                    "      listen: 127.0.0.1:0\n" + admin_yaml)
        self.log_path = os.path.join(self.dir, "brokerd.log")
        self.proc = None
        self.start()

    def start(self):
        self.log = open(self.log_path, "a+")
        offset = self.log.tell()
        self.proc = subprocess.Popen([self.brokerd, "--config", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.port = self.kafka_port = None
        deadline = time.time() + 60
        while time.time() < deadline and self.port is None:
            self.log.seek(offset)
            text = self.log.read()
            m = re.search(r"admin API listening on http://127\.0\.0\.1:(\d+)/", text)
            k = re.search(r"kafka listener PLAINTEXT on 127\.0\.0\.1:(\d+)", text)
            if m and k:
                self.port, self.kafka_port = int(m.group(1)), int(k.group(1))
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.1)
        if not check(self.port is not None, "brokerd logs where the admin API and Kafka listen"):
            return False
        while time.time() < deadline and request(self.port, "/v1/status/ready")[0] != 200:
            time.sleep(0.1)
        return True

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.kafka_port}"

    def stop(self):
        """SIGTERM; checks a clean exit and no sanitizer report."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = -9
        self.log.seek(0)
        text = self.log.read()
        self.log.close()
        check(rc == 0, f"brokerd exits 0 after SIGTERM (got {rc})")
        check("AddressSanitizer" not in text and "runtime error" not in text, "no sanitizer report")
        return text

    def close(self):
        text = self.stop() if self.proc and self.proc.poll() is None else open(self.log_path).read()
        if failures:
            print("--- brokerd log ---\n" + text[-4000:])
        shutil.rmtree(self.dir, ignore_errors=True)
