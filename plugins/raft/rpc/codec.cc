#include "codec.h"

#include "sluice/raft.pb.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <string_view>

namespace sluice::raft::rpc {

namespace {

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sluice.raft.rpc"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::frame_too_large: return "frame too large";
      case errc::malformed: return "malformed frame";
      case errc::invalid: return "invalid frame content";
    }
    return "unknown";
  }
};

void put_u32(char* p, uint32_t v) noexcept {
  for (int k = 0; k < 4; ++k) p[k] = static_cast<char>((v >> (8 * k)) & 0xff);
}
uint32_t get_u32(const char* p) noexcept {
  uint32_t v = 0;
  for (int k = 0; k < 4; ++k) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[k])) << (8 * k);
  return v;
}

constexpr int message_type_max = static_cast<int>(message_type::timeout_now);
constexpr int entry_type_max = static_cast<int>(entry_type::noop);

// Heartbeats and their answers carry nothing but term, commit and seq; the
// encoder puts those whose other fields are all at their defaults in columns.
bool compactable(const message& m) noexcept {
  return (m.type == message_type::heartbeat || m.type == message_type::heartbeat_resp) && m.index.is_zero() &&
         m.log_term.is_zero() && m.reject_hint.is_zero() && !m.reject && !m.transfer && m.entries.empty() &&
         !m.snap;
}

error invalid(std::string what) { return make_error(make_error_code(errc::invalid), std::move(what)); }
error malformed(std::string what) { return make_error(make_error_code(errc::malformed), std::move(what)); }

// Checks that a list of node ids is strictly increasing and has no 0.
bool valid_ids(const google::protobuf::RepeatedField<uint64_t>& ids) {
  for (int k = 0; k < ids.size(); ++k) {
    if (ids[k] == 0 || (k > 0 && ids[k] <= ids[k - 1])) return false;
  }
  return true;
}

}  // namespace

const std::error_category& rpc_category() noexcept {
  static const category_impl c;
  return c;
}

bool same_message(const message& a, const message& b) {
  auto same_entry = [](const entry& x, const entry& y) {
    return x.term == y.term && x.index == y.index && x.count == y.count && x.type == y.type && x.data == y.data;
  };
  if (a.type != b.type || a.from != b.from || a.to != b.to || a.term != b.term || a.index != b.index ||
      a.log_term != b.log_term || a.commit != b.commit || a.reject_hint != b.reject_hint || a.seq != b.seq ||
      a.reject != b.reject || a.transfer != b.transfer || a.entries.size() != b.entries.size() ||
      a.snap.has_value() != b.snap.has_value()) {
    return false;
  }
  for (size_t k = 0; k < a.entries.size(); ++k) {
    if (!same_entry(a.entries[k], b.entries[k])) return false;
  }
  if (a.snap) {
    const snapshot& x = *a.snap;
    const snapshot& y = *b.snap;
    if (x.meta.index != y.meta.index || x.meta.term != y.meta.term || !(x.meta.members == y.meta.members) ||
        !(x.data == y.data)) {
      return false;
    }
  }
  return true;
}

// ---- encoding ----------------------------------------------------------------

void encoded_frame::append_iovecs(std::vector<iovec>& out) const {
  out.push_back(iovec{const_cast<char*>(_head.data()), _head.size()});
  for (const payload& p : _data) {
    const std::string_view v = p.view();
    if (v.empty()) continue;
    iovec& last = out.back();
    if (static_cast<const char*>(last.iov_base) + last.iov_len == v.data()) {
      last.iov_len += v.size();
    } else {
      out.push_back(iovec{const_cast<char*>(v.data()), v.size()});
    }
  }
}

std::string encoded_frame::to_string() const {
  std::string out = _head;
  out.reserve(size());
  for (const payload& p : _data) out.append(p.view());
  return out;
}

// Builds a frame: the header message, and the data section as references.
class frame_encoder {
 public:
  // Adds p to the data section; returns its offset there.
  uint64_t add_data(const payload& p) {
    const uint64_t at = _frame._data_bytes;
    if (!p.empty()) {
      _frame._data.push_back(p);
      _frame._data_bytes += p.size();
    }
    return at;
  }

