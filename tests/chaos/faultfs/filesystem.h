// The power-loss model behind sluice-faultfs (docs/RELIABILITY.md, "The
// power-loss filesystem"): a volatile state that processes see and a durable
// state that survives a drop.
//
// Durable state is the backing directory itself: a file's bytes reach its
// backing file at an fsync/fdatasync of that file; a directory's entries
// reach the backing directory at an fsync of that directory. Until then the
// bytes sit in an extent_map and the entries in the directory's volatile
// map. drop() throws away everything volatile, as a power cut would.
//
// Inodes are this filesystem's own (numbers never reused). A regular file's
// durable bytes live in one backing inode, reached through an open fd or one
// of its durable names. A backing inode that has no durable name yet (a new
// file or directory, or one whose last durable name was removed while it
// still has a volatile one) is kept under BACKING/.faultfs-staging, which is
// emptied at start-up, at every drop and at unmount: nothing there is
// reachable after a power cut.
//
// Thread-safety: every public member function takes the one mutex; callers
// may come from any thread.
#pragma once

#include "extent_map.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::faultfs {

inline constexpr uint64_t root_ino = 1;     // FUSE_ROOT_ID
inline constexpr uint64_t control_ino = 2;  // the control file
inline constexpr const char* control_name = ".faultfs-control";
inline constexpr const char* staging_name = ".faultfs-staging";

// setattr's to_set bits: FUSE_SET_ATTR_* of fuse_lowlevel.h (faultfs_main.cc
// checks they agree), so this model does not need the FUSE headers.
inline constexpr int set_attr_mode = 1 << 0, set_attr_uid = 1 << 1, set_attr_gid = 1 << 2, set_attr_size = 1 << 3,
                     set_attr_atime = 1 << 4, set_attr_mtime = 1 << 5, set_attr_atime_now = 1 << 7,
                     set_attr_mtime_now = 1 << 8;

struct entry_reply {
  uint64_t ino = 0;
  struct stat attr {};
};

struct dir_entry {
  std::string name;
  uint64_t ino = 0;
  mode_t type = 0;  // S_IFMT bits
};

struct caller {
  uid_t uid = 0;
  gid_t gid = 0;
};

// Counters read by the control file (stats_json).
struct stats {
  uint64_t drops = 0;
  uint64_t file_syncs = 0;
  uint64_t dir_syncs = 0;
  uint64_t writes = 0;
  uint64_t bytes_written = 0;
  uint64_t injected_errors = 0;
  // What the last drop threw away.
  uint64_t last_drop_bytes = 0;
  uint64_t last_drop_files = 0;
  uint64_t last_drop_entries = 0;
};

class filesystem {
 public:
  struct options {
    std::string backing;           // the backing directory
    bool sync_on_unmount = false;  // unmount makes everything durable (default: unmount is a power cut)
  };

  // Opens the backing directory and empties its staging directory. On
  // failure returns nullptr and sets *error.
  static std::unique_ptr<filesystem> open(const options& opts, std::string* error);
  ~filesystem();
  filesystem(const filesystem&) = delete;
  filesystem& operator=(const filesystem&) = delete;

  // FUSE operations. Each returns 0 or a positive errno. Those that hand the
  // kernel a reference (lookup, mknod, mkdir, create, symlink, link) count it
  // until forget().
  int lookup(uint64_t parent, const std::string& name, entry_reply* out);
  void forget(uint64_t ino, uint64_t n);
  int getattr(uint64_t ino, struct stat* out);
  // to_set: set_attr_* bits.
  int setattr(uint64_t ino, const struct stat& in, int to_set, struct stat* out);
  int readlink(uint64_t ino, std::string* out);
  int mknod(uint64_t parent, const std::string& name, mode_t mode, dev_t rdev, caller who, entry_reply* out);
  int mkdir(uint64_t parent, const std::string& name, mode_t mode, caller who, entry_reply* out);
  int symlink(const std::string& target, uint64_t parent, const std::string& name, caller who, entry_reply* out);
  int link(uint64_t ino, uint64_t new_parent, const std::string& new_name, entry_reply* out);
  int unlink(uint64_t parent, const std::string& name);
  int rmdir(uint64_t parent, const std::string& name);
  int rename(uint64_t parent, const std::string& name, uint64_t new_parent, const std::string& new_name,
             unsigned flags);
  // create and open count an open handle until release().
  int create(uint64_t parent, const std::string& name, mode_t mode, int flags, caller who, entry_reply* out);
  int open(uint64_t ino, int flags);
  void release(uint64_t ino);
  int read(uint64_t ino, uint64_t off, uint64_t size, std::string* out);
  int write(uint64_t ino, uint64_t off, std::string_view bytes);
  int fallocate(uint64_t ino, int mode, uint64_t off, uint64_t len);
  // A file: its bytes and size become durable. A directory: its entries.
  int fsync(uint64_t ino);
  int list(uint64_t ino, std::vector<dir_entry>* out);
  int statfs(struct statvfs* out);

