#!/usr/bin/python3
"""Checks sluice-faultfs's power-loss model on real mounts (docs/RELIABILITY.md).

    faultfs_test.py --faultfs build/debug/bin/sluice-faultfs [--work-dir DIR] [-k NAME]

Every case mounts a fresh backing directory, writes and renames with and without fsync, drops,
and checks exactly what survived, both through the mount and, after unmounting, in the backing
directory itself. Exit 0 when every case passed, 1 otherwise, 77 (skip) without /dev/fuse or
fusermount3. Standard library only.
"""

import argparse
import ctypes
import errno
import mmap
import os
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultfslib import STAGING, FaultFS, fsync_dir, skip_reason  # noqa: E402

EXIT_SKIP = 77
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def fallocate(fd, mode, off, length):
    if _libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"fallocate(mode={mode:#x}): {os.strerror(e)}")


def write(path, data, sync=False, mode="wb"):
    with open(path, mode) as f:
        f.write(data)
        f.flush()
        if sync:
            os.fsync(f.fileno())


def read(path):
    with open(path, "rb") as f:
        return f.read()


def listing(path):
    return sorted(os.listdir(path))


def expect_tree(root, want, where):
    """want: {relative path: bytes for a file, None for a directory}; nothing else may exist."""
    have = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d != STAGING]
        for d in dirnames:
            have[os.path.normpath(os.path.join(rel, d))] = None
        for f in filenames:
            if rel == "." and f == ".faultfs-control":
                continue
            p = os.path.normpath(os.path.join(rel, f))
            have[p] = read(os.path.join(dirpath, f))
    check(have == want, f"{where}: expected {sorted(want.items())}\n  found {sorted(have.items())}")


# ---- cases ------------------------------------------------------------------------------------------

def case_file_data(args):
    """Unsynced writes, appends and truncates vanish; synced ones stay; reads see the volatile state."""
    fs = FaultFS(args.faultfs, args.work_dir)
    write(os.path.join(fs.backing, "pre"), b"old-contents")
    write(os.path.join(fs.backing, "pre-synced"), b"old-contents")
    write(os.path.join(fs.backing, "cut"), b"0123456789")
    write(os.path.join(fs.backing, "cut-synced"), b"0123456789")
    with fs:
        with open(fs.path("pre"), "r+b") as f:
            f.write(b"NEW")
        with open(fs.path("pre-synced"), "r+b") as f:
            f.write(b"NEW")
            f.flush()
            os.fdatasync(f.fileno())
        write(fs.path("pre"), b"+tail", mode="ab")
        os.truncate(fs.path("cut"), 3)
        os.truncate(fs.path("cut"), 6)  # the cut part reads as zeros, not as the old bytes
        os.truncate(fs.path("cut-synced"), 4)
        fd = os.open(fs.path("cut-synced"), os.O_RDWR)
        os.fsync(fd)
        os.close(fd)

        write(fs.path("a"), b"synced, dir synced", sync=True)
        write(fs.path("b"), b"synced, dir not synced", sync=True)
        fsync_dir(fs.mnt)  # a and b are durable names now
        write(fs.path("c"), b"not synced, dir synced")
        fsync_dir(fs.mnt)
        write(fs.path("d"), b"1111", sync=True)
        fsync_dir(fs.mnt)
        write(fs.path("d"), b"2222", mode="ab")
        write(fs.path("e"), b"synced, dir never synced", sync=True)

        check(read(fs.path("pre")) == b"NEW-contents+tail", "pre: reads see unsynced writes")
        check(read(fs.path("cut")) == b"012\0\0\0", f"cut: {read(fs.path('cut'))!r}")
        check(read(fs.path("d")) == b"11112222", "d: reads see the unsynced append")
        st = fs.stats()
        check(st["files_pending"] == 4, f"pending files: pre, cut, c, d: {st}")
        check(st["entries_pending"] == 1 and st["pending_entries"] == ["+e"], f"pending entries: e: {st}")
        check(st["pending_files"] == ["c", "cut", "d", "pre"], f"pending files: {st}")
        check(st["bytes_pending"] > 0, f"bytes pending: {st}")

        fs.drop()
        st = fs.stats()
        check(st["drops"] == 1 and st["bytes_pending"] == 0 and st["files_pending"] == 0, f"after drop: {st}")
        check(st["last_drop"]["files"] == 4 and st["last_drop"]["entries"] == 1, f"last_drop: {st}")
        want = {
            "pre": b"old-contents",
            "pre-synced": b"NEW-contents",
            "cut": b"0123456789",
            "cut-synced": b"0123",
            "a": b"synced, dir synced",
            "b": b"synced, dir not synced",
            "c": b"",
            "d": b"1111",
        }
        expect_tree(fs.mnt, want, "mount after drop")
        # Writing on after a drop works, and the new state is durable as usual.
        write(fs.path("d"), b"3333", sync=True, mode="ab")
        fs.unmount()
        want["d"] = b"11113333"
        expect_tree(fs.backing, want, "backing after unmount")
        check(not os.path.exists(os.path.join(fs.backing, STAGING)), "the staging directory is removed at unmount")


