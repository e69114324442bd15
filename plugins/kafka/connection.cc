// One client connection: frames in, responses out, in order.
//
// Framing: a 4-byte big-endian size, then the request (header + body). A
// size above socket_request_max_bytes, or a request whose header does not
// decode, closes the connection (Kafka does the same); the error is logged
// once per connection. Requests start one at a time, like Kafka serves them,
// so a connection's produce requests reach each partition in order. A
// handler may defer the rest of its work (response::finish: an acks=all
// Produce waiting for its flush): the connection then starts the next
// request while it runs, at most max_deferred at once, and responses still
// leave in request order. Pipelined acks=all produce requests of one
// connection so share fdatasyncs instead of paying one each in turn.
//
// Small frames are decoded in place in the read buffer (64 KiB); a larger
// frame gets its own buffer and the rest is received straight into it.
#include "connection.h"

#include <sluice/kafka/msg/api_table.h>
#include <sluice/kafka/msg/headers.h>

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace sluice::kafka {

using sdk::task;

namespace {

constexpr size_t read_buffer_bytes = 64 * 1024;
constexpr uint32_t max_deferred = 32;  // finishing requests per connection

task<bool> send_response(int32_t fd, const request_context& ctx, response& resp, connection_state& conn) {
  writer head;
  const patch_position size_at = head.reserve_int32();
  msg::response_header rh;
  rh.correlation_id = ctx.correlation_id;
  const int16_t hv = msg::response_header_version(ctx.api_key, ctx.api_version);
  rh.encode(head, hv < 0 ? 0 : hv);
  head.patch_int32(size_at, static_cast<int32_t>(head.size() - 4 + resp.body.size()));
  std::vector<iovec> iov = head.iovecs();
  resp.body.append_iovecs(iov);
  // sendmsg until everything went out; a partial send advances the iovecs.
  size_t first = 0;
  while (first < iov.size()) {
    msghdr m{};
    m.msg_iov = iov.data() + first;
    m.msg_iovlen = std::min<size_t>(iov.size() - first, IOV_MAX);
    const int32_t n = co_await sdk::sendmsg(fd, &m, &conn.abort);
    if (n <= 0) co_return false;
    size_t left = static_cast<size_t>(n);
    while (left > 0 && first < iov.size()) {
      if (left >= iov[first].iov_len) {
        left -= iov[first].iov_len;
        ++first;
      } else {
        iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
        left = 0;
      }
    }
    while (first < iov.size() && iov[first].iov_len == 0) ++first;
  }
  co_return true;
}

void record_metrics(broker& b, int16_t key, const response& resp, uint64_t received_ns) {
  if (find_handler(key) == nullptr) return;  // every served API has its metrics
  b.metrics_by_api[key].requests.add(1);
  if (resp.errors) b.metrics_by_api[key].errors.add(1);
  b.metrics_by_api[key].latency_us.record((sdk::now_ns() - received_ns) / 1000);
}

// Waits for seq's turn, sends, and lets the next response go. False when the
// send failed (the connection is then aborted, which ends its reads).
task<bool> send_in_order(int32_t fd, const request_context& ctx, response& resp, connection_state& conn,
                         uint64_t seq, broker& b) {
  while (conn.sent != seq) co_await conn.turn.wait();
  bool ok = true;
  if (resp.send && !conn.abort.abort_requested()) {
    b.m_bytes_out.add(static_cast<int64_t>(resp.body.size()) + 8);  // + size and correlation id, about
    ok = co_await send_response(fd, ctx, resp, conn);
  }
  ++conn.sent;
  conn.turn.notify_all();
  if (!ok) conn.abort.request_abort();
  co_return ok;
}

// The deferred half of a request, then its response in order.
task<void> finish_request(broker& b, int32_t fd, request_context ctx, response resp, connection_state& conn,
                          uint64_t seq, uint64_t received_ns) {
  co_await resp.finish(resp);
  co_await send_in_order(fd, ctx, resp, conn, seq, b);
  record_metrics(b, ctx.api_key, resp, received_ns);
  --conn.deferred;
  conn.turn.notify_all();
}

}  // namespace

task<void> serve_connection(broker& b, shard_state& sh, int32_t fd, size_t listener, sdk::gate::holder) {
  sh.connections.emplace_front();
  auto self = sh.connections.begin();
  connection_state& conn = *self;
  conn.listener = listener;
  conn.last_active_ns = sdk::now_ns();
  {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      sdk::socket_address a;
      a.storage = ss;
      a.len = len;
      conn.peer = a.to_string();
    }
  }
  b.m_connections.add(1);
  b.m_connections_total.add(1);
  std::vector<uint8_t> in(read_buffer_bytes);
  size_t begin = 0, end = 0;
  std::string close_reason;

  // Reads until at least n bytes are buffered; false on EOF/error.
  auto fill = [&](size_t n) -> task<bool> {
    if (begin + n > in.size()) {
      std::memmove(in.data(), in.data() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    while (end - begin < n) {
      const int32_t r = co_await sdk::recv(fd, in.data() + end, in.size() - end, &conn.abort);
      if (r <= 0) co_return false;
      end += static_cast<size_t>(r);
      conn.last_active_ns = sdk::now_ns();
    }
    co_return true;
  };

  for (;;) {
    if (!co_await fill(4)) break;
    const int32_t size = static_cast<int32_t>(uint32_t{in[begin]} << 24 | uint32_t{in[begin + 1]} << 16 |
                                              uint32_t{in[begin + 2]} << 8 | in[begin + 3]);
    if (size < 8 || static_cast<uint64_t>(size) > b.cfg.max_request_bytes) {
      close_reason = "request size " + std::to_string(size) + " outside [8, socket_request_max_bytes=" +
                     std::to_string(b.cfg.max_request_bytes) + "]";
      break;
    }
    begin += 4;
    // The frame: in place when it fits the read buffer, else its own buffer.
    sdk::buffer big;
    const uint8_t* frame = nullptr;
    if (static_cast<size_t>(size) <= in.size()) {
      if (!co_await fill(static_cast<size_t>(size))) break;
      frame = in.data() + begin;
    } else {
      big = sdk::buffer::allocate(static_cast<uint64_t>(size));
      size_t have = std::min(end - begin, static_cast<size_t>(size));
      std::memcpy(big.data(), in.data() + begin, have);
      begin += have;
      while (have < static_cast<size_t>(size)) {
        const int32_t r = co_await sdk::recv(fd, big.data() + have, static_cast<size_t>(size) - have, &conn.abort);
        if (r <= 0) break;
        have += static_cast<size_t>(r);
        conn.last_active_ns = sdk::now_ns();
      }
      if (have < static_cast<size_t>(size)) break;
      big.set_size(static_cast<uint64_t>(size));
      frame = big.data();
    }

    const uint64_t received_ns = sdk::now_ns();
    b.m_bytes_in.add(size + 4);
    reader r(frame, static_cast<size_t>(size));
    request_context ctx;
    ctx.conn = &conn;
    int16_t key = 0, version = 0;
    {
      reader peek(frame, 4);
      (void)peek.read_int16(key);
      (void)peek.read_int16(version);
    }
    ctx.api_key = key;
    ctx.api_version = version;
    const int16_t hv = msg::request_header_version(key, version);
    msg::request_header header;
    if (hv < 0 || !header.decode(r, hv)) {
      close_reason = hv < 0 ? "unknown API key " + std::to_string(key)
                            : "malformed request header: " + r.error_message();
      break;
    }
    ctx.correlation_id = header.correlation_id;
    ctx.client_id = header.client_id;
    if (frame == in.data() + begin) begin += static_cast<size_t>(size);

    response resp;
    const api_handler* h = find_handler(key);
    bool ok = true;
    if (key == 18 /* ApiVersions */ && (h == nullptr || version > h->max_version)) {
      // KIP-511: answer a too-new ApiVersions with v0 and our ranges.
      unsupported_api_versions_response(resp);
      ctx.api_version = 0;
    } else if (h == nullptr || version < h->min_version || version > h->max_version) {
      const msg::api_info* info = msg::find_api(key);
      close_reason = std::string(info ? info->name : "unknown API") + " (key " + std::to_string(key) + ") v" +
                     std::to_string(version) + " is not supported" +
                     (h ? " (supported: v" + std::to_string(h->min_version) + "-" + std::to_string(h->max_version) + ")"
                        : "") + "; the client should have checked ApiVersions";
      break;
    } else {
      ok = co_await h->fn(b, ctx, r, resp);
      if (!ok) {
        b.metrics_by_api[key].errors.add(1);
        close_reason = "malformed request: " + r.error_message();
        break;
      }
    }
    const uint64_t seq = conn.next_seq++;
    if (resp.finish) {
      ++conn.deferred;
      sdk::spawn(finish_request(b, fd, ctx, std::move(resp), conn, seq, received_ns));
      while (conn.deferred >= max_deferred) co_await conn.turn.wait();
      continue;
    }
    if (!co_await send_in_order(fd, ctx, resp, conn, seq, b)) break;
    record_metrics(b, key, resp, received_ns);
    if (resp.close) break;
  }
  // Deferred requests still running use the socket and this state.
  while (conn.deferred > 0) co_await conn.turn.wait();
  b.m_connections.add(-1);
  if (!close_reason.empty()) b.m_bad_requests.add(1);
  if (!close_reason.empty())
    sdk::log_warn("kafka: closing connection from " + conn.peer +
                  (conn.client_software_name.empty() ? "" : " (" + conn.client_software_name + " " +
                                                                conn.client_software_version + ")") +
                  ": " + close_reason);
  sh.connections.erase(self);
  co_await sdk::close(fd);
}

}  // namespace sluice::kafka
