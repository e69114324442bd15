// sluice-faultfs: a FUSE filesystem that simulates power loss.
//
//   sluice-faultfs BACKING_DIR MOUNTPOINT [-f] [-s] [-d] [-o OPTIONS]
//
// Exposes BACKING_DIR at MOUNTPOINT; what is not fsynced is lost at a drop
// (write `drop` to MOUNTPOINT/.faultfs-control, or send SIGUSR1). The model
// is in filesystem.h; this file is the libfuse3 low-level glue, the signal
// thread and the command line. docs/RELIABILITY.md, "The power-loss
// filesystem", documents all of it.
#define FUSE_USE_VERSION 312

#include "filesystem.h"

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using sluice::faultfs::caller;
using sluice::faultfs::control_ino;
using sluice::faultfs::dir_entry;
using sluice::faultfs::entry_reply;
using sluice::faultfs::filesystem;

static_assert(sluice::faultfs::set_attr_mode == FUSE_SET_ATTR_MODE);
static_assert(sluice::faultfs::set_attr_uid == FUSE_SET_ATTR_UID);
static_assert(sluice::faultfs::set_attr_gid == FUSE_SET_ATTR_GID);
static_assert(sluice::faultfs::set_attr_size == FUSE_SET_ATTR_SIZE);
static_assert(sluice::faultfs::set_attr_atime == FUSE_SET_ATTR_ATIME);
static_assert(sluice::faultfs::set_attr_mtime == FUSE_SET_ATTR_MTIME);
static_assert(sluice::faultfs::set_attr_atime_now == FUSE_SET_ATTR_ATIME_NOW);
static_assert(sluice::faultfs::set_attr_mtime_now == FUSE_SET_ATTR_MTIME_NOW);
static_assert(sluice::faultfs::root_ino == FUSE_ROOT_ID);

filesystem* g_fs = nullptr;
fuse_session* g_se = nullptr;

filesystem& fs() { return *g_fs; }

caller who(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return caller{ctx->uid, ctx->gid};
}

// Nothing is cached by the kernel: names and attributes are asked for every
// time, and every open bypasses the page cache (direct_io), so a drop is seen
// at once and O_DIRECT opens work.
void reply_entry(fuse_req_t req, int err, const entry_reply& e) {
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_entry_param p{};
  p.ino = e.ino;
  p.attr = e.attr;
  p.attr_timeout = 0;
  p.entry_timeout = 0;
  fuse_reply_entry(req, &p);
}

void reply_attr(fuse_req_t req, int err, const struct stat& st) {
  if (err != 0) fuse_reply_err(req, err);
  else fuse_reply_attr(req, &st, 0);
}

// Tells the kernel to forget what it may hold of each inode (after a drop).
// Called without the model's lock: the kernel may call back.
void invalidate(const std::vector<uint64_t>& inodes) {
  for (uint64_t ino : inodes) {
    if (ino == control_ino) continue;
    fuse_lowlevel_notify_inval_inode(g_se, ino, 0, 0);  // ENOENT: the kernel does not know it; fine
  }
}

// ---- operations -------------------------------------------------------------------------------------

void op_destroy(void*) { fs().unmount(); }

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  entry_reply e;
  reply_entry(req, fs().lookup(parent, name, &e), e);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  fs().forget(ino, nlookup);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; i++) fs().forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat st {};
  reply_attr(req, fs().getattr(ino, &st), st);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  struct stat st {};
  reply_attr(req, fs().setattr(ino, *attr, to_set, &st), st);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  std::string target;
  if (const int e = fs().readlink(ino, &target); e != 0) fuse_reply_err(req, e);
  else fuse_reply_readlink(req, target.c_str());
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  entry_reply e;
  reply_entry(req, fs().mknod(parent, name, mode, rdev, who(req), &e), e);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  entry_reply e;
  reply_entry(req, fs().mkdir(parent, name, mode, who(req), &e), e);
}

void op_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  entry_reply e;
  reply_entry(req, fs().symlink(link, parent, name, who(req), &e), e);
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) {
  entry_reply e;
  reply_entry(req, fs().link(ino, new_parent, new_name, &e), e);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_reply_err(req, fs().unlink(parent, name));
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_reply_err(req, fs().rmdir(parent, name));
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent, const char* new_name,
               unsigned flags) {
  fuse_reply_err(req, fs().rename(parent, name, new_parent, new_name, flags));
}