def case_namespace(args):
    """Creations, renames, unlinks and mkdirs are durable only after an fsync of their directory."""
    fs = FaultFS(args.faultfs, args.work_dir)
    for name, data in (("f1", b"f1"), ("g1", b"g1"), ("h", b"h"), ("h2", b"h2"), ("target", b"v1"),
                       ("target2", b"v1")):
        write(os.path.join(fs.backing, name), data)
    for d in ("dirA", "dirB", "d1", "empty", "empty2"):
        os.mkdir(os.path.join(fs.backing, d))
    write(os.path.join(fs.backing, "dirA", "moved"), b"moved")
    write(os.path.join(fs.backing, "d1", "inside"), b"inside")
    with fs:
        m = fs.path
        os.rename(m("f1"), m("f2"))            # not made durable
        os.unlink(m("h"))                      # not made durable
        os.rmdir(m("empty"))                   # not made durable
        os.mkdir(m("sub"))                     # parent never synced: sub and what is in it vanish
        write(m("sub", "x"), b"x", sync=True)
        fsync_dir(m("sub"))
        st = fs.stats()
        check(st["pending_entries"] == ["+f2", "+sub", "-empty", "-f1", "-h"], f"pending entries: {st}")
        # tmp + fsync + rename over, without the directory fsync: the old version stays.
        write(m("target.tmp"), b"v2", sync=True)
        os.rename(m("target.tmp"), m("target"))
        check(read(m("target")) == b"v2", "target reads v2 before the drop")
        check("f2" in listing(fs.mnt) and "f1" not in listing(fs.mnt), "rename visible before the drop")
        fs.drop()
        expect_tree(fs.mnt, {"f1": b"f1", "g1": b"g1", "h": b"h", "h2": b"h2", "target": b"v1", "target2": b"v1",
                             "dirA": None, "dirA/moved": b"moved", "dirB": None, "d1": None,
                             "d1/inside": b"inside", "empty": None, "empty2": None}, "after the first drop")

        os.rename(m("g1"), m("g2"))
        os.unlink(m("h2"))
        os.rmdir(m("empty2"))
        write(m("target2.tmp"), b"v2", sync=True)
        os.rename(m("target2.tmp"), m("target2"))
        os.mkdir(m("sub2"))
        write(m("sub2", "y"), b"y", sync=True)  # sub2 is never synced: y's name is not durable
        os.rename(m("d1"), m("d2"))             # a directory rename
        os.rename(m("dirA", "moved"), m("dirB", "moved"))
        fsync_dir(fs.mnt)
        fsync_dir(m("dirB"))                   # dirA is not synced: its old name survives too
        fs.drop()
        expect_tree(fs.mnt, {"f1": b"f1", "g2": b"g1", "h": b"h", "target": b"v1", "target2": b"v2",
                             "dirA": None, "dirA/moved": b"moved", "dirB": None, "dirB/moved": b"moved",
                             "d2": None, "d2/inside": b"inside", "empty": None, "sub2": None},
                    "after the second drop")
        check(os.stat(m("dirA", "moved")).st_ino == os.stat(m("dirB", "moved")).st_ino,
              "a half-synced cross-directory rename leaves two names of one file")
        fs.unmount()
        expect_tree(fs.backing, {"f1": b"f1", "g2": b"g1", "h": b"h", "target": b"v1", "target2": b"v2",
                                 "dirA": None, "dirA/moved": b"moved", "dirB": None, "dirB/moved": b"moved",
                                 "d2": None, "d2/inside": b"inside", "empty": None, "sub2": None},
                    "backing after unmount")


