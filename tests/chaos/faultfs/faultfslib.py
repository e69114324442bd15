"""Mounting sluice-faultfs from a test (docs/RELIABILITY.md, "The power-loss filesystem").

    from faultfslib import FaultFS, skip_reason
    with FaultFS(faultfs_binary, work_dir) as fs:    # a fresh backing dir and mount point
        open(fs.path("f"), "w").write("x")
        fs.drop()                                    # everything not fsynced is gone
        fs.stats()["drops"] == 1
    # leaving the block unmounts (always, also on an exception) and removes the directories; it raises
    # FaultFSError if the daemon died, exited non-zero or printed a sanitizer report

`skip_reason()` says why this machine cannot mount FUSE (None when it can). The daemon runs in
the foreground as a child of the test with PR_SET_PDEATHSIG=SIGTERM, so it unmounts itself if the
test dies. Standard library only.
"""

import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

CONTROL = ".faultfs-control"
STAGING = ".faultfs-staging"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def skip_reason():
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist (no FUSE in this kernel or container)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is not readable and writable by this user (run as root)"
    if not shutil.which("fusermount3"):
        return "fusermount3 is not installed (apt-get install fuse3)"
    return None


try:
    _prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
except OSError:
    _prctl = None


def _die_with_parent():
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: the daemon unmounts and exits


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 4 and fields[4].replace("\\040", " ") == path:
                return True
    return False


def fsync_dir(path):
    """fsync(2) of a directory: makes its entries durable on the mount."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FaultFSError(Exception):
    pass


class FaultFS:
    """One mount of sluice-faultfs. `backing` and `mnt` are created under `work_dir` unless given."""

    def __init__(self, binary, work_dir, backing=None, mnt=None, options=(), keep=False):
        self.binary = binary
        self.base = os.path.abspath(tempfile.mkdtemp(prefix="faultfs-", dir=work_dir))
        self.backing = backing or os.path.join(self.base, "backing")
        self.mnt = mnt or os.path.join(self.base, "mnt")
        self.options = list(options)
        self.keep = keep
        self.log_path = os.path.join(self.base, "faultfs.log")
        self.proc = None
        self.problems = []  # what went wrong with the daemon itself
        os.makedirs(self.backing, exist_ok=True)
        os.makedirs(self.mnt, exist_ok=True)

    # ---- lifecycle ----

    def mount(self, timeout=15.0):
        if self.proc is not None:
            raise FaultFSError("already mounted")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, self.backing, self.mnt, "-f"] + self.options,
                                     stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        log.close()
        deadline = time.monotonic() + timeout
        while not is_mounted(self.mnt):
            if self.proc.poll() is not None:
                self.proc = None
                raise FaultFSError(f"sluice-faultfs exited before mounting:\n{self.log()}")
            if time.monotonic() > deadline:
                self.unmount()
                raise FaultFSError(f"{self.mnt} not mounted after {timeout} s:\n{self.log()}")
            time.sleep(0.02)
        # The root answers once the session is initialised.
        os.stat(self.mnt)
        return self

    def unmount(self, timeout=15.0):
        """Unmounts (fusermount3 -u, lazily if busy) and waits for the daemon; kills only its own pid."""
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            self.problems.append(f"sluice-faultfs (pid {self.proc.pid}) died while mounted, "
                                 f"status {self.proc.returncode}")
        if is_mounted(self.mnt):
            r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True, text=True)
            if r.returncode != 0 and is_mounted(self.mnt):
                subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        code = self.proc.returncode
        if code != 0 and not self.problems:
            self.problems.append(f"sluice-faultfs (pid {self.proc.pid}) exited with status {code} at unmount")
        self.proc = None
        if is_mounted(self.mnt):  # the daemon died without unmounting
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
        log = self.log()
        for marker in SANITIZER_MARKERS:
            if marker in log:
                self.problems.append(f"the sluice-faultfs log has a sanitizer report ({marker!r})")
                break
        return code

    def close(self):
        """Unmounts and removes the directories (kept when the daemon misbehaved); raises FaultFSError with the
        daemon's log if it did."""
        self.unmount()
        if self.problems:
            raise FaultFSError("; ".join(self.problems) + f" (directory kept: {self.base})\n{self.log()}")
        if not self.keep:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        return self.mount()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.keep = self.keep or os.environ.get("FAULTFS_KEEP") == "1"
            try:
                self.close()
            except FaultFSError as e:  # the exception in flight goes on; say what the daemon did too
                print(f"faultfs: {e}", flush=True)
            return False
        self.close()
        return False

    # ---- use ----

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def control(self, *commands):
        fd = os.open(self.path(CONTROL), os.O_WRONLY)
        try:
            os.write(fd, ("\n".join(commands) + "\n").encode())
        finally:
            os.close(fd)

    def drop(self):
        self.control("drop")

    def stats(self):
        with open(self.path(CONTROL)) as f:
            return json.load(f)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
