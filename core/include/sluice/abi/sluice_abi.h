/*
 * Sluice plugin ABI (pure C).
 *
 * A plugin is a shared object that exports exactly one symbol,
 * SLUICE_PLUGIN_ENTRY (sluice_plugin_entry_v1), returning a pointer to a
 * static, constant descriptor. The host reads the descriptor as data and
 * checks it (struct size, ABI major, build signature, name, dependencies)
 * before it calls any hook; a plugin that fails a check is rejected with a
 * message naming its file.
 *
 * Everything a plugin may do at run time goes through the host function
 * table (sluice_host_api) handed to on_configure: asynchronous I/O on the
 * calling shard's io_uring ring, a monotonic clock, typed service calls to
 * any shard, ref-counted buffers, logging and metrics. Because a plugin never
 * talks to the kernel or to another shard except through this table, the
 * host may substitute a simulated one (seeded network, disk and clock).
 *
 * Conventions (after Envoy's dynamic-module ABI):
 *   - on_*        hooks implemented by the plugin, called by the host;
 *   - host API    function pointers implemented by the host;
 *   - every pointer parameter documents OWNERSHIP;
 *   - structs that may grow start with struct_size and end with reserved
 *     slots; a reader checks struct_size before touching newer fields.
 *
 * Threading: hooks marked "shard" run on a shard thread and must not block;
 * hooks marked "main" run on the start-up thread before shards exist (or
 * after they stopped) and may block.
 *
 * No C++ exception may cross this boundary; every hook returns a status.
 */
#ifndef SLUICE_ABI_H
#define SLUICE_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_ABI_MAJOR 1u
#define SLUICE_ABI_MINOR 3u  /* 1: mkdir, unlink, rename, statx opcodes; 2: sendmsg, node_id;
                                3: admin routes, metrics sources, host introspection, log levels */

/* The one exported symbol; the ABI major is part of its name so that a
 * plugin built for another major is not even found. */
#define SLUICE_PLUGIN_ENTRY sluice_plugin_entry_v1
#define SLUICE_PLUGIN_ENTRY_NAME "sluice_plugin_entry_v1"

#if defined(__GNUC__)
#define SLUICE_EXPORT __attribute__((visibility("default")))
#else
#define SLUICE_EXPORT
#endif

/* ---- build signature ----------------------------------------------------
 * Encodes what makes two builds binary compatible beyond the ABI version:
 * pointer size, byte order and sanitizer instrumentation (an ASan plugin
 * cannot run in a host without the ASan runtime). No C++ type crosses the
 * ABI, so the C++ standard library's ABI is deliberately not part of it: a
 * plugin may be plain C. Computed by the preprocessor on both sides and
 * compared as a string. */
#define SLUICE_ABI_MAJOR_STR "1"
#define SLUICE_STR2_(x) #x
#define SLUICE_STR_(x) SLUICE_STR2_(x)
#if defined(__SANITIZE_ADDRESS__)
#define SLUICE_SIG_ASAN_ "asan"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLUICE_SIG_ASAN_ "asan"
#endif
#endif
#ifndef SLUICE_SIG_ASAN_
#define SLUICE_SIG_ASAN_ "noasan"
#endif
#define SLUICE_BUILD_SIGNATURE                                                  \
  "sluice-abi" SLUICE_ABI_MAJOR_STR ";ptr" SLUICE_STR_(__SIZEOF_POINTER__) ";order" \
  SLUICE_STR_(__BYTE_ORDER__) ";" SLUICE_SIG_ASAN_

/* ---- status codes -------------------------------------------------------
 * Hooks return 0 on success or a negative value. I/O completions carry the
 * kernel's result: >= 0 on success, -errno on failure. */
enum {
  SLUICE_OK = 0,
  SLUICE_ERR_CONFIG = -1000,     /* bad plugin configuration */
  SLUICE_ERR_START = -1001,      /* could not start (port in use, ...) */
  SLUICE_ERR_NO_SERVICE = -1002, /* unknown service name or id */
  SLUICE_ERR_QUEUE_FULL = -1003, /* channel full: retry later */
  SLUICE_ERR_INVALID = -1004,    /* bad argument */
  SLUICE_ERR_STOPPING = -1005    /* the broker is shutting down */
};