def case_rename_chains(args):
    """A file renamed twice, replaced, exchanged or unlinked between syncs ends where its last sync says."""
    with FaultFS(args.faultfs, args.work_dir) as fs:
        m = fs.path
        write(m("a"), b"A", sync=True)
        write(m("b"), b"B", sync=True)
        fsync_dir(fs.mnt)
        os.rename(m("a"), m("tmp"))
        os.rename(m("b"), m("a"))
        os.rename(m("tmp"), m("b"))            # swapped through a third name
        fsync_dir(fs.mnt)
        fs.drop()
        expect_tree(fs.mnt, {"a": b"B", "b": b"A"}, "after a synced swap")
        os.rename(m("a"), m("c"))
        fsync_dir(fs.mnt)
        os.rename(m("c"), m("a"))              # back again, unsynced
        fs.drop()
        expect_tree(fs.mnt, {"c": b"B", "b": b"A"}, "after an unsynced rename back")
        # Unlink a durable file while it is open: the handle still reads it; the name comes back at a drop.
        fd = os.open(m("b"), os.O_RDONLY)
        os.unlink(m("b"))
        check(os.pread(fd, 10, 0) == b"A", "an unlinked open file still reads")
        fsync_dir(fs.mnt)
        check(os.pread(fd, 10, 0) == b"A", "an unlinked open file still reads after its unlink is durable")
        os.close(fd)
        os.link(m("c"), m("c2"))
        fsync_dir(fs.mnt)
        os.symlink("c", m("sym"))
        fsync_dir(fs.mnt)
        fs.drop()
        check(os.readlink(m("sym")) == "c", "a synced symlink survives")
        check(os.stat(m("c")).st_ino == os.stat(m("c2")).st_ino and os.stat(m("c")).st_nlink == 2,
              "a synced hard link survives as a hard link")
        check(sorted(os.listdir(fs.mnt)) == ["c", "c2", "sym"], f"listing: {os.listdir(fs.mnt)}")


def case_open_handles_across_drop(args):
    """A handle opened before a drop reads the durable state after it; a name never made durable is gone."""
    with FaultFS(args.faultfs, args.work_dir) as fs:
        m = fs.path
        write(m("kept"), b"durable", sync=True)
        fsync_dir(fs.mnt)
        fd = os.open(m("kept"), os.O_RDWR)
        os.pwrite(fd, b"VOLATILE", 0)
        check(os.pread(fd, 20, 0) == b"VOLATILE", "the handle sees its own write")
        fd2 = os.open(m("fresh"), os.O_RDWR | os.O_CREAT, 0o644)
        os.pwrite(fd2, b"x" * 100, 0)
        os.fsync(fd2)
        fs.drop()
        check(os.pread(fd, 20, 0) == b"durable", f"after the drop: {os.pread(fd, 20, 0)!r}")
        check(os.fstat(fd).st_size == 7, "the size reverted")
        check(not os.path.exists(m("fresh")), "a file whose name was never durable is gone")
        os.pwrite(fd, b"again", 0)
        os.fsync(fd)
        os.close(fd)
        os.close(fd2)
        check(read(m("kept")) == b"againle", f"kept: {read(m('kept'))!r}")