  encoded_frame finish(const wire::Frame& header) {
    const size_t header_len = header.ByteSizeLong();
    const size_t frame_len = 4 + header_len + _frame._data_bytes;
    SLUICE_ASSERT_MSG(frame_len <= UINT32_MAX, "a frame above 4 GiB: split the messages");
    _frame._head.resize(8 + header_len);
    char* p = _frame._head.data();
    put_u32(p, static_cast<uint32_t>(frame_len));
    put_u32(p + 4, static_cast<uint32_t>(header_len));
    SLUICE_ASSERT(header.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(p + 8)) ==
                  reinterpret_cast<uint8_t*>(p + 8 + header_len));
    return std::move(_frame);
  }

  void encode(const group_message& gm, wire::GroupMessage& out) {
    const message& m = gm.msg;
    out.set_group(gm.group);
    out.set_type(static_cast<wire::MessageType>(m.type));
    out.set_from(m.from.value());
    out.set_to(m.to.value());
    out.set_term(m.term.value());
    out.set_index(m.index.value());
    out.set_log_term(m.log_term.value());
    out.set_commit(m.commit.value());
    out.set_reject_hint(m.reject_hint.value());
    out.set_seq(m.seq);
    out.set_reject(m.reject);
    out.set_transfer(m.transfer);
    out.mutable_entries()->Reserve(static_cast<int>(m.entries.size()));
    for (const entry& e : m.entries) {
      wire::Entry* we = out.add_entries();
      we->set_term(e.term.value());
      we->set_index(e.index.value());
      we->set_count(e.count);
      we->set_type(static_cast<wire::EntryType>(e.type));
      we->set_data_offset(add_data(e.data));
      we->set_data_len(e.data.size());
    }
    if (m.snap) {
      wire::Snapshot* ws = out.mutable_snap();
      ws->set_index(m.snap->meta.index.value());
      ws->set_term(m.snap->meta.term.value());
      for (node_id n : m.snap->meta.members.voters) ws->add_voters(n.value());
      for (node_id n : m.snap->meta.members.learners) ws->add_learners(n.value());
      ws->set_data_offset(add_data(m.snap->data));
      ws->set_data_len(m.snap->data.size());
    }
  }

 private:
  encoded_frame _frame;
};

encoded_frame encode_hello(const hello_message& h) {
  wire::Frame f;
  wire::Hello* w = f.mutable_hello();
  w->set_cluster_id(h.cluster_id);
  w->set_node_id(h.node.value());
  w->set_shard(h.shard);
  w->set_protocol_version(h.version);
  w->set_target_node_id(h.target.value());
  return frame_encoder().finish(f);
}

encoded_frame encode_frame(std::span<const group_message> messages, std::span<const app_message> apps) {
  wire::Frame f;
  frame_encoder enc;
  if (!messages.empty()) {
    wire::RaftBatch* batch = f.mutable_raft();
    for (const group_message& gm : messages) {
      const message& m = gm.msg;
      if (!compactable(m)) {
        enc.encode(gm, *batch->add_messages());
        continue;
      }
      // One column block per (type, from, to); there are rarely more than two.
      wire::Heartbeats* hb = nullptr;
      for (wire::Heartbeats& b : *batch->mutable_heartbeats()) {
        if (b.type() == static_cast<wire::MessageType>(m.type) && b.from() == m.from.value() &&
            b.to() == m.to.value()) {
          hb = &b;
          break;
        }
      }
      if (hb == nullptr) {
        hb = batch->add_heartbeats();
        hb->set_type(static_cast<wire::MessageType>(m.type));
        hb->set_from(m.from.value());
        hb->set_to(m.to.value());
      }
      hb->add_group(gm.group);
      hb->add_term(m.term.value());
      hb->add_commit(m.commit.value());
      hb->add_seq(m.seq);
    }
    // A column of zeros is left out.
    auto all_zero = [](const google::protobuf::RepeatedField<uint64_t>& c) {
      return std::all_of(c.begin(), c.end(), [](uint64_t v) { return v == 0; });
    };
    for (wire::Heartbeats& b : *batch->mutable_heartbeats()) {
      if (all_zero(b.term())) b.clear_term();
      if (all_zero(b.commit())) b.clear_commit();
      if (all_zero(b.seq())) b.clear_seq();
    }
  }
  for (const app_message& a : apps) {
    wire::App* w = f.add_app();
    w->set_kind(a.kind);
    w->set_request_id(a.request_id);
    w->set_is_response(a.is_response);
    w->set_payload(a.payload);
  }
  return enc.finish(f);
}

