// Ref-counted byte buffers (sluice_buf) behind the host API's buf_* calls.
//
// Thread-safety: the reference count is atomic; a buffer may be released on
// any thread. The bytes themselves are not synchronized: a buffer shared
// between shards is treated as immutable by convention.
#pragma once

#include <sluice/abi/sluice_abi.h>

namespace sluice::executor {

// Returns nullptr when alignment is not a power of two or memory runs out.
sluice_buf* buf_alloc(sluice_host* host, uint64_t capacity, uint32_t alignment);
void buf_ref(sluice_buf* buf);
void buf_unref(sluice_buf* buf);
// Current reference count (tests and assertions).
uint32_t buf_refs(const sluice_buf* buf);

}  // namespace sluice::executor
