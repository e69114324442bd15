// Listening sockets for the host API's tcp_listen.
#pragma once

#include <cstdint>

namespace sluice::executor {

// Creates a bound, listening TCP socket (blocking fd; I/O on it goes through
// io_uring). The first call for an address in this process first checks,
// with a probe socket that does not set SO_REUSEPORT, that no other process
// holds the address: SO_REUSEPORT alone would let a second broker share
// the port silently. Returns the fd or -errno (-EADDRINUSE when taken).
int32_t tcp_listen(const void* addr, uint32_t addrlen, int32_t backlog, bool reuse_port);

}  // namespace sluice::executor