// Every field of a GroupMessage, an Entry or a Snapshot takes at most a
// 1-byte tag and a 10-byte varint; embedded messages add a tag and a
// length of at most 6 bytes; ids in packed lists at most 10 bytes each.
size_t message_bytes_bound(const message& m) noexcept {
  size_t n = 16 + 14 * 11;
  n += m.entries.size() * (16 + 6 * 11);
  for (const entry& e : m.entries) n += e.data.size();
  if (m.snap) {
    n += 16 + 6 * 11 + 2 * 6;
    n += 10 * (m.snap->meta.members.voters.size() + m.snap->meta.members.learners.size());
    n += m.snap->data.size();
  }
  return n;
}

size_t app_bytes_bound(const app_message& a) noexcept { return 16 + 4 * 11 + 6 + a.payload.size(); }

// ---- decoding ----------------------------------------------------------------

namespace {

class frame_decoder {
 public:
  frame_decoder(const frame_view& body, const char* data, size_t data_len)
      : _owner(body.owner), _data(data), _data_len(data_len) {}

  // A payload for data section bytes [offset, offset + len).
  result<payload> data(uint64_t offset, uint64_t len, const std::string& where) const {
    if (offset > _data_len || len > _data_len - offset) {
      return invalid(where + ": payload [" + std::to_string(offset) + ", +" + std::to_string(len) +
                     ") is outside the data section (" + std::to_string(_data_len) + " bytes)");
    }
    if (len == 0) return payload();
    return payload(_owner, _data + offset, len);
  }

  result<group_message> decode(const wire::GroupMessage& w, const std::string& where) const {
    group_message gm;
    gm.group = w.group();
    message& m = gm.msg;
    const int type = static_cast<int>(w.type());
    if (type < 0 || type > message_type_max) return invalid(where + ": unknown message type " + std::to_string(type));
    m.type = static_cast<message_type>(type);
    m.from = node_id(w.from());
    m.to = node_id(w.to());
    m.term = term_id(w.term());
    m.index = log_index(w.index());
    m.log_term = term_id(w.log_term());
    m.commit = log_index(w.commit());
    m.reject_hint = log_index(w.reject_hint());
    m.seq = w.seq();
    m.reject = w.reject();
    m.transfer = w.transfer();
    m.entries.reserve(static_cast<size_t>(w.entries_size()));
    for (int k = 0; k < w.entries_size(); ++k) {
      const wire::Entry& we = w.entries(k);
      const std::string at = where + ": entry " + std::to_string(k);
      entry e;
      e.term = term_id(we.term());
      e.index = log_index(we.index());
      if (we.count() == 0) return invalid(at + ": count 0 (an entry occupies at least one index)");
      e.count = we.count();
      if (e.index.value() == 0 || e.index.value() > UINT64_MAX - (e.count - 1)) {
        return invalid(at + ": index " + std::to_string(e.index.value()) + " with count " +
                       std::to_string(e.count) + " is outside [1, 2^64)");
      }
      const int et = static_cast<int>(we.type());
      if (et < 0 || et > entry_type_max) return invalid(at + ": unknown entry type " + std::to_string(et));
      e.type = static_cast<entry_type>(et);
      auto p = data(we.data_offset(), we.data_len(), at);
      if (!p) return p.err();
      e.data = std::move(p).value();
      m.entries.push_back(std::move(e));
    }
    if (w.has_snap()) {
      const wire::Snapshot& ws = w.snap();
      const std::string at = where + ": snapshot";
      if (!valid_ids(ws.voters()) || !valid_ids(ws.learners())) {
        return invalid(at + ": voters and learners must be increasing node ids other than 0");
      }
      snapshot s;
      s.meta.index = log_index(ws.index());
      s.meta.term = term_id(ws.term());
      for (uint64_t v : ws.voters()) s.meta.members.voters.push_back(node_id(v));
      for (uint64_t l : ws.learners()) {
        if (s.meta.members.is_voter(node_id(l))) {
          return invalid(at + ": node " + std::to_string(l) + " is both voter and learner");
        }
        s.meta.members.learners.push_back(node_id(l));
      }
      auto p = data(ws.data_offset(), ws.data_len(), at);
      if (!p) return p.err();
      s.data = std::move(p).value();
      m.snap = std::move(s);
    }
    return gm;
  }