/* ---- opaque host objects ------------------------------------------------ */
typedef struct sluice_host sluice_host;           /* one per process */
typedef struct sluice_plugin_ctx sluice_plugin_ctx; /* one per loaded plugin */
typedef struct sluice_responder sluice_responder; /* one per pending request */
typedef struct sluice_metric sluice_metric;       /* a registered metric */

/* ---- buffers ------------------------------------------------------------
 * A ref-counted byte buffer. The hot data path passes these between shards
 * and plugins instead of copying bytes. The count is atomic: a buffer may
 * be released on a shard other than the one that allocated it. */
typedef struct sluice_buf {
  uint8_t* data;      /* start of the bytes */
  uint64_t size;      /* bytes in use */
  uint64_t capacity;  /* bytes allocated at data */
  uint32_t alignment; /* alignment of data (4096 for O_DIRECT buffers) */
  uint32_t reserved0;
  /* host-private bookkeeping follows; never copy a sluice_buf by value */
} sluice_buf;

/* ---- asynchronous I/O ---------------------------------------------------
 * The caller owns a sluice_completion for as long as the operation is in
 * flight (typically it lives in a coroutine frame), so the host allocates
 * nothing per operation. The host calls on_complete exactly once, on the
 * shard that submitted the operation. */
typedef struct sluice_completion sluice_completion;
struct sluice_completion {
  /* result: >= 0 success (bytes, fd, ...), -errno failure, -ECANCELED when
   * cancelled, -ETIME when a timeout fired. */
  void (*on_complete)(sluice_completion* self, int32_t result);
  /* OWNERSHIP: the host's while the operation is in flight (it keeps a
   * timeout's timespec or a wait-list link here); the caller never reads it. */
  uint64_t host_scratch[2];
};

typedef enum sluice_io_opcode {
  SLUICE_IO_NOP = 0,
  SLUICE_IO_ACCEPT = 1,    /* fd; addr/addrlen optional (output) */
  SLUICE_IO_CONNECT = 2,   /* fd, addr, len (the address length) */
  SLUICE_IO_RECV = 3,      /* fd, buf, len, flags */
  SLUICE_IO_SEND = 4,      /* fd, buf, len, flags (MSG_NOSIGNAL added) */
  SLUICE_IO_READ = 5,      /* fd, buf, len, offset */
  SLUICE_IO_WRITE = 6,     /* fd, buf, len, offset */
  SLUICE_IO_FSYNC = 7,     /* fd */
  SLUICE_IO_FDATASYNC = 8, /* fd */
  SLUICE_IO_TIMEOUT = 9,   /* timeout_ns: completes with -ETIME */
  SLUICE_IO_CLOSE = 10,    /* fd */
  SLUICE_IO_OPENAT = 11,   /* path (buf), flags, mode (len); result is fd */
  SLUICE_IO_FALLOCATE = 12, /* fd, offset, len, mode in flags */
  SLUICE_IO_MKDIRAT = 13,   /* path (buf), mode (len) */
  SLUICE_IO_UNLINKAT = 14,  /* path (buf), flags (AT_REMOVEDIR for a directory) */
  SLUICE_IO_RENAMEAT = 15,  /* old path (buf), new path (addr) */
  SLUICE_IO_STATX = 16,     /* path (buf), flags, mask (len), struct statx* (addr) */
  SLUICE_IO_SENDMSG = 17    /* fd, struct msghdr* (addr), flags (MSG_NOSIGNAL added); ABI 1.2 */
} sluice_io_opcode;
#define SLUICE_IO_OPCODE_MAX SLUICE_IO_SENDMSG

typedef struct sluice_io_op {
  uint32_t opcode; /* sluice_io_opcode */
  int32_t fd;
  void* buf;        /* OWNERSHIP: caller's, valid until completion */
  uint64_t len;
  uint64_t offset;
  uint64_t timeout_ns;
  void* addr;       /* struct sockaddr*, caller's until completion */
  uint32_t* addrlen;/* caller's until completion */
  uint32_t flags;
  uint32_t reserved0;
  uint64_t reserved[2];
} sluice_io_op;

/* ---- services -----------------------------------------------------------
 * A service is a named endpoint a plugin registers during on_configure and
 * serves on every shard. A request carries a message type chosen by the
 * service, an optional small byte payload (serialized protobuf on the
 * control plane) and an optional buffer handle (record data on the hot
 * path). The handler answers, now or later, through the responder. */