// The control file's handle: the stats a read returns, taken at offset 0.
struct control_handle {
  std::string snapshot;
};

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  fi->direct_io = 1;
  fi->keep_cache = 0;
  if (ino == control_ino) {
    fi->nonseekable = 1;
    fi->fh = reinterpret_cast<uint64_t>(new control_handle);
    fuse_reply_open(req, fi);
    return;
  }
  if (const int e = fs().open(ino, fi->flags); e != 0) fuse_reply_err(req, e);
  else fuse_reply_open(req, fi);
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  entry_reply e;
  const int err = fs().create(parent, name, mode, fi->flags, who(req), &e);
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  fi->direct_io = 1;
  fi->keep_cache = 0;
  fuse_entry_param p{};
  p.ino = e.ino;
  p.attr = e.attr;
  if (fuse_reply_create(req, &p, fi) != 0) {
    // The kernel did not take the reply (the caller was interrupted): undo what it would have released.
    fs().release(e.ino);
    fs().forget(e.ino, 1);
  }
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  if (ino == control_ino) {
    auto* h = reinterpret_cast<control_handle*>(fi->fh);
    if (off == 0 || h->snapshot.empty()) h->snapshot = fs().stats_json();
    const size_t at = std::min(static_cast<size_t>(off), h->snapshot.size());
    // A copy: the kernel may release the handle while the reply is still being written.
    const std::string part = h->snapshot.substr(at, size);
    fuse_reply_buf(req, part.data(), part.size());
    return;
  }
  std::string out;
  if (const int e = fs().read(ino, static_cast<uint64_t>(off), size, &out); e != 0) fuse_reply_err(req, e);
  else fuse_reply_buf(req, out.data(), out.size());
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info*) {
  if (ino == control_ino) {
    std::vector<uint64_t> inval;
    const int e = fs().control(std::string_view(buf, size), &inval);
    if (e != 0) fuse_reply_err(req, e);
    else fuse_reply_write(req, size);
    invalidate(inval);
    return;
  }
  if (const int e = fs().write(ino, static_cast<uint64_t>(off), std::string_view(buf, size)); e != 0)
    fuse_reply_err(req, e);
  else fuse_reply_write(req, size);
}

void op_flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino == control_ino) delete reinterpret_cast<control_handle*>(fi->fh);
  else fs().release(ino);
  fuse_reply_err(req, 0);
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) { fuse_reply_err(req, fs().fsync(ino)); }

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, fuse_file_info*) {
  if (off < 0 || len <= 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  fuse_reply_err(req, fs().fallocate(ino, mode, static_cast<uint64_t>(off), static_cast<uint64_t>(len)));
}

// A directory handle: the entries, read at offset 0 (so rewinddir sees changes).
struct dir_handle {
  std::vector<dir_entry> entries;
};

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  struct stat st {};
  if (const int e = fs().getattr(ino, &st); e != 0) {
    fuse_reply_err(req, e);
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  fi->fh = reinterpret_cast<uint64_t>(new dir_handle);
  fuse_reply_open(req, fi);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  auto* h = reinterpret_cast<dir_handle*>(fi->fh);
  if (off == 0) {
    std::vector<dir_entry> entries;
    if (const int e = fs().list(ino, &entries); e != 0) {
      fuse_reply_err(req, e);
      return;
    }
    h->entries = {{".", ino, S_IFDIR}, {"..", ino, S_IFDIR}};
    h->entries.insert(h->entries.end(), entries.begin(), entries.end());
  }
  std::string buf(size, '\0');
  size_t used = 0;
  for (size_t i = static_cast<size_t>(off); i < h->entries.size(); i++) {
    struct stat st {};
    st.st_ino = h->entries[i].ino;
    st.st_mode = h->entries[i].type;
    const size_t need = fuse_add_direntry(req, buf.data() + used, size - used, h->entries[i].name.c_str(), &st,
                                          static_cast<off_t>(i + 1));
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<dir_handle*>(fi->fh);
  fuse_reply_err(req, 0);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) { fuse_reply_err(req, fs().fsync(ino)); }

void op_statfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs st {};
  if (const int e = fs().statfs(&st); e != 0) fuse_reply_err(req, e);
  else fuse_reply_statfs(req, &st);
}

// ---- SIGUSR1: drop ----------------------------------------------------------------------------------

std::atomic<bool> g_stopping{false};

void signal_thread() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  const struct timespec tick {0, 200'000'000};
  while (!g_stopping.load()) {
    if (sigtimedwait(&set, nullptr, &tick) != SIGUSR1) continue;
    std::vector<uint64_t> inval;
    fs().drop(&inval);
    invalidate(inval);
  }
}

// ---- command line -----------------------------------------------------------------------------------

struct own_options {
  int sync_on_unmount = 0;
  int show_help = 0;
};

const fuse_opt own_opts[] = {
    {"sync_on_unmount", offsetof(own_options, sync_on_unmount), 1},
    {"-h", offsetof(own_options, show_help), 1},
    {"--help", offsetof(own_options, show_help), 1},
    FUSE_OPT_END,
};