def case_odirect_and_fallocate(args):
    """O_DIRECT opens with aligned pwrite/pread, fallocate (allocate, punch hole, zero range) through the mount."""
    with FaultFS(args.faultfs, args.work_dir) as fs:
        p = fs.path("seg")
        buf = mmap.mmap(-1, 8192)  # page-aligned
        buf[:] = bytes(range(256)) * 32
        fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
        try:
            check(os.pwrite(fd, buf, 0) == 8192, "O_DIRECT pwrite at 0")
            check(os.pwrite(fd, memoryview(buf)[:4096], 16384) == 4096, "O_DIRECT pwrite at 16384")
            fallocate(fd, 0, 0, 1 << 20)
            check(os.fstat(fd).st_size == 1 << 20, "fallocate mode 0 grows the size")
            os.fdatasync(fd)
            fsync_dir(fs.mnt)
            rbuf = mmap.mmap(-1, 8192)
            check(os.preadv(fd, [rbuf], 0) == 8192 and rbuf[:] == buf[:], "O_DIRECT pread reads what was written")
            check(os.preadv(fd, [rbuf], 8192) == 8192 and rbuf[:] == bytes(8192), "the gap reads zeros")
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096)
            fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 4096, 100)
            fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 2 << 20)
            check(os.fstat(fd).st_size == 1 << 20, "KEEP_SIZE keeps the size")
            check(os.preadv(fd, [rbuf], 0) == 8192, "pread after punching")
            check(rbuf[:4196] == bytes(4196) and rbuf[4196:] == buf[4196:], "the punched and zeroed ranges read zeros")
            fallocate(fd, 0, 0, 3 << 20)  # unsynced growth
            check(os.fstat(fd).st_size == 3 << 20, "grown")
            fs.drop()
            check(os.fstat(fd).st_size == 1 << 20, "the unsynced growth is gone")
            check(os.preadv(fd, [rbuf], 0) == 8192 and rbuf[:] == buf[:], "the unsynced punch is gone")
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096)
            os.fsync(fd)
            check(os.preadv(fd, [rbuf], 0) == 8192 and rbuf[:4096] == bytes(4096), "a synced punch")
        finally:
            os.close(fd)
        fs.drop()
        data = read(p)
        check(len(data) == 1 << 20 and data[:4096] == bytes(4096) and data[4096:8192] == buf[4096:]
              and data[16384:20480] == buf[:4096], "the synced state after another drop")


def case_faults(args):
    """eio-fsync, eio-write and enospc fail the calls they name until turned off; bad commands are EINVAL."""
    with FaultFS(args.faultfs, args.work_dir) as fs:
        m = fs.path
        fd = os.open(m("f"), os.O_RDWR | os.O_CREAT, 0o644)
        os.pwrite(fd, b"data", 0)
        fs.control("eio-fsync on")
        for call in (lambda: os.fsync(fd), lambda: os.fdatasync(fd), lambda: fsync_dir(fs.mnt)):
            try:
                call()
                raise Failure("fsync succeeded under eio-fsync")
            except OSError as e:
                check(e.errno == errno.EIO, f"fsync under eio-fsync: {e}")
        check(fs.stats()["files_pending"] == 1, "a failed fsync leaves the data pending")
        fs.control("eio-fsync off", "eio-write on")
        os.fsync(fd)
        try:
            os.pwrite(fd, b"more", 4)
            raise Failure("write succeeded under eio-write")
        except OSError as e:
            check(e.errno == errno.EIO, f"write under eio-write: {e}")
        fs.control("eio-write off", "enospc on")
        for call in (lambda: os.pwrite(fd, b"more", 4), lambda: os.open(m("g"), os.O_CREAT | os.O_WRONLY),
                     lambda: os.mkdir(m("d")), lambda: os.fsync(fd), lambda: fallocate(fd, 0, 0, 8192)):
            try:
                call()
                raise Failure("a call succeeded under enospc")
            except OSError as e:
                check(e.errno == errno.ENOSPC, f"under enospc: {e}")
        st = fs.stats()
        check(st["enospc"] and not st["eio_fsync"] and st["injected_errors"] == 9, f"stats: {st}")
        fs.control("clear-faults")
        os.pwrite(fd, b"more", 4)
        os.fsync(fd)
        os.close(fd)
        check(read(m("f")) == b"datamore", "writes work again")
        try:
            fs.control("no-such-command")
            raise Failure("an unknown command was accepted")
        except OSError as e:
            check(e.errno == errno.EINVAL, f"unknown command: {e}")
        try:
            fs.control("enospc maybe")
            raise Failure("a bad argument was accepted")
        except OSError as e:
            check(e.errno == errno.EINVAL, f"bad argument: {e}")