typedef struct sluice_message {
  uint32_t type;            /* service-defined message type id */
  uint32_t reserved0;
  const uint8_t* bytes;     /* OWNERSHIP: borrowed for the call only */
  uint64_t bytes_len;
  sluice_buf* buf;          /* OWNERSHIP: borrowed; buf_ref it to keep it */
} sluice_message;

typedef struct sluice_reply sluice_reply;
struct sluice_reply {
  /* Called on the requesting shard with the handler's status. msg is
   * borrowed for the duration of the call. */
  void (*on_reply)(sluice_reply* self, int32_t status, const sluice_message* msg);
  void* reserved;
};

/* Runs on the target shard. OWNERSHIP: req is borrowed for the call; the
 * handler must eventually pass responder to host->respond exactly once. */
typedef void (*sluice_service_handler)(void* service_user, uint32_t shard,
                                       const sluice_message* req,
                                       sluice_responder* responder);

/* ---- metrics ------------------------------------------------------------ */
typedef enum sluice_metric_kind {
  SLUICE_METRIC_COUNTER = 0,
  SLUICE_METRIC_GAUGE = 1,
  SLUICE_METRIC_HISTOGRAM = 2 /* log2-bucketed, values are unsigned */
} sluice_metric_kind;

typedef struct sluice_metric_view {
  const char* plugin;  /* registering plugin's name */
  const char* name;    /* e.g. "echo_lines_total" */
  const char* help;
  uint32_t kind;       /* sluice_metric_kind */
  uint32_t bucket_count; /* histograms: bucket 0 counts 0, bucket i counts [2^(i-1), 2^i),
                          * the last bucket also everything larger (not cumulative) */
  int64_t value;       /* counter or gauge value; histogram: count */
  int64_t sum;         /* histogram: sum of recorded values */
  const uint64_t* buckets; /* histograms: non-cumulative counts */
} sluice_metric_view;

/* ---- logging ------------------------------------------------------------ */
typedef enum sluice_log_level {
  SLUICE_LOG_TRACE = 0,
  SLUICE_LOG_DEBUG = 1,
  SLUICE_LOG_INFO = 2,
  SLUICE_LOG_WARN = 3,
  SLUICE_LOG_ERROR = 4,
  SLUICE_LOG_OFF = 5 /* log_level_set only (ABI 1.3) */
} sluice_log_level;

/* ---- admin routes and introspection (ABI 1.3) ---------------------------
 * A plugin adds admin HTTP routes by naming one of its services: the plugin
 * that serves HTTP (admin_http) matches a request's method and path against
 * every registered route and calls the route's service, on the shard that
 * received the request, with message type message_type and bytes holding a
 * sluice.admin.HttpRequest (proto/sluice/admin.proto); the reply's bytes
 * hold a sluice.admin.HttpResponse. A path is absolute and made of literal
 * segments and "{name}" segments, each matching one non-empty segment:
 * "/v1/topics/{topic}". The SDK's sluice/sdk/admin.h wraps all of this. */
typedef struct sluice_route_view {
  const char* plugin;  /* registering plugin's name */
  const char* method;  /* "GET", "PUT", "POST", "DELETE" */
  const char* path;    /* pattern as registered */
  int32_t service_id;
  uint32_t message_type;
} sluice_route_view;

/* A metrics source: a service asked at scrape time for Prometheus text
 * (families whose label sets change at run time: per topic, per group).
 * Request: message_type, no bytes; reply bytes: exposition text. */
typedef struct sluice_metrics_source_view {
  const char* plugin;
  int32_t service_id;
  uint32_t message_type;
} sluice_metrics_source_view;

typedef struct sluice_plugin_view {
  const char* name;
  const char* version;
  const char* description;
  const char* file;                /* the shared object's path */
  uint32_t abi_major;              /* as the plugin declared them */
  uint32_t abi_minor;
  const char* const* dependencies; /* NULL-terminated */
  const char* const* services;     /* NULL-terminated names it registered */
} sluice_plugin_view;

/* ---- host function table ------------------------------------------------
 * OWNERSHIP: the table and the host outlive every plugin. */