  result<void> decode(const wire::Heartbeats& w, const std::string& where, std::vector<group_message>& out) const {
    const int type = static_cast<int>(w.type());
    if (type != static_cast<int>(message_type::heartbeat) && type != static_cast<int>(message_type::heartbeat_resp)) {
      return invalid(where + ": type " + std::to_string(type) + " is not a heartbeat or heartbeat answer");
    }
    const int n = w.group_size();
    auto column_ok = [n](int size) { return size == 0 || size == n; };
    if (!column_ok(w.term_size()) || !column_ok(w.commit_size()) || !column_ok(w.seq_size())) {
      return invalid(where + ": columns of " + std::to_string(w.term_size()) + ", " +
                     std::to_string(w.commit_size()) + " and " + std::to_string(w.seq_size()) +
                     " values for " + std::to_string(n) + " groups");
    }
    for (int k = 0; k < n; ++k) {
      group_message gm;
      gm.group = w.group(k);
      message& m = gm.msg;
      m.type = static_cast<message_type>(type);
      m.from = node_id(w.from());
      m.to = node_id(w.to());
      if (w.term_size()) m.term = term_id(w.term(k));
      if (w.commit_size()) m.commit = log_index(w.commit(k));
      if (w.seq_size()) m.seq = w.seq(k);
      out.push_back(std::move(gm));
    }
    return {};
  }

 private:
  std::shared_ptr<const void> _owner;
  const char* _data;
  size_t _data_len;
};

}  // namespace

result<decoded_frame> decode_frame(const frame_view& body) {
  if (body.size < 4) {
    return malformed("frame of " + std::to_string(body.size) + " bytes has no room for its header length");
  }
  if (body.size > frame_bytes_limit) {
    return make_error(make_error_code(errc::frame_too_large),
                      "frame of " + std::to_string(body.size) + " bytes is above the 1 GiB limit");
  }
  const uint32_t header_len = get_u32(body.data);
  if (header_len > body.size - 4) {
    return malformed("header length " + std::to_string(header_len) + " exceeds the frame's " +
                     std::to_string(body.size - 4) + " bytes after it");
  }
  wire::Frame f;
  if (!f.ParseFromArray(body.data + 4, static_cast<int>(header_len))) {
    return malformed("the " + std::to_string(header_len) + "-byte header is not a valid protobuf Frame");
  }
  decoded_frame out;
  if (f.has_hello()) {
    if (f.has_raft() || f.app_size() > 0) return invalid("a hello frame carries raft or app messages");
    const wire::Hello& w = f.hello();
    if (w.node_id() == 0 || w.target_node_id() == 0) return invalid("hello: node id 0");
    hello_message h;
    h.cluster_id = w.cluster_id();
    h.node = node_id(w.node_id());
    h.shard = w.shard();
    h.version = w.protocol_version();
    h.target = node_id(w.target_node_id());
    out.hello = std::move(h);
    return out;
  }
  const char* data = body.data + 4 + header_len;
  const size_t data_len = body.size - 4 - header_len;
  const frame_decoder dec(body, data, data_len);
  if (f.has_raft()) {
    const wire::RaftBatch& batch = f.raft();
    out.messages.reserve(static_cast<size_t>(batch.messages_size()));
    for (int k = 0; k < batch.messages_size(); ++k) {
      auto gm = dec.decode(batch.messages(k), "message " + std::to_string(k));
      if (!gm) return gm.err();
      out.messages.push_back(std::move(gm).value());
    }
    for (int k = 0; k < batch.heartbeats_size(); ++k) {
      auto r = dec.decode(batch.heartbeats(k), "heartbeat block " + std::to_string(k), out.messages);
      if (!r) return r.err();
    }
  }
  out.apps.reserve(static_cast<size_t>(f.app_size()));
  for (const wire::App& w : f.app()) {
    app_message a;
    a.kind = w.kind();
    a.request_id = w.request_id();
    a.is_response = w.is_response();
    a.payload = w.payload();
    out.apps.push_back(std::move(a));
  }
  return out;
}

