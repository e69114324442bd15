/* One tiny plugin written in plain C against the ABI header, compiled
 * several times with different -D options: the valid fixture, and one
 * fixture per way a plugin can be refused or fail (as Envoy tests its
 * dynamic-module ABI). See tests/abi/CMakeLists.txt for the variants.
 *
 *   FIXTURE_NAME            descriptor name (default "fixture")
 *   FIXTURE_ABI_MAJOR       descriptor abi_major (default SLUICE_ABI_MAJOR)
 *   FIXTURE_ABI_MINOR       descriptor abi_minor (default SLUICE_ABI_MINOR)
 *   FIXTURE_SIGNATURE       build signature (default SLUICE_BUILD_SIGNATURE)
 *   FIXTURE_ENTRY           name of the exported entry function
 *   FIXTURE_NO_ENTRY        export no entry symbol at all
 *   FIXTURE_NULL_DESCRIPTOR the entry returns NULL
 *   FIXTURE_STRUCT_SIZE     descriptor struct_size
 *   FIXTURE_NO_STOP_HOOK    leave on_shard_stop NULL
 *   FIXTURE_CONFIGURE_FAILS on_configure reports an error
 *   FIXTURE_START_FAILS_ON  on_shard_start fails on this shard
 *   FIXTURE_DEPENDS         a dependency's name
 */
#include <sluice/abi/sluice_abi.h>

#include <stdio.h>
#include <string.h>

#ifndef FIXTURE_NAME
#define FIXTURE_NAME "fixture"
#endif
#ifndef FIXTURE_ABI_MAJOR
#define FIXTURE_ABI_MAJOR SLUICE_ABI_MAJOR
#endif
#ifndef FIXTURE_ABI_MINOR
#define FIXTURE_ABI_MINOR SLUICE_ABI_MINOR
#endif
#ifndef FIXTURE_SIGNATURE
#define FIXTURE_SIGNATURE SLUICE_BUILD_SIGNATURE
#endif
#ifndef FIXTURE_ENTRY
#define FIXTURE_ENTRY SLUICE_PLUGIN_ENTRY
#endif
#ifndef FIXTURE_STRUCT_SIZE
#define FIXTURE_STRUCT_SIZE sizeof(sluice_plugin_descriptor)
#endif

/* Counters the tests read through dlsym on the already-loaded library. */
SLUICE_EXPORT int fixture_configured, fixture_started, fixture_stopped, fixture_destroyed;

static const sluice_host_api* g_api;
static int g_instance;

static int32_t on_configure(sluice_plugin_ctx* ctx, const sluice_host_api* api, sluice_host* host,
                            const char* yaml, size_t len, const char* origin, const char* path,
                            void** instance_out) {
  (void)host;
  (void)yaml;
  (void)len;
  g_api = api;
#ifdef FIXTURE_CONFIGURE_FAILS
  {
    char msg[256];
    size_t n = (size_t)snprintf(msg, sizeof msg, "%s: %s.mode: fixture refuses its configuration", origin, path);
    api->set_error(ctx, msg, n < sizeof msg ? n : sizeof msg - 1);
    return SLUICE_ERR_CONFIG;
  }
#else
  (void)ctx;
  (void)origin;
  (void)path;
  ++fixture_configured;
  *instance_out = &g_instance;
  return SLUICE_OK;
#endif
}

static int32_t on_shard_start(void* instance, uint32_t shard) {
  (void)instance;
#ifdef FIXTURE_START_FAILS_ON
  if (shard == FIXTURE_START_FAILS_ON) return SLUICE_ERR_START;
#else
  (void)shard;
#endif
  __atomic_add_fetch(&fixture_started, 1, __ATOMIC_SEQ_CST);
  return SLUICE_OK;
}

static void on_shard_stop(void* instance, uint32_t shard, sluice_completion* done) {
  (void)instance;
  (void)shard;
  __atomic_add_fetch(&fixture_stopped, 1, __ATOMIC_SEQ_CST);
  done->on_complete(done, SLUICE_OK); /* completes synchronously */
}

static void on_destroy(void* instance) {
  (void)instance;
  ++fixture_destroyed;
}

#ifdef FIXTURE_DEPENDS
static const char* const dependencies[] = {FIXTURE_DEPENDS, NULL};
#else
static const char* const dependencies[] = {NULL};
#endif

static const sluice_plugin_descriptor descriptor = {
    FIXTURE_STRUCT_SIZE,
    FIXTURE_ABI_MAJOR,
    FIXTURE_ABI_MINOR,
    0,
    FIXTURE_SIGNATURE,
    FIXTURE_NAME,
    "1.0.0",
    "ABI test fixture",
    dependencies,
    on_configure,
    on_shard_start,
#ifdef FIXTURE_NO_STOP_HOOK
    NULL,
#else
    on_shard_stop,
#endif
    on_destroy,
    {0},
};

#ifndef FIXTURE_NO_ENTRY
SLUICE_EXPORT const sluice_plugin_descriptor* FIXTURE_ENTRY(void) {
#ifdef FIXTURE_NULL_DESCRIPTOR
  return NULL;
#else
  return &descriptor;
#endif
}
#endif
