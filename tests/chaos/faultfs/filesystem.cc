#include "filesystem.h"

#include <sluice/sdk/assert.h>

#include <dirent.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

namespace sluice::faultfs {

namespace {

struct timespec now() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

std::string proc_fd(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

std::string staged_name(char prefix, uint64_t ino) { return prefix + std::to_string(ino); }

int pwrite_all(int fd, const char* p, uint64_t len, uint64_t off) {
  while (len > 0) {
    const ssize_t n = ::pwrite(fd, p, len, static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += n;
    len -= static_cast<uint64_t>(n);
    off += static_cast<uint64_t>(n);
  }
  return 0;
}

// Zeros [off, off + len) of a backing file: a punched hole, or written zeros
// where the backing file system cannot punch.
int zero_backing(int fd, uint64_t off, uint64_t len) {
  if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off), static_cast<off_t>(len)) ==
      0)
    return 0;
  if (errno != EOPNOTSUPP) return errno;
  static const std::string zeros(1 << 16, '\0');
  while (len > 0) {
    const uint64_t n = std::min<uint64_t>(len, zeros.size());
    if (const int e = pwrite_all(fd, zeros.data(), n, off); e != 0) return e;
    off += n;
    len -= n;
  }
  return 0;
}

// The control file: a regular file of size 0 (reads and writes go to the
// filesystem directly, the kernel caches none of it).
void control_attr(struct stat* out) {
  *out = {};
  out->st_ino = control_ino;
  out->st_mode = S_IFREG | 0600;
  out->st_nlink = 1;
  out->st_blksize = 4096;
}

bool valid_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

void json_field(std::string* out, const char* key, uint64_t v, bool last = false) {
  *out += "\"";
  *out += key;
  *out += "\": " + std::to_string(v) + (last ? "" : ", ");
}

void json_string(std::string* out, std::string_view v) {
  *out += '"';
  for (const char c : v) {
    if (c == '"' || c == '\\') {
      *out += '\\';
      *out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      *out += buf;
    } else {
      *out += c;
    }
  }
  *out += '"';
}

void json_list(std::string* out, const char* key, std::vector<std::string> items, size_t total) {
  std::sort(items.begin(), items.end());
  *out += "\"";
  *out += key;
  *out += "\": [";
  for (size_t i = 0; i < items.size(); i++) {
    if (i > 0) *out += ", ";
    json_string(out, items[i]);
  }
  *out += "], ";
  if (total > items.size()) {
    *out += "\"";
    *out += key;
    *out += "_more\": " + std::to_string(total - items.size()) + ", ";
  }
}

void json_flag(std::string* out, const char* key, bool v) {
  *out += "\"";
  *out += key;
  *out += v ? "\": true, " : "\": false, ";
}

}  // namespace

// ---- setup ------------------------------------------------------------------------------------------

filesystem::filesystem(const options& opts) : _opts(opts) {}

filesystem::~filesystem() {
  for (auto& [ino, n] : _inodes) {
    if (n->bfd >= 0) ::close(n->bfd);
    if (n->bdirfd >= 0) ::close(n->bdirfd);  // the root's is _root_fd
  }
  if (_staging_fd >= 0) ::close(_staging_fd);
}