result<decoded_frame> decode_frame(std::shared_ptr<const std::vector<char>> frame, size_t frame_bytes_max) {
  SLUICE_ASSERT(frame != nullptr);
  const std::vector<char>& bytes = *frame;
  if (bytes.size() < length_field_bytes) return malformed("frame shorter than its length field");
  const uint32_t frame_len = get_u32(bytes.data());
  if (size_t{frame_len} + length_field_bytes > frame_bytes_max) {
    return make_error(make_error_code(errc::frame_too_large),
                      "frame of " + std::to_string(size_t{frame_len} + length_field_bytes) +
                          " bytes is above the maximum of " + std::to_string(frame_bytes_max));
  }
  if (size_t{frame_len} != bytes.size() - length_field_bytes) {
    return malformed("length field says " + std::to_string(frame_len) + " bytes, the buffer holds " +
                     std::to_string(bytes.size() - length_field_bytes));
  }
  const char* data = bytes.data() + length_field_bytes;
  return decode_frame(frame_view{std::move(frame), data, frame_len});
}

// ---- frame_reader ------------------------------------------------------------------

frame_reader::frame_reader(size_t frame_bytes_max, size_t chunk_bytes)
    : _frame_bytes_max(std::min(frame_bytes_max, frame_bytes_limit)), _chunk_bytes(std::max<size_t>(chunk_bytes, 64)) {
  SLUICE_ASSERT(frame_bytes_max >= 8);
}

// The bytes the frame at _begin needs in the chunk (length field included),
// as far as known: the length field alone until it arrived.
size_t frame_reader::pending_frame_bytes() const noexcept {
  if (_end - _begin < length_field_bytes) return length_field_bytes;
  const size_t n = size_t{get_u32(_chunk.get() + _begin)} + length_field_bytes;
  return n <= _frame_bytes_max ? n : length_field_bytes;  // next() reports the error
}

std::span<char> frame_reader::prepare() {
  if (_chunk && _begin == _end && _chunk.use_count() == 1) {
    _begin = _end = 0;  // nothing buffered and no frame refers to the chunk: reuse it from the start
  }
  const size_t need = pending_frame_bytes();
  if (!_chunk || _end == _capacity || _begin + need > _capacity) {
    // Move what is buffered (the start of one frame) to a new chunk that
    // holds the whole frame; the old chunk lives on while frames refer to it.
    const size_t buffered = _end - _begin;
    const size_t capacity = std::max(need, buffered + _chunk_bytes);
    SLUICE_ASSERT(buffered < capacity);
    std::shared_ptr<char[]> chunk(new char[capacity]);
    if (buffered) std::memcpy(chunk.get(), _chunk.get() + _begin, buffered);
    _chunk = std::move(chunk);
    _capacity = capacity;
    _begin = 0;
    _end = buffered;
  }
  return {_chunk.get() + _end, _capacity - _end};
}

void frame_reader::commit(size_t n) {
  SLUICE_ASSERT(n <= _capacity - _end);
  _end += n;
}

result<std::optional<frame_view>> frame_reader::next() {
  if (_end - _begin < length_field_bytes) return std::optional<frame_view>();
  const char* p = _chunk.get() + _begin;
  const size_t frame_len = get_u32(p);
  if (frame_len + length_field_bytes > _frame_bytes_max) {
    return make_error(make_error_code(errc::frame_too_large),
                      "frame of " + std::to_string(frame_len + length_field_bytes) +
                          " bytes is above the maximum of " + std::to_string(_frame_bytes_max));
  }
  if (frame_len < 4) {
    return malformed("frame of " + std::to_string(frame_len) + " bytes has no room for its header length");
  }
  if (_end - _begin < length_field_bytes + frame_len) return std::optional<frame_view>();
  _begin += length_field_bytes + frame_len;
  return std::optional<frame_view>(frame_view{std::shared_ptr<const void>(_chunk, p), p + length_field_bytes, frame_len});
}

}  // namespace sluice::raft::rpc