typedef struct sluice_host_api {
  uint32_t struct_size;
  uint32_t abi_minor;

  /* -- identity and time (any thread) -- */
  uint32_t (*shard_count)(sluice_host* host);
  /* The calling shard's id, or UINT32_MAX on a non-shard thread. */
  uint32_t (*current_shard)(sluice_host* host);
  /* Monotonic nanoseconds; the simulator substitutes virtual time. */
  uint64_t (*now_ns)(sluice_host* host);
  /* The node's data directory (absolute), a plugin keeps its files below it. */
  const char* (*data_dir)(sluice_host* host);

  /* -- logging (any thread); the logger is named after the plugin -- */
  void (*log)(sluice_plugin_ctx* ctx, uint32_t level, const char* msg, size_t len);
  /* Record a one-line error message for the failing hook to return with;
   * the host prints it with the plugin's name and file. */
  void (*set_error)(sluice_plugin_ctx* ctx, const char* msg, size_t len);

  /* -- I/O on the calling shard's ring (shard only) --
   * Returns 0 when queued (on_complete will be called) or -errno when the
   * operation could not be queued (on_complete will not be called). */
  int32_t (*io_submit)(sluice_host* host, const sluice_io_op* op, sluice_completion* c);
  /* Ask the kernel to cancel c; c still completes (with -ECANCELED if the
   * cancel won). */
  int32_t (*io_cancel)(sluice_host* host, sluice_completion* c);
  /* Bind a listening TCP socket for addr (numeric). With reuse_port each
   * shard binds its own socket and the kernel spreads connections. The
   * first bind of an address in the process checks it is not already in
   * use by anyone else. Returns fd or -errno. (shard or main) */
  int32_t (*tcp_listen)(sluice_host* host, const void* addr, uint32_t addrlen,
                        int32_t backlog, int32_t reuse_port);

  /* -- services -- */
  /* main, during on_configure only. Returns the service id (>= 0) or an
   * error (duplicate name). */
  int32_t (*register_service)(sluice_plugin_ctx* ctx, const char* name,
                              sluice_service_handler handler, void* service_user);
  /* any time after on_configure of the plugin that registered it. Returns
   * the service id or SLUICE_ERR_NO_SERVICE. */
  int32_t (*lookup_service)(sluice_host* host, const char* name);
  /* shard only. Sends req to service on target_shard (which may be the
   * calling shard). OWNERSHIP: req bytes are copied; req->buf gets an extra
   * reference for the trip. reply is the caller's until on_reply. Returns
   * 0 (on_reply will be called), SLUICE_ERR_QUEUE_FULL (nothing sent;
   * wait_channel, then retry), SLUICE_ERR_NO_SERVICE or SLUICE_ERR_INVALID
   * (no such shard); on_reply is not called for a non-zero return. */
  int32_t (*call)(sluice_host* host, int32_t service_id, uint32_t target_shard,
                  const sluice_message* req, sluice_reply* reply);
  /* shard only, on the shard the request arrived on. Consumes responder.
   * msg may be NULL (empty reply); its bytes are copied, its buf ref'd. */
  void (*respond)(sluice_host* host, sluice_responder* responder, int32_t status,
                  const sluice_message* msg);
  /* shard only: completes c on the calling shard's next loop turn (the
   * building block for yield and for waking a waiting coroutine later). */
  void (*post)(sluice_host* host, sluice_completion* c);
  /* shard only: completes c (result 0) once the channel to target_shard
   * has room again, after a call returned SLUICE_ERR_QUEUE_FULL. */
  void (*wait_channel)(sluice_host* host, uint32_t target_shard, sluice_completion* c);

  /* -- buffers (any thread) -- */
  sluice_buf* (*buf_alloc)(sluice_host* host, uint64_t capacity, uint32_t alignment);
  void (*buf_ref)(sluice_buf* buf);
  void (*buf_unref)(sluice_buf* buf);

  /* -- metrics: register on main during on_configure; update on shards -- */
  sluice_metric* (*metric_register)(sluice_plugin_ctx* ctx, uint32_t kind,
                                    const char* name, const char* help);
  /* counter: add; gauge: add (may be negative); histogram: record value */
  void (*metric_add)(sluice_metric* m, int64_t value);
  void (*metric_set)(sluice_metric* m, int64_t value); /* gauges */
  /* any thread: calls fn once per registered metric with its value summed
   * over shards. OWNERSHIP: view is borrowed for the call. */
  void (*metric_visit)(sluice_host* host,
                       void (*fn)(void* user, const struct sluice_metric_view* view),
                       void* user);

  /* -- ABI 1.2 -- */
  /* The node's id (node.id in the YAML). */
  int32_t (*node_id)(sluice_host* host);

  /* -- ABI 1.3: admin routes, metrics sources, introspection -- */
  /* main, during on_configure. service_id must be the calling plugin's.
   * Returns 0, or SLUICE_ERR_INVALID (bad method or path, a route with the
   * same method and path exists, not the caller's service). */
  int32_t (*route_register)(sluice_plugin_ctx* ctx, const char* method, const char* path,
                            int32_t service_id, uint32_t message_type);
  /* any thread, after configure. OWNERSHIP: views are borrowed for the call. */
  void (*route_visit)(sluice_host* host, void (*fn)(void* user, const sluice_route_view* r), void* user);
  /* main, during on_configure; same rules as route_register. */
  int32_t (*metrics_source_register)(sluice_plugin_ctx* ctx, int32_t service_id, uint32_t message_type);
  void (*metrics_source_visit)(sluice_host* host,
                               void (*fn)(void* user, const sluice_metrics_source_view* s), void* user);
  /* any thread: every loaded plugin, in load order. */
  void (*plugin_visit)(sluice_host* host, void (*fn)(void* user, const sluice_plugin_view* p), void* user);
  /* any thread: every logger (the process's, named "sluice", and one per
   * plugin) with its level (sluice_log_level). */
  void (*logger_visit)(sluice_host* host, void (*fn)(void* user, const char* name, uint32_t level),
                       void* user);
  /* any thread: sets a logger's level; 0 or SLUICE_ERR_INVALID (unknown
   * logger or level). */
  int32_t (*log_level_set)(sluice_host* host, const char* logger, uint32_t level);
  /* any thread: the node's configuration as a JSON document (secrets
   * redacted), the product version, and the wall-clock start time. The
   * strings live as long as the host. */
  const char* (*node_config_json)(sluice_host* host);
  const char* (*version)(sluice_host* host);
  uint64_t (*start_time_ms)(sluice_host* host);
  void* reserved[5];
} sluice_host_api;