void usage(const char* prog) {
  std::printf(
      "usage: %s BACKING_DIR MOUNTPOINT [options]\n"
      "\n"
      "Exposes BACKING_DIR at MOUNTPOINT. File data reaches BACKING_DIR at an fsync/fdatasync of the\n"
      "file, directory entries at an fsync of their directory; a drop discards everything else, as a\n"
      "power cut would. Control: write commands to MOUNTPOINT/.faultfs-control (one a line: drop, sync,\n"
      "eio-fsync on|off, eio-write on|off, enospc on|off, clear-faults), read it for JSON stats;\n"
      "SIGUSR1 drops. See docs/RELIABILITY.md.\n"
      "\n"
      "options:\n"
      "    -o sync_on_unmount     a clean unmount makes everything durable first\n"
      "                           (default: unmounting is a power cut too)\n",
      prog);
  fuse_cmdline_help();
  fuse_lowlevel_help();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && (std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "--help") == 0)) {
    usage(argv[0]);
    return 0;
  }
  if (argc < 3 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: %s BACKING_DIR MOUNTPOINT [options] (--help for more)\n", argv[0]);
    return 2;
  }
  const std::string backing = argv[1];
  std::vector<char*> rest{argv[0]};
  for (int i = 2; i < argc; i++) rest.push_back(argv[i]);
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(rest.size()), rest.data());

  own_options own;
  if (fuse_opt_parse(&args, &own, own_opts, nullptr) != 0) return 2;
  if (own.show_help) {
    usage(argv[0]);
    return 0;
  }
  fuse_cmdline_opts opts{};
  if (fuse_parse_cmdline(&args, &opts) != 0) return 2;
  if (!opts.mountpoint) {
    std::fprintf(stderr, "%s: no mount point given\n", argv[0]);
    return 2;
  }
  const std::string fsname = "-ofsname=sluice-faultfs:" + backing;
  fuse_opt_add_arg(&args, fsname.c_str());
  fuse_opt_add_arg(&args, "-osubtype=faultfs");
  fuse_opt_add_arg(&args, "-odefault_permissions");

  // A broker keeps many segment files open, and so do we (one backing fd each).
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  std::string error;
  auto model = filesystem::open({backing, own.sync_on_unmount != 0}, &error);
  if (!model) {
    std::fprintf(stderr, "%s: %s\n", argv[0], error.c_str());
    return 1;
  }
  g_fs = model.get();

  fuse_lowlevel_ops ops{};
  ops.destroy = op_destroy;
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.forget_multi = op_forget_multi;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.readlink = op_readlink;
  ops.mknod = op_mknod;
  ops.mkdir = op_mkdir;
  ops.symlink = op_symlink;
  ops.link = op_link;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.rename = op_rename;
  ops.open = op_open;
  ops.create = op_create;
  ops.read = op_read;
  ops.write = op_write;
  ops.flush = op_flush;
  ops.release = op_release;
  ops.fsync = op_fsync;
  ops.fallocate = op_fallocate;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.releasedir = op_releasedir;
  ops.fsyncdir = op_fsyncdir;
  ops.statfs = op_statfs;

  int rc = 1;
  g_se = fuse_session_new(&args, &ops, sizeof(ops), nullptr);
  if (g_se) {
    if (fuse_set_signal_handlers(g_se) == 0) {
      if (fuse_session_mount(g_se, opts.mountpoint) == 0) {
        fuse_daemonize(opts.foreground);
        // SIGUSR1 goes to the signal thread only: block it before the loop starts its threads.
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
        std::thread signals(signal_thread);
        if (opts.singlethread) {
          rc = fuse_session_loop(g_se);
        } else {
          fuse_loop_config* cfg = fuse_loop_cfg_create();
          fuse_loop_cfg_set_clone_fd(cfg, static_cast<unsigned>(opts.clone_fd));
          if (opts.max_idle_threads != UINT_MAX) fuse_loop_cfg_set_idle_threads(cfg, opts.max_idle_threads);
          fuse_loop_cfg_set_max_threads(cfg, opts.max_threads);
          rc = fuse_session_loop_mt(g_se, cfg);
          fuse_loop_cfg_destroy(cfg);
        }
        g_stopping = true;
        signals.join();
        fuse_session_unmount(g_se);
      }
      fuse_remove_signal_handlers(g_se);
    }
    fuse_session_destroy(g_se);  // calls op_destroy when the kernel had initialised the session
  }
  g_se = nullptr;
  g_fs = nullptr;
  free(opts.mountpoint);
  fuse_opt_free_args(&args);
  return rc == 0 ? 0 : 1;
}