std::unique_ptr<filesystem> filesystem::open(const options& opts, std::string* error) {
  std::unique_ptr<filesystem> fs(new filesystem(opts));
  char resolved[PATH_MAX];
  if (!::realpath(opts.backing.c_str(), resolved)) {
    *error = "backing directory " + opts.backing + ": " + std::strerror(errno);
    return nullptr;
  }
  fs->_opts.backing = resolved;
  fs->_root_fd = ::open(resolved, O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct stat st {};
  if (fs->_root_fd < 0 || ::fstat(fs->_root_fd, &st) != 0) {
    *error = "backing directory " + fs->_opts.backing + ": " + std::strerror(errno);
    if (fs->_root_fd >= 0) ::close(fs->_root_fd);
    return nullptr;
  }
  std::error_code ec;
  std::filesystem::remove_all(fs->_opts.backing + "/" + staging_name, ec);
  if (ec || ::mkdirat(fs->_root_fd, staging_name, 0700) != 0 ||
      (fs->_staging_fd = ::openat(fs->_root_fd, staging_name, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
    *error = "cannot create " + fs->_opts.backing + "/" + staging_name + ": " +
             (ec ? ec.message() : std::string(std::strerror(errno)));
    ::close(fs->_root_fd);
    return nullptr;
  }
  auto root = std::make_unique<inode>();
  root->ino = root_ino;
  root->k = kind::dir;
  root->mode = st.st_mode;
  root->uid = st.st_uid;
  root->gid = st.st_gid;
  root->atime = st.st_atim;
  root->mtime = st.st_mtim;
  root->ctime = st.st_ctim;
  root->bdirfd = fs->_root_fd;  // closed with the inodes
  root->vlinks = root->dlinks = 1;  // never freed
  fs->_inodes.emplace(root_ino, std::move(root));
  return fs;
}

// ---- inodes -----------------------------------------------------------------------------------------

filesystem::inode* filesystem::find(uint64_t ino) {
  auto it = _inodes.find(ino);
  return it == _inodes.end() ? nullptr : it->second.get();
}

filesystem::inode& filesystem::must(uint64_t ino) {
  inode* n = find(ino);
  SLUICE_ASSERT_MSG(n, "an inode the model refers to is gone");
  return *n;
}

filesystem::inode& filesystem::make_inode(kind k, mode_t mode, caller who) {
  auto n = std::make_unique<inode>();
  n->ino = _next_ino++;
  n->k = k;
  n->mode = mode;
  n->uid = who.uid;
  n->gid = who.gid;
  n->atime = n->mtime = n->ctime = now();
  inode& ref = *n;
  _inodes.emplace(ref.ino, std::move(n));
  return ref;
}

void filesystem::maybe_free(inode& n) {
  if (n.ino == root_ino || n.nlookup > 0 || n.opens > 0 || n.vlinks > 0 || n.dlinks > 0) return;
  if (n.k == kind::dir && !n.dentries.empty()) return;  // its children still count it as their home
  if (n.staged && n.k == kind::file) ::unlinkat(_staging_fd, staged_name('f', n.ino).c_str(), 0);
  if (n.bfd >= 0) ::close(n.bfd);
  if (n.bdirfd >= 0) ::close(n.bdirfd);
  if (n.bino != 0) {
    auto it = _by_backing.find({n.bdev, n.bino});
    if (it != _by_backing.end() && it->second == n.ino) _by_backing.erase(it);
  }
  _inodes.erase(n.ino);
}

int filesystem::ensure_bfd(inode& n) {
  SLUICE_ASSERT(n.k == kind::file);
  if (n.bfd >= 0) return 0;
  inode* d = n.home_dir ? find(n.home_dir) : nullptr;
  if (!d || d->bdirfd < 0) return EIO;  // cannot happen while the invariants hold
  n.bfd = ::openat(d->bdirfd, n.home_name.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  return n.bfd < 0 ? errno : 0;
}

int filesystem::load(inode& dir) {
  SLUICE_ASSERT(dir.k == kind::dir);
  if (dir.loaded) return 0;
  if (dir.bdirfd < 0) {
    dir.loaded = true;
    return 0;
  }
  const int fd = ::openat(dir.bdirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* dp = fd < 0 ? nullptr : ::fdopendir(fd);
  if (!dp) {
    const int e = errno;
    if (fd >= 0) ::close(fd);
    return e;
  }
  int err = 0;
  while (struct dirent* de = ::readdir(dp)) {
    const std::string name = de->d_name;
    if (name == "." || name == "..") continue;
    if (dir.ino == root_ino && (name == staging_name || name == control_name)) continue;
    struct stat st {};
    if (::fstatat(dir.bdirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      err = errno;
      break;
    }
    inode* n = nullptr;
    if (S_ISREG(st.st_mode)) {
      auto it = _by_backing.find({st.st_dev, st.st_ino});
      if (it != _by_backing.end()) n = find(it->second);  // another name of a file already known
    }
    if (!n) {
      const kind k = S_ISREG(st.st_mode) ? kind::file
                     : S_ISDIR(st.st_mode) ? kind::dir
                     : S_ISLNK(st.st_mode) ? kind::symlink
                                           : kind::special;
      n = &make_inode(k, st.st_mode, caller{st.st_uid, st.st_gid});
      n->rdev = st.st_rdev;
      n->atime = st.st_atim;
      n->mtime = st.st_mtim;
      n->ctime = st.st_ctim;
      if (k == kind::file) {
        n->size = n->durable_size = n->backing_valid = static_cast<uint64_t>(st.st_size);
        n->home_dir = dir.ino;
        n->home_name = name;
        n->bdev = st.st_dev;
        n->bino = st.st_ino;
        _by_backing[{st.st_dev, st.st_ino}] = n->ino;
      } else if (k == kind::dir) {
        n->bdirfd = ::openat(dir.bdirfd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (n->bdirfd < 0) {
          err = errno;
          maybe_free(*n);
          break;
        }
        n->dparent = n->vparent = dir.ino;
        n->dname = name;
      } else if (k == kind::symlink) {
        std::string target(PATH_MAX, '\0');
        const ssize_t len = ::readlinkat(dir.bdirfd, name.c_str(), target.data(), target.size());
        if (len < 0) {
          err = errno;
          maybe_free(*n);
          break;
        }
        target.resize(static_cast<size_t>(len));
        n->target = std::move(target);
      }
    }
    dir.dentries[name] = dir.ventries[name] = n->ino;
    n->vlinks++;
    n->dlinks++;
  }
  ::closedir(dp);
  if (err != 0) {
    // Forget what was read, so the next access tries again.
    for (auto& [name, ino] : dir.dentries) {
      inode& n = must(ino);
      n.vlinks--;
      n.dlinks--;
      if (n.k == kind::dir) n.vparent = n.dparent = 0;
      maybe_free(n);
    }
    dir.dentries.clear();
    dir.ventries.clear();
    return err;
  }
  dir.loaded = true;
  return 0;
}

void filesystem::fill_attr(const inode& n, struct stat* out) const {
  *out = {};
  out->st_ino = n.ino;
  out->st_mode = n.mode;
  out->st_uid = n.uid;
  out->st_gid = n.gid;
  out->st_rdev = n.rdev;
  out->st_blksize = 4096;
  out->st_atim = n.atime;
  out->st_mtim = n.mtime;
  out->st_ctim = n.ctime;
  switch (n.k) {
    case kind::file:
      out->st_nlink = n.vlinks;
      out->st_size = static_cast<off_t>(n.size);
      out->st_blocks = static_cast<blkcnt_t>((n.size + 511) / 512);
      break;
    case kind::dir: {
      nlink_t links = n.vlinks > 0 || n.ino == root_ino ? 2 : 1;
      for (const auto& [name, ino] : n.ventries) {
        auto it = _inodes.find(ino);
        if (it != _inodes.end() && it->second->k == kind::dir) links++;
      }
      out->st_nlink = links;
      out->st_size = 4096;
      out->st_blocks = 8;
      break;
    }
    case kind::symlink:
      out->st_nlink = n.vlinks;
      out->st_size = static_cast<off_t>(n.target.size());
      break;
    case kind::special:
      out->st_nlink = n.vlinks;
      break;
  }
}

void filesystem::reply_entry(inode& n, entry_reply* out) {
  n.nlookup++;
  out->ino = n.ino;
  fill_attr(n, &out->attr);
}

// The directory `parent`, loaded, ready to take a new name: it exists, is a
// directory that is still linked, and the name is one a process may create.
int filesystem::dir_for_change(uint64_t parent, const std::string& name, inode** out) {
  inode* d = find(parent);
  if (!d) return ENOENT;
  if (d->k != kind::dir) return ENOTDIR;
  if (!valid_name(name)) return EINVAL;
  if (name.size() > NAME_MAX) return ENAMETOOLONG;
  if (d->ino == root_ino && (name == control_name || name == staging_name)) return EPERM;
  if (d->vlinks == 0 && d->ino != root_ino) return ENOENT;  // removed (or orphaned by a drop)
  if (const int e = load(*d); e != 0) return e;
  *out = d;
  return 0;
}

void filesystem::add_name(inode& dir, const std::string& name, inode& n) {
  SLUICE_ASSERT(!dir.ventries.contains(name));
  dir.ventries[name] = n.ino;
  dir.dirty = true;
  dir.mtime = dir.ctime = now();
  n.vlinks++;
  n.ctime = now();
  if (n.k == kind::dir) {
    SLUICE_ASSERT(n.vlinks == 1);
    n.vparent = dir.ino;
  }
}

void filesystem::remove_name(inode& dir, const std::string& name) {
  auto it = dir.ventries.find(name);
  SLUICE_ASSERT(it != dir.ventries.end());
  inode& n = must(it->second);
  dir.ventries.erase(it);
  dir.dirty = true;
  dir.mtime = dir.ctime = now();
  SLUICE_ASSERT(n.vlinks > 0);
  n.vlinks--;
  n.ctime = now();
  if (n.k == kind::dir) n.vparent = 0;
  if (n.k == kind::file && n.vlinks == 0 && n.staged) {
    // It can never get a durable name again: its staging name goes (the open fd keeps the bytes).
    ::unlinkat(_staging_fd, staged_name('f', n.ino).c_str(), 0);
    n.staged = false;
  }
  maybe_free(n);
}

int filesystem::injected(int err) {
  _stats.injected_errors++;
  return err;
}

// ---- namespace operations ---------------------------------------------------------------------------

int filesystem::lookup(uint64_t parent, const std::string& name, entry_reply* out) {
  std::lock_guard lock(_mu);
  inode* d = find(parent);
  if (!d) return ENOENT;
  if (d->k != kind::dir) return ENOTDIR;
  if (parent == root_ino && name == control_name) {
    out->ino = control_ino;
    control_attr(&out->attr);
    return 0;
  }
  if (const int e = load(*d); e != 0) return e;
  auto it = d->ventries.find(name);
  if (it == d->ventries.end()) return ENOENT;
  reply_entry(must(it->second), out);
  return 0;
}

void filesystem::forget(uint64_t ino, uint64_t n) {
  std::lock_guard lock(_mu);
  if (ino == root_ino || ino == control_ino) return;
  inode* node = find(ino);
  if (!node) return;
  node->nlookup -= std::min(n, node->nlookup);
  maybe_free(*node);
}

int filesystem::getattr(uint64_t ino, struct stat* out) {
  std::lock_guard lock(_mu);
  if (ino == control_ino) {
    control_attr(out);
    return 0;
  }
  inode* n = find(ino);
  if (!n) return ENOENT;
  fill_attr(*n, out);
  return 0;
}

int filesystem::setattr(uint64_t ino, const struct stat& in, int to_set, struct stat* out) {
  std::lock_guard lock(_mu);
  if (ino == control_ino) {  // `echo drop > .faultfs-control` truncates it first
    control_attr(out);
    return 0;
  }
  inode* n = find(ino);
  if (!n) return ENOENT;
  if (to_set & set_attr_size) {
    if (n->k == kind::dir) return EISDIR;
    if (n->k != kind::file) return EINVAL;
    const uint64_t size = static_cast<uint64_t>(in.st_size);
    if (size > n->size && _enospc) return injected(ENOSPC);
    if (size > n->size && _eio_write) return injected(EIO);
    n->pending.truncate(size);
    n->backing_valid = std::min(n->backing_valid, size);
    n->size = size;
    n->mtime = n->ctime = now();
  }
  // Permissions and ownership are not modelled: they reach the backing inode
  // at once (best effort: a new symlink has none yet).
  std::string backing;
  if (to_set & (set_attr_mode | set_attr_uid | set_attr_gid)) {
    if (n->k == kind::file && ensure_bfd(*n) == 0) backing = proc_fd(n->bfd);
    if (n->k == kind::dir && n->bdirfd >= 0) backing = proc_fd(n->bdirfd);
  }
  if (to_set & set_attr_mode) {
    n->mode = (n->mode & S_IFMT) | (in.st_mode & 07777);
    if (!backing.empty()) ::chmod(backing.c_str(), n->mode & 07777);
  }
  if (to_set & (set_attr_uid | set_attr_gid)) {
    if (to_set & set_attr_uid) n->uid = in.st_uid;
    if (to_set & set_attr_gid) n->gid = in.st_gid;
    if (!backing.empty()) ::chown(backing.c_str(), n->uid, n->gid);
  }
  if (to_set & set_attr_atime_now) n->atime = now();
  else if (to_set & set_attr_atime) n->atime = in.st_atim;
  if (to_set & set_attr_mtime_now) n->mtime = now();
  else if (to_set & set_attr_mtime) n->mtime = in.st_mtim;
  n->ctime = now();
  fill_attr(*n, out);
  return 0;
}

int filesystem::readlink(uint64_t ino, std::string* out) {
  std::lock_guard lock(_mu);
  inode* n = find(ino);
  if (!n) return ENOENT;
  if (n->k != kind::symlink) return EINVAL;
  *out = n->target;
  return 0;
}

int filesystem::new_file(inode& dir, const std::string& name, mode_t mode, caller who, inode** out) {
  inode& n = make_inode(kind::file, S_IFREG | (mode & 07777), who);
  n.bfd = ::openat(_staging_fd, staged_name('f', n.ino).c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC,
                   mode & 07777);
  struct stat st {};
  if (n.bfd < 0 || ::fstat(n.bfd, &st) != 0) {
    const int e = errno;
    maybe_free(n);
    return e;
  }
  n.staged = true;
  if (::fchown(n.bfd, who.uid, who.gid) != 0) {
    // Best effort: the backing file system may refuse; the mount shows `who` anyway.
  }
  n.bdev = st.st_dev;
  n.bino = st.st_ino;
  _by_backing[{st.st_dev, st.st_ino}] = n.ino;
  add_name(dir, name, n);
  *out = &n;
  return 0;
}

int filesystem::dir_for_new(uint64_t parent, const std::string& name, inode** out) {
  if (const int e = dir_for_change(parent, name, out); e != 0) return e;
  if ((*out)->ventries.contains(name)) return EEXIST;
  if (_enospc) return injected(ENOSPC);
  return 0;
}

int filesystem::mknod(uint64_t parent, const std::string& name, mode_t mode, dev_t rdev, caller who,
                      entry_reply* out) {
  std::lock_guard lock(_mu);
  inode* d = nullptr;
  if (const int e = dir_for_new(parent, name, &d); e != 0) return e;
  const mode_t type = mode & S_IFMT;
  inode* n = nullptr;
  if (type == S_IFREG || type == 0) {
    if (const int e = new_file(*d, name, mode, who, &n); e != 0) return e;
  } else if (type == S_IFIFO || type == S_IFCHR || type == S_IFBLK || type == S_IFSOCK) {
    n = &make_inode(kind::special, mode, who);
    n->rdev = rdev;
    add_name(*d, name, *n);
  } else {
    return EINVAL;
  }
  reply_entry(*n, out);
  return 0;
}

int filesystem::mkdir(uint64_t parent, const std::string& name, mode_t mode, caller who, entry_reply* out) {
  std::lock_guard lock(_mu);
  inode* d = nullptr;
  if (const int e = dir_for_new(parent, name, &d); e != 0) return e;
  inode& n = make_inode(kind::dir, S_IFDIR | (mode & 07777), who);
  const std::string staged = staged_name('d', n.ino);
  if (::mkdirat(_staging_fd, staged.c_str(), mode & 07777) != 0 ||
      (n.bdirfd = ::openat(_staging_fd, staged.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
    const int e = errno;
    maybe_free(n);
    return e;
  }
  if (::fchownat(_staging_fd, staged.c_str(), who.uid, who.gid, AT_SYMLINK_NOFOLLOW) != 0) {
    // Best effort, as for files.
  }
  n.staged = true;
  n.loaded = true;
  add_name(*d, name, n);
  reply_entry(n, out);
  return 0;
}

int filesystem::symlink(const std::string& target, uint64_t parent, const std::string& name, caller who,
                        entry_reply* out) {
  std::lock_guard lock(_mu);
  inode* d = nullptr;
  if (const int e = dir_for_new(parent, name, &d); e != 0) return e;
  inode& n = make_inode(kind::symlink, S_IFLNK | 0777, who);
  n.target = target;
  add_name(*d, name, n);
  reply_entry(n, out);
  return 0;
}

int filesystem::link(uint64_t ino, uint64_t new_parent, const std::string& new_name, entry_reply* out) {
  std::lock_guard lock(_mu);
  inode* n = find(ino);
  if (!n) return ENOENT;
  if (n->k == kind::dir) return EPERM;
  if (n->vlinks == 0) return ENOENT;  // as linkat(2) of an unlinked file
  inode* d = nullptr;
  if (const int e = dir_for_change(new_parent, new_name, &d); e != 0) return e;
  if (d->ventries.contains(new_name)) return EEXIST;
  add_name(*d, new_name, *n);
  reply_entry(*n, out);
  return 0;
}

int filesystem::unlink(uint64_t parent, const std::string& name) {
  std::lock_guard lock(_mu);
  inode* d = nullptr;
  if (const int e = dir_for_change(parent, name, &d); e != 0) return e == EINVAL ? ENOENT : e;
  auto it = d->ventries.find(name);
  if (it == d->ventries.end()) return ENOENT;
  if (must(it->second).k == kind::dir) return EISDIR;
  remove_name(*d, name);
  return 0;
}

int filesystem::rmdir(uint64_t parent, const std::string& name) {
  std::lock_guard lock(_mu);
  inode* d = nullptr;
  if (const int e = dir_for_change(parent, name, &d); e != 0) return e;
  auto it = d->ventries.find(name);
  if (it == d->ventries.end()) return ENOENT;
  inode& n = must(it->second);
  if (n.k != kind::dir) return ENOTDIR;
  if (const int e = load(n); e != 0) return e;
  if (!n.ventries.empty()) return ENOTEMPTY;
  remove_name(*d, name);
  return 0;
}

int filesystem::rename(uint64_t parent, const std::string& name, uint64_t new_parent, const std::string& new_name,
                       unsigned flags) {
  std::lock_guard lock(_mu);
  if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE | RENAME_EXCHANGE)) return EINVAL;
  if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) return EINVAL;
  inode* from = nullptr;
  inode* to = nullptr;
  if (const int e = dir_for_change(parent, name, &from); e != 0) return e;
  if (const int e = dir_for_change(new_parent, new_name, &to); e != 0) return e;
  auto src_it = from->ventries.find(name);
  if (src_it == from->ventries.end()) return ENOENT;
  inode& src = must(src_it->second);
  auto dst_it = to->ventries.find(new_name);
  inode* dst = dst_it == to->ventries.end() ? nullptr : &must(dst_it->second);

  // A directory may not move below itself.
  auto below = [&](const inode& dir, uint64_t at) {
    for (uint64_t p = at; p != 0; p = must(p).vparent)
      if (p == dir.ino) return true;
    return false;
  };
  if (src.k == kind::dir && below(src, to->ino)) return EINVAL;

  if (flags & RENAME_EXCHANGE) {
    if (!dst) return ENOENT;
    if (dst == &src) return 0;
    if (dst->k == kind::dir && below(*dst, from->ino)) return EINVAL;
    src_it->second = dst->ino;
    dst_it->second = src.ino;
    if (src.k == kind::dir) src.vparent = to->ino;
    if (dst->k == kind::dir) dst->vparent = from->ino;
    from->dirty = to->dirty = true;
    from->mtime = from->ctime = to->mtime = to->ctime = src.ctime = dst->ctime = now();
    return 0;
  }
  if (dst) {
    if (flags & RENAME_NOREPLACE) return EEXIST;
    if (dst == &src) return 0;  // two names of one file: rename(2) does nothing
    if (src.k == kind::dir) {
      if (dst->k != kind::dir) return ENOTDIR;
      if (const int e = load(*dst); e != 0) return e;
      if (!dst->ventries.empty()) return ENOTEMPTY;
    } else if (dst->k == kind::dir) {
      return EISDIR;
    }
  }
  from->ventries.erase(src_it);  // src keeps its link count: the name moves
  if (dst) remove_name(*to, new_name);
  to->ventries[new_name] = src.ino;
  if (src.k == kind::dir) src.vparent = to->ino;
  from->dirty = to->dirty = true;
  from->mtime = from->ctime = to->mtime = to->ctime = src.ctime = now();
  return 0;
}

// ---- file data --------------------------------------------------------------------------------------

int filesystem::create(uint64_t parent, const std::string& name, mode_t mode, int flags, caller who,
                       entry_reply* out) {
  std::lock_guard lock(_mu);
  inode* d = nullptr;
  if (const int e = dir_for_change(parent, name, &d); e != 0) return e;
  auto it = d->ventries.find(name);
  if (it != d->ventries.end()) {  // the kernel checks first; another process may have won the race
    if (flags & O_EXCL) return EEXIST;
    inode& n = must(it->second);
    if (n.k == kind::dir) return EISDIR;
    if (n.k != kind::file) return EACCES;
    n.opens++;
    reply_entry(n, out);
    return 0;
  }
  if (_enospc) return injected(ENOSPC);
  inode* n = nullptr;
  if (const int e = new_file(*d, name, mode, who, &n); e != 0) return e;
  n->opens++;
  reply_entry(*n, out);
  return 0;
}

int filesystem::open(uint64_t ino, int flags) {
  std::lock_guard lock(_mu);
  inode* n = find(ino);
  if (!n) return ENOENT;
  if (n->k == kind::dir) return EISDIR;
  if (n->k != kind::file) return EACCES;
  if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY && n->size > 0) {
    n->pending.truncate(0);
    n->backing_valid = 0;
    n->size = 0;
    n->mtime = n->ctime = now();
  }
  n->opens++;
  return 0;
}

void filesystem::release(uint64_t ino) {
  std::lock_guard lock(_mu);
  inode* n = find(ino);
  if (!n) return;
  SLUICE_ASSERT(n->opens > 0);
  n->opens--;
  maybe_free(*n);
}

void filesystem::read_backing(inode& n, uint64_t off, uint64_t len, char* out) {
  // Below backing_valid the backing file holds the bytes; above it they are zeros
  // (cut by a truncate since the last sync, or never written).
  uint64_t from_backing = off < n.backing_valid ? std::min(len, n.backing_valid - off) : 0;
  uint64_t done = 0;
  while (done < from_backing) {
    const ssize_t r = ::pread(n.bfd, out + done, from_backing - done, static_cast<off_t>(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;  // the backing file changed under us: read zeros
    done += static_cast<uint64_t>(r);
  }
  std::memset(out + done, 0, len - done);
}

int filesystem::read(uint64_t ino, uint64_t off, uint64_t size, std::string* out) {
  std::lock_guard lock(_mu);
  inode* n = find(ino);
  if (!n) return ENOENT;
  if (n->k == kind::dir) return EISDIR;
  if (n->k != kind::file) return EINVAL;
  out->clear();
  if (off >= n->size) return 0;
  const uint64_t len = std::min(size, n->size - off);
  if (off < n->backing_valid)
    if (const int e = ensure_bfd(*n); e != 0) return EIO;
  out->resize(len);
  n->pending.read(off, len, out->data(),
                  [&](uint64_t at, uint64_t l, char* dst) { read_backing(*n, at, l, dst); });
  return 0;
}

int filesystem::write(uint64_t ino, uint64_t off, std::string_view bytes) {
  std::lock_guard lock(_mu);
  inode* n = find(ino);
  if (!n) return ENOENT;
  if (n->k != kind::file) return EINVAL;
  if (_eio_write) return injected(EIO);
  if (_enospc) return injected(ENOSPC);
  n->pending.put(off, bytes);
  n->size = std::max<uint64_t>(n->size, off + bytes.size());
  n->mtime = n->ctime = now();
  _stats.writes++;
  _stats.bytes_written += bytes.size();
  return 0;
}

int filesystem::fallocate(uint64_t ino, int mode, uint64_t off, uint64_t len) {
  std::lock_guard lock(_mu);
  inode* n = find(ino);
  if (!n) return ENOENT;
  if (n->k != kind::file) return ENODEV;
  if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) return EOPNOTSUPP;
  if ((mode & FALLOC_FL_PUNCH_HOLE) && (mode & FALLOC_FL_ZERO_RANGE)) return EINVAL;
  if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE)) return EOPNOTSUPP;
  if (_eio_write) return injected(EIO);
  if (_enospc && !(mode & FALLOC_FL_PUNCH_HOLE)) return injected(ENOSPC);
  const uint64_t end = off + len;
  const bool keep_size = mode & FALLOC_FL_KEEP_SIZE;
  if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
    const uint64_t stop = keep_size ? std::min(end, n->size) : end;
    if (stop > off) n->pending.zero(off, stop - off);
  }
  // Allocation itself is not modelled (the backing file gets only the size):
  // only a growing size is visible.
  if (!keep_size) n->size = std::max(n->size, end);
  n->mtime = n->ctime = now();
  return 0;
}

int filesystem::fsync(uint64_t ino) {
  std::lock_guard lock(_mu);
  if (ino == control_ino) return 0;
  inode* n = find(ino);
  if (!n) return ENOENT;
  if (_eio_fsync) return injected(EIO);
  if (_enospc) return injected(ENOSPC);
  if (n->k == kind::file) return sync_file(*n);
  if (n->k == kind::dir) return sync_dir(*n);
  return 0;
}

int filesystem::list(uint64_t ino, std::vector<dir_entry>* out) {
  std::lock_guard lock(_mu);
  inode* d = find(ino);
  if (!d) return ENOENT;
  if (d->k != kind::dir) return ENOTDIR;
  if (const int e = load(*d); e != 0) return e;
  out->clear();
  for (const auto& [name, child] : d->ventries) out->push_back({name, child, must(child).mode & S_IFMT});
  return 0;
}

int filesystem::statfs(struct statvfs* out) {
  std::lock_guard lock(_mu);
  return ::fstatvfs(_root_fd, out) == 0 ? 0 : errno;
}

// ---- making things durable --------------------------------------------------------------------------

int filesystem::sync_file(inode& n) {
  SLUICE_ASSERT(n.k == kind::file);
  if (!n.data_pending()) return 0;
  if (ensure_bfd(n) != 0) return EIO;
  struct stat st {};
  if (::fstat(n.bfd, &st) != 0) return EIO;
  uint64_t cur = static_cast<uint64_t>(st.st_size);
  int err = 0;
  if (n.backing_valid < cur) {
    if (::ftruncate(n.bfd, static_cast<off_t>(n.backing_valid)) != 0) err = errno;
    else cur = n.backing_valid;
  }
  for (auto it = n.pending.extents().begin(); err == 0 && it != n.pending.extents().end(); ++it) {
    const uint64_t start = it->first;
    const extent_map::extent& e = it->second;
    if (!e.zero) {
      err = pwrite_all(n.bfd, e.data.data(), e.data.size(), start);
      cur = std::max(cur, e.end);
    } else if (start < cur) {  // past the backing file's end, zeros come with the size
      err = zero_backing(n.bfd, start, std::min(e.end, cur) - start);
    }
  }
  if (err == 0 && cur != n.size && ::ftruncate(n.bfd, static_cast<off_t>(n.size)) != 0) err = errno;
  if (err != 0) {
    // Part of it may have reached the backing file; the pending extents still
    // cover all of it, so reads are right and a later sync finishes the job.
    if (::fstat(n.bfd, &st) == 0) n.durable_size = static_cast<uint64_t>(st.st_size);
    n.backing_valid = std::min({n.backing_valid, n.durable_size, n.size});
    return EIO;
  }
  n.pending.clear();
  n.durable_size = n.backing_valid = n.size;
  _stats.file_syncs++;
  return 0;
}

int filesystem::durable_remove(inode& d, const std::string& name, inode& n) {
  switch (n.k) {
    case kind::file: {
      if (ensure_bfd(n) != 0) return EIO;
      struct stat st {};
      if (::fstat(n.bfd, &st) != 0) return EIO;
      if (st.st_nlink == 1 && n.vlinks > 0) {
        // Its last durable name, but it lives on under another volatile one:
        // keep the backing inode linkable until that name becomes durable.
        SLUICE_ASSERT(!n.staged);
        if (::renameat(d.bdirfd, name.c_str(), _staging_fd, staged_name('f', n.ino).c_str()) != 0) return EIO;
        n.staged = true;
      } else if (::unlinkat(d.bdirfd, name.c_str(), 0) != 0) {
        return EIO;
      }
      if (n.home_dir == d.ino && n.home_name == name) n.home_dir = 0;  // bfd is open
      break;
    }
    case kind::dir:
      SLUICE_ASSERT(n.dparent == d.ino && n.dname == name);
      if (::renameat(d.bdirfd, name.c_str(), _staging_fd, staged_name('d', n.ino).c_str()) != 0) return EIO;
      n.staged = true;
      n.dparent = 0;
      break;
    case kind::symlink:
    case kind::special:
      if (::unlinkat(d.bdirfd, name.c_str(), 0) != 0) return EIO;
      break;
  }
  d.dentries.erase(name);
  SLUICE_ASSERT(n.dlinks > 0);
  n.dlinks--;
  maybe_free(n);
  return 0;
}

int filesystem::durable_add(inode& d, const std::string& name, inode& n) {
  switch (n.k) {
    case kind::file:
      if (ensure_bfd(n) != 0) return EIO;
      if (::linkat(AT_FDCWD, proc_fd(n.bfd).c_str(), d.bdirfd, name.c_str(), AT_SYMLINK_FOLLOW) != 0) return EIO;
      if (n.staged) {
        ::unlinkat(_staging_fd, staged_name('f', n.ino).c_str(), 0);
        n.staged = false;
      }
      if (n.home_dir == 0) {
        n.home_dir = d.ino;
        n.home_name = name;
      }
      break;
    case kind::dir:
      if (n.staged) {
        if (::renameat(_staging_fd, staged_name('d', n.ino).c_str(), d.bdirfd, name.c_str()) != 0) return EIO;
        n.staged = false;
      } else if (n.dparent != 0) {
        // Durable elsewhere, and moved here: the backing directory moves, so
        // its old durable name goes now too (a rename is one step on disk).
        inode& p = must(n.dparent);
        if (::renameat(p.bdirfd, n.dname.c_str(), d.bdirfd, name.c_str()) != 0) return EIO;
        p.dentries.erase(n.dname);
        n.dlinks--;
      } else {
        return EIO;  // no backing directory: orphaned by a drop
      }
      n.dparent = d.ino;
      n.dname = name;
      break;
    case kind::symlink:
      if (::symlinkat(n.target.c_str(), d.bdirfd, name.c_str()) != 0) return EIO;
      if (::fchownat(d.bdirfd, name.c_str(), n.uid, n.gid, AT_SYMLINK_NOFOLLOW) != 0) {
        // Best effort.
      }
      break;
    case kind::special:
      if (::mknodat(d.bdirfd, name.c_str(), n.mode, n.rdev) != 0) return EIO;
      break;
  }
  d.dentries[name] = n.ino;
  n.dlinks++;
  return 0;
}

int filesystem::sync_dir(inode& d) {
  SLUICE_ASSERT(d.k == kind::dir);
  if (!d.loaded || !d.dirty || d.bdirfd < 0) return 0;
  // Names that go or point elsewhere first, then the new ones: a file renamed
  // within the directory is staged by the first step and linked by the second.
  std::vector<std::pair<std::string, uint64_t>> gone;
  for (const auto& [name, ino] : d.dentries) {
    auto it = d.ventries.find(name);
    if (it == d.ventries.end() || it->second != ino) gone.emplace_back(name, ino);
  }
  for (const auto& [name, ino] : gone)
    if (const int e = durable_remove(d, name, must(ino)); e != 0) return e;
  std::vector<std::pair<std::string, uint64_t>> added;
  for (const auto& [name, ino] : d.ventries)
    if (!d.dentries.contains(name)) added.emplace_back(name, ino);
  for (const auto& [name, ino] : added)
    if (const int e = durable_add(d, name, must(ino)); e != 0) return e;
  d.dirty = false;
  _stats.dir_syncs++;
  return 0;
}

// ---- control ----------------------------------------------------------------------------------------

void filesystem::wipe_staging() {
  const std::string dir = _opts.backing + "/" + staging_name;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::error_code ignored;
    std::filesystem::remove_all(e.path(), ignored);
  }
}

namespace {
// Names that differ between a directory's volatile and durable maps.
uint64_t entries_differing(const std::map<std::string, uint64_t>& v, const std::map<std::string, uint64_t>& d) {
  uint64_t n = 0;
  for (const auto& [name, ino] : v) {
    auto it = d.find(name);
    if (it == d.end() || it->second != ino) n++;
  }
  for (const auto& [name, ino] : d)
    if (!v.contains(name)) n++;
  return n;
}
}  // namespace

void filesystem::drop_locked(std::vector<uint64_t>* inval) {
  uint64_t bytes = 0, files = 0, entries = 0;
  for (auto& [ino, n] : _inodes) {
    if (n->k == kind::file && n->data_pending()) {
      bytes += n->pending.data_bytes() + n->pending.zero_bytes();
      files++;
    }
    if (n->k == kind::dir && n->dirty) entries += entries_differing(n->ventries, n->dentries);
  }

  // The directories a power cut leaves reachable: from the root through durable names.
  std::set<uint64_t> alive{root_ino};
  std::vector<uint64_t> todo{root_ino};
  while (!todo.empty()) {
    inode& d = must(todo.back());
    todo.pop_back();
    for (const auto& [name, child] : d.dentries) {
      inode& c = must(child);
      if (c.k == kind::dir && alive.insert(c.ino).second) todo.push_back(c.ino);
    }
  }
  // Files the kernel still holds whose only way in is a directory about to
  // go: open them now, so their handles keep reading what was durable.
  for (auto& [ino, n] : _inodes)
    if (n->k == kind::file && n->bfd < 0 && (n->nlookup > 0 || n->opens > 0) && !alive.contains(n->home_dir))
      ensure_bfd(*n);

  for (auto& [ino, n] : _inodes) {
    if (ino != root_ino) n->vlinks = n->dlinks = 0;
    n->vparent = 0;
    if (n->k == kind::dir && !alive.contains(ino)) {  // orphaned: empty, no backing directory
      n->ventries.clear();
      n->dentries.clear();
      n->dparent = 0;
      n->dname.clear();
      if (n->bdirfd >= 0) ::close(n->bdirfd);
      n->bdirfd = -1;
      n->loaded = true;
    }
    n->staged = false;  // the staging directory is emptied below
    n->dirty = false;
    if (n->k == kind::file) {
      n->pending.clear();
      struct stat st {};
      if (n->bfd >= 0 && ::fstat(n->bfd, &st) == 0) n->durable_size = static_cast<uint64_t>(st.st_size);
      n->size = n->backing_valid = n->durable_size;
      if (!alive.contains(n->home_dir)) n->home_dir = 0;
    }
  }
  for (uint64_t d_ino : alive) {
    inode& d = must(d_ino);
    d.ventries = d.dentries;
    for (const auto& [name, child] : d.dentries) {
      inode& c = must(child);
      c.vlinks++;
      c.dlinks++;
      if (c.k == kind::dir) c.vparent = d_ino;
      if (c.k == kind::file && c.home_dir == 0 && c.bfd < 0) {
        c.home_dir = d_ino;
        c.home_name = name;
      }
    }
  }
  wipe_staging();

  std::vector<uint64_t> all;
  for (auto& [ino, n] : _inodes) all.push_back(ino);
  for (uint64_t ino : all) {
    if (inode* n = find(ino)) maybe_free(*n);
  }
  for (auto& [ino, n] : _inodes) inval->push_back(ino);

  _stats.drops++;
  _stats.last_drop_bytes = bytes;
  _stats.last_drop_files = files;
  _stats.last_drop_entries = entries;
}

void filesystem::drop(std::vector<uint64_t>* inval) {
  std::lock_guard lock(_mu);
  drop_locked(inval);
}

int filesystem::sync_all_locked() {
  int err = 0;
  std::vector<uint64_t> all;
  for (auto& [ino, n] : _inodes) all.push_back(ino);
  for (uint64_t ino : all) {
    inode* n = find(ino);
    if (n && n->k == kind::file && (n->vlinks > 0 || n->opens > 0))
      if (const int e = sync_file(*n); e != 0) err = e;
  }
  for (uint64_t ino : all) {
    inode* n = find(ino);
    if (n && n->k == kind::dir)
      if (const int e = sync_dir(*n); e != 0) err = e;
  }
  return err;
}

int filesystem::sync_all() {
  std::lock_guard lock(_mu);
  return sync_all_locked();
}

std::string filesystem::path_of(const inode& n) const {
  auto name_in = [&](uint64_t dir, uint64_t child) -> std::string {
    auto it = _inodes.find(dir);
    if (it == _inodes.end()) return "?";
    for (const auto& [name, ino] : it->second->ventries)
      if (ino == child) return name;
    return "?";
  };
  if (n.ino == root_ino) return "";
  uint64_t dir = n.vparent;
  if (n.k != kind::dir) {  // any one of its names
    dir = 0;
    for (const auto& [ino, d] : _inodes)
      if (d->k == kind::dir && d->vlinks > 0)
        for (const auto& [name, child] : d->ventries)
          if (child == n.ino && dir == 0) dir = ino;
    if (dir == 0) return "(no name)";
  }
  std::string path = name_in(dir, n.ino);
  for (int depth = 0; dir != root_ino && depth < 64; depth++) {
    const auto it = _inodes.find(dir);
    if (it == _inodes.end() || it->second->vparent == 0) return "(unlinked)/" + path;
    path = name_in(it->second->vparent, dir) + "/" + path;
    dir = it->second->vparent;
  }
  return path;
}

std::string filesystem::stats_json() {
  std::lock_guard lock(_mu);
  constexpr size_t list_max = 64;
  uint64_t bytes = 0, zeros = 0, files = 0, dirs = 0, entries = 0;
  std::vector<std::string> file_list, entry_list;
  for (auto& [ino, n] : _inodes) {
    if (n->k == kind::file && n->data_pending()) {
      bytes += n->pending.data_bytes();
      zeros += n->pending.zero_bytes();
      files++;
      if (file_list.size() < list_max) file_list.push_back(path_of(*n));
    }
    if (n->k == kind::dir && n->dirty) {
      const uint64_t e = entries_differing(n->ventries, n->dentries);
      entries += e;
      dirs += e > 0;
      if (e == 0 || entry_list.size() >= list_max) continue;
      std::string dir = path_of(*n);
      if (!dir.empty()) dir += "/";
      for (const auto& [name, child] : n->ventries) {
        auto it = n->dentries.find(name);
        if ((it == n->dentries.end() || it->second != child) && entry_list.size() < list_max)
          entry_list.push_back("+" + dir + name);
      }
      for (const auto& [name, child] : n->dentries)
        if (!n->ventries.contains(name) && entry_list.size() < list_max) entry_list.push_back("-" + dir + name);
    }
  }
  std::string out = "{";
  json_field(&out, "bytes_pending", bytes);
  json_field(&out, "zero_bytes_pending", zeros);
  json_field(&out, "files_pending", files);
  json_field(&out, "dirs_pending", dirs);
  json_field(&out, "entries_pending", entries);
  json_field(&out, "drops", _stats.drops);
  json_field(&out, "file_syncs", _stats.file_syncs);
  json_field(&out, "dir_syncs", _stats.dir_syncs);
  json_field(&out, "writes", _stats.writes);
  json_field(&out, "bytes_written", _stats.bytes_written);
  json_field(&out, "injected_errors", _stats.injected_errors);
  json_field(&out, "inodes", _inodes.size());
  json_flag(&out, "eio_fsync", _eio_fsync);
  json_flag(&out, "eio_write", _eio_write);
  json_flag(&out, "enospc", _enospc);
  json_list(&out, "pending_files", std::move(file_list), files);
  json_list(&out, "pending_entries", std::move(entry_list), entries);
  out += "\"last_drop\": {";
  json_field(&out, "bytes", _stats.last_drop_bytes);
  json_field(&out, "files", _stats.last_drop_files);
  json_field(&out, "entries", _stats.last_drop_entries, true);
  out += "}}\n";
  return out;
}

int filesystem::control(std::string_view commands, std::vector<uint64_t>* inval) {
  std::lock_guard lock(_mu);
  while (!commands.empty()) {
    const size_t nl = commands.find('\n');
    std::string_view line = commands.substr(0, nl);
    commands = nl == std::string_view::npos ? std::string_view() : commands.substr(nl + 1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    const size_t sp = line.find(' ');
    const std::string_view verb = line.substr(0, sp);
    std::string_view arg = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
    if (verb == "drop" && arg.empty()) {
      drop_locked(inval);
    } else if (verb == "sync" && arg.empty()) {
      if (const int e = sync_all_locked(); e != 0) return e;
    } else if (verb == "clear-faults" && arg.empty()) {
      _eio_fsync = _eio_write = _enospc = false;
    } else if ((verb == "eio-fsync" || verb == "eio-write" || verb == "enospc") && (arg == "on" || arg == "off")) {
      bool& flag = verb == "eio-fsync" ? _eio_fsync : verb == "eio-write" ? _eio_write : _enospc;
      flag = arg == "on";
    } else {
      return EINVAL;
    }
  }
  return 0;
}

void filesystem::unmount() {
  std::lock_guard lock(_mu);
  if (_opts.sync_on_unmount) sync_all_locked();
  wipe_staging();
  // The backing directory is left holding exactly the durable state.
  if (::unlinkat(_root_fd, staging_name, AT_REMOVEDIR) == 0) {
    ::close(_staging_fd);
    _staging_fd = -1;
  }
}

}  // namespace sluice::faultfs