  // The control protocol: one command per line (see docs/RELIABILITY.md).
  // Returns 0 or EINVAL (an unknown command; the ones before it ran). The
  // inodes whose kernel caches must be invalidated are appended to *inval.
  int control(std::string_view commands, std::vector<uint64_t>* inval);
  // Discards everything not durable; appends every known inode to *inval.
  void drop(std::vector<uint64_t>* inval);
  // Makes everything durable, as if every file and directory were fsynced.
  int sync_all();
  std::string stats_json();
  // At unmount: sync_all() with sync_on_unmount, then remove the staging directory.
  void unmount();

 private:
  enum class kind : uint8_t { file, dir, symlink, special };

  struct inode {
    uint64_t ino = 0;
    kind k = kind::file;
    mode_t mode = 0;  // with the S_IFMT bits
    uid_t uid = 0;
    gid_t gid = 0;
    dev_t rdev = 0;
    struct timespec atime {}, mtime {}, ctime {};
    uint64_t nlookup = 0;  // kernel references
    uint32_t opens = 0;    // open handles
    uint32_t vlinks = 0;   // names in the volatile namespace
    uint32_t dlinks = 0;   // names in the durable maps of loaded directories
    bool staged = false;   // its backing inode has a name under the staging directory (or is one)

    // Regular files.
    int bfd = -1;                 // the backing inode, O_RDWR; opened on demand
    uint64_t home_dir = 0;        // with bfd < 0: a durable name to open it by
    std::string home_name;
    dev_t bdev = 0;               // the backing inode's identity, once known
    ino_t bino = 0;
    uint64_t size = 0;            // what processes see
    uint64_t durable_size = 0;    // the backing file's size
    uint64_t backing_valid = 0;   // bytes below this come from the backing file, zeros above (until size)
    extent_map pending;           // written since the last sync

    // Directories.
    int bdirfd = -1;  // O_PATH of the backing directory (in place or staged); -1 after a drop orphaned it
    bool loaded = false;
    bool dirty = false;  // ventries may differ from dentries
    std::map<std::string, uint64_t> ventries, dentries;
    uint64_t vparent = 0;  // volatile parent (0: none)
    uint64_t dparent = 0;  // durable parent (0: none, staged or orphaned)
    std::string dname;

    // Symbolic links.
    std::string target;

    bool data_pending() const {
      return !pending.empty() || size != durable_size || backing_valid != durable_size;
    }
  };

  explicit filesystem(const options& opts);

  inode* find(uint64_t ino);
  inode& must(uint64_t ino);
  int dir_for_change(uint64_t parent, const std::string& name, inode** out);
  // dir_for_change, for a name that must not exist yet and takes space (enospc fails it).
  int dir_for_new(uint64_t parent, const std::string& name, inode** out);
  int load(inode& dir);
  inode& make_inode(kind k, mode_t mode, caller who);
  int new_file(inode& dir, const std::string& name, mode_t mode, caller who, inode** out);
  void fill_attr(const inode& n, struct stat* out) const;
  void reply_entry(inode& n, entry_reply* out);
  void add_name(inode& dir, const std::string& name, inode& n);
  void remove_name(inode& dir, const std::string& name);
  void maybe_free(inode& n);
  int ensure_bfd(inode& n);
  void read_backing(inode& n, uint64_t off, uint64_t len, char* out);
  int sync_file(inode& n);
  int sync_dir(inode& d);
  int durable_remove(inode& d, const std::string& name, inode& n);
  int durable_add(inode& d, const std::string& name, inode& n);
  int injected(int err);
  // A volatile path of n, relative to the mount, for the stats.
  std::string path_of(const inode& n) const;
  void drop_locked(std::vector<uint64_t>* inval);
  int sync_all_locked();
  void wipe_staging();

  std::mutex _mu;
  options _opts;
  int _root_fd = -1;     // O_PATH of the backing directory
  int _staging_fd = -1;  // O_PATH of BACKING/.faultfs-staging
  uint64_t _next_ino = 3;
  uint64_t _tmp_seq = 0;
  std::unordered_map<uint64_t, std::unique_ptr<inode>> _inodes;
  std::map<std::pair<dev_t, ino_t>, uint64_t> _by_backing;  // backing file -> inode, for hard links
  stats _stats;
  bool _eio_fsync = false;
  bool _eio_write = false;
  bool _enospc = false;
};

}  // namespace sluice::faultfs