/* ---- the plugin descriptor ----------------------------------------------
 * Returned by SLUICE_PLUGIN_ENTRY; static and constant for the life of the
 * process. The host reads the fields before calling any hook. */
typedef struct sluice_plugin_descriptor {
  uint32_t struct_size;            /* sizeof(sluice_plugin_descriptor) */
  uint32_t abi_major;              /* must equal SLUICE_ABI_MAJOR */
  uint32_t abi_minor;              /* host accepts minor <= its own */
  uint32_t reserved0;
  const char* build_signature;     /* must equal the host's SLUICE_BUILD_SIGNATURE */
  const char* name;                /* unique; matches the YAML entry */
  const char* version;             /* free-form, e.g. "0.1.0" */
  const char* description;
  const char* const* dependencies; /* NULL-terminated list of plugin names, or NULL */

  /* main. Parse config_yaml (the plugin's `config:` subtree as YAML text,
   * possibly empty), register services and metrics, allocate the plugin
   * instance. origin ("FILE:LINE") and config_path ("plugins[2].config")
   * say where the subtree came from, for error messages. On failure call
   * host_api->set_error and return non-zero. OWNERSHIP: the strings are
   * borrowed for the call; host_api and host live as long as the process. */
  int32_t (*on_configure)(sluice_plugin_ctx* ctx, const sluice_host_api* host_api,
                          sluice_host* host, const char* config_yaml, size_t config_len,
                          const char* origin, const char* config_path, void** instance_out);
  /* shard. Start serving on this shard (listen, spawn loops). Plugins start
   * in list order, shard 0 first, then the other shards. */
  int32_t (*on_shard_start)(void* instance, uint32_t shard);
  /* shard. Stop on this shard: stop accepting, drain in-flight work, then
   * complete done (possibly later). Plugins stop in reverse list order,
   * each on every shard before the next. */
  void (*on_shard_stop)(void* instance, uint32_t shard, sluice_completion* done);
  /* main, after every shard stopped. Free the instance. */
  void (*on_destroy)(void* instance);

  void* reserved[8];
} sluice_plugin_descriptor;

typedef const sluice_plugin_descriptor* (*sluice_plugin_entry_fn)(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SLUICE_ABI_H */