def case_signal_and_sync(args):
    """SIGUSR1 drops; the `sync` command makes everything durable."""
    with FaultFS(args.faultfs, args.work_dir) as fs:
        m = fs.path
        write(m("lost"), b"lost")
        fs.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while fs.stats()["drops"] < 1:
            check(time.monotonic() < deadline, "SIGUSR1 did not drop within 10 s")
            time.sleep(0.05)
        check(os.listdir(fs.mnt) == [], f"after SIGUSR1: {os.listdir(fs.mnt)}")
        os.makedirs(m("x", "y"))
        write(m("x", "y", "z"), b"z")
        fs.control("sync")
        st = fs.stats()
        check(st["files_pending"] == 0 and st["entries_pending"] == 0, f"after sync: {st}")
        fs.drop()
        expect_tree(fs.mnt, {"x": None, "x/y": None, "x/y/z": b"z"}, "after sync and drop")


def case_remount(args):
    """A remount sees the durable state; unmounting is a power cut unless -o sync_on_unmount."""
    fs = FaultFS(args.faultfs, args.work_dir)
    try:
        fs.mount()
        write(fs.path("durable"), b"d", sync=True)
        fsync_dir(fs.mnt)
        write(fs.path("volatile"), b"v")
        fs.unmount()
        fs.mount()
        expect_tree(fs.mnt, {"durable": b"d"}, "after a remount")
        fs.unmount()
        fs.options = ["-o", "sync_on_unmount"]
        fs.mount()
        write(fs.path("volatile"), b"v")
        fs.unmount()
        expect_tree(fs.backing, {"durable": b"d", "volatile": b"v"}, "backing after a sync_on_unmount")
    finally:
        fs.close()


CASES = [case_file_data, case_namespace, case_rename_chains, case_open_handles_across_drop,
         case_odirect_and_fallocate, case_faults, case_signal_and_sync, case_remount]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faultfs", required=True, help="the sluice-faultfs binary")
    p.add_argument("--work-dir", default=None, help="where the temporary directories go (default: $TMPDIR)")
    p.add_argument("-k", dest="only", default=None, help="run only the cases whose name contains this")
    args = p.parse_args()
    reason = skip_reason()
    if reason:
        print(f"SKIP: {reason}")
        return EXIT_SKIP
    if args.work_dir:
        os.makedirs(args.work_dir, exist_ok=True)
    failed = 0
    for case in CASES:
        name = case.__name__[len("case_"):]
        if args.only and args.only not in name:
            continue
        t0 = time.monotonic()
        try:
            case(args)
            print(f"ok    {name} ({time.monotonic() - t0:.1f} s)", flush=True)
        except Exception as e:  # noqa: BLE001 -- every failure is reported, then the next case runs
            failed += 1
            print(f"FAIL  {name}: {e}", flush=True)
            if not isinstance(e, Failure):
                traceback.print_exc()
    print("all cases passed" if not failed else f"{failed} case(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
