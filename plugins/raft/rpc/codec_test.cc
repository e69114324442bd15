// The RPC frame codec: round trips of every message type, zero-copy
// decoding, heartbeat columns, size bounds, the streaming reader, and every
// error path of the decoder.
#include "codec.h"

#include "sluice/raft.pb.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>

namespace sluice::raft::rpc {
namespace {

payload bytes(std::string s) { return payload(std::move(s)); }

entry make_entry(uint64_t term, uint64_t index, uint32_t count, entry_type type, std::string data) {
  entry e;
  e.term = term_id(term);
  e.index = log_index(index);
  e.count = count;
  e.type = type;
  e.data = bytes(std::move(data));
  return e;
}

message base(message_type t) {
  message m;
  m.type = t;
  m.from = node_id(1);
  m.to = node_id(2);
  m.term = term_id(7);
  return m;
}

// One message of every type, with the fields each type uses and some it
// does not (the codec must carry them all).
std::vector<group_message> every_type() {
  std::vector<group_message> out;
  uint64_t group = 0;
  auto add = [&](message m) { out.push_back(group_message{group++ * 1000003, std::move(m)}); };
  for (message_type t : {message_type::pre_vote, message_type::vote}) {
    message m = base(t);
    m.index = log_index(41);
    m.log_term = term_id(6);
    m.transfer = t == message_type::vote;
    add(m);
  }
  for (message_type t : {message_type::pre_vote_resp, message_type::vote_resp}) {
    message m = base(t);
    m.reject = t == message_type::vote_resp;
    add(m);
  }
  {
    message m = base(message_type::append);
    m.index = log_index(10);
    m.log_term = term_id(6);
    m.commit = log_index(9);
    m.entries.push_back(make_entry(6, 11, 3, entry_type::normal, std::string(1000, 'a')));
    m.entries.push_back(make_entry(7, 14, 1, entry_type::noop, ""));
    m.entries.push_back(make_entry(7, 15, 1, entry_type::conf_change, "membership bytes"));
    m.entries.push_back(make_entry(7, 16, 500, entry_type::normal, std::string(70000, 'b')));
    add(m);
  }
  {
    message m = base(message_type::append_resp);
    m.index = log_index(515);
    m.reject = true;
    m.reject_hint = log_index(300);
    m.log_term = term_id(5);
    add(m);
  }
  {
    message m = base(message_type::heartbeat);
    m.commit = log_index(12);
    m.seq = 99;
    add(m);
  }
  {
    message m = base(message_type::heartbeat_resp);
    m.seq = 99;
    add(m);
  }
  {
    message m = base(message_type::install_snapshot);
    snapshot s;
    s.meta.index = log_index(1u << 20);
    s.meta.term = term_id(5);
    s.meta.members.voters = {node_id(1), node_id(2), node_id(3)};
    s.meta.members.learners = {node_id(9)};
    s.data = bytes("snapshot data");
    m.snap = s;
    add(m);
  }
  {
    message m = base(message_type::install_snapshot_resp);
    m.index = log_index(1u << 20);
    add(m);
  }
  add(base(message_type::timeout_now));
  {
    // Extreme values in every field.
    message m = base(message_type::append);
    m.from = node_id(UINT64_MAX);
    m.to = node_id(UINT64_MAX - 1);
    m.term = term_id(UINT64_MAX);
    m.index = log_index(UINT64_MAX);
    m.log_term = term_id(UINT64_MAX);
    m.commit = log_index(UINT64_MAX);
    m.reject_hint = log_index(UINT64_MAX);
    m.seq = UINT64_MAX;
    m.reject = m.transfer = true;
    m.entries.push_back(make_entry(UINT64_MAX, UINT64_MAX - 9, 10, entry_type::normal, "x"));
    out.push_back(group_message{UINT64_MAX, m});
  }
  return out;
}

std::shared_ptr<const std::vector<char>> wire_bytes(const encoded_frame& f) {
  const std::string s = f.to_string();
  return std::make_shared<const std::vector<char>>(s.begin(), s.end());
}

decoded_frame round_trip(const encoded_frame& f) {
  auto d = decode_frame(wire_bytes(f), frame_bytes_limit);
  EXPECT_TRUE(d.has_value()) << (d ? "" : d.err().message);
  if (!d) return {};
  return std::move(d).value();
}

void expect_same(const std::vector<group_message>& got, const std::vector<group_message>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) {
    EXPECT_EQ(got[k].group, want[k].group) << k;
    EXPECT_TRUE(same_message(got[k].msg, want[k].msg)) << k << ": " << describe(got[k].msg) << " vs "
                                                        << describe(want[k].msg);
  }
}

TEST(raft_rpc_codec, every_message_type_round_trips) {
  const auto msgs = every_type();
  std::vector<app_message> apps(2);
  apps[0] = app_message{3, 77, false, "forward this proposal"};
  apps[1] = app_message{4, 77, true, std::string(300, '\0')};
  const encoded_frame f = encode_frame(msgs, apps);
  const decoded_frame d = round_trip(f);
  EXPECT_FALSE(d.hello);
  // The full messages keep their order; heartbeats come after them.
  std::vector<group_message> want;
  for (const auto& gm : msgs)
    if (gm.msg.type != message_type::heartbeat && gm.msg.type != message_type::heartbeat_resp) want.push_back(gm);
  for (const auto& gm : msgs)
    if (gm.msg.type == message_type::heartbeat || gm.msg.type == message_type::heartbeat_resp) want.push_back(gm);
  expect_same(d.messages, want);
  ASSERT_EQ(d.apps.size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(d.apps[k].kind, apps[k].kind);
    EXPECT_EQ(d.apps[k].request_id, apps[k].request_id);
    EXPECT_EQ(d.apps[k].is_response, apps[k].is_response);
    EXPECT_EQ(d.apps[k].payload, apps[k].payload);
  }
}

TEST(raft_rpc_codec, hello_and_empty_frames_round_trip) {
  hello_message h{"cluster-a", node_id(3), 5, protocol_version, node_id(4)};
  const decoded_frame d = round_trip(encode_hello(h));
  ASSERT_TRUE(d.hello);
  EXPECT_EQ(d.hello->cluster_id, "cluster-a");
  EXPECT_EQ(d.hello->node, node_id(3));
  EXPECT_EQ(d.hello->shard, 5u);
  EXPECT_EQ(d.hello->version, protocol_version);
  EXPECT_EQ(d.hello->target, node_id(4));
  EXPECT_TRUE(d.messages.empty() && d.apps.empty());

  const encoded_frame empty = encode_frame({}, {});
  EXPECT_EQ(empty.size(), 8u);  // two length fields, an empty header
  const decoded_frame e = round_trip(empty);
  EXPECT_FALSE(e.hello);
  EXPECT_TRUE(e.messages.empty() && e.apps.empty());
}

TEST(raft_rpc_codec, decoded_payloads_point_into_the_frame) {
  const auto msgs = every_type();
  const encoded_frame f = encode_frame(msgs);
  auto buf = wire_bytes(f);
  const char* lo = buf->data();
  const char* hi = buf->data() + buf->size();
  std::weak_ptr<const std::vector<char>> alive = buf;
  auto d = decode_frame(buf, frame_bytes_limit);
  ASSERT_TRUE(d.has_value()) << d.err().message;
  buf.reset();
  size_t checked = 0;
  for (const group_message& gm : d.value().messages) {
    std::vector<std::string_view> views;
    for (const entry& e : gm.msg.entries) views.push_back(e.data.view());
    if (gm.msg.snap) views.push_back(gm.msg.snap->data.view());
    for (std::string_view v : views) {
      if (v.empty()) continue;
      EXPECT_GE(v.data(), lo);
      EXPECT_LE(v.data() + v.size(), hi);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 5u);  // four non-empty entry payloads and a snapshot
  // The payloads keep the frame alive, and only they.
  EXPECT_FALSE(alive.expired());
  d.value().messages.clear();
  EXPECT_TRUE(alive.expired());
}

TEST(raft_rpc_codec, iovecs_gather_the_payloads_without_copying) {
  // Two entries whose payloads are adjacent in one buffer share an iovec;
  // the frame's bytes are the head then the payloads.
  auto block = std::make_shared<const std::string>(std::string(100, 'x') + std::string(50, 'y'));
  message m = base(message_type::append);
  entry a = make_entry(7, 1, 1, entry_type::normal, "");
  a.data = payload(block, block->data(), 100);
  entry b = make_entry(7, 2, 1, entry_type::normal, "");
  b.data = payload(block, block->data() + 100, 50);
  m.entries = {a, b};
  message other = base(message_type::append);
  other.entries = {make_entry(7, 3, 1, entry_type::normal, "elsewhere")};
  const std::vector<group_message> msgs{{1, m}, {2, other}};
  const encoded_frame f = encode_frame(msgs);
  std::vector<iovec> iov;
  f.append_iovecs(iov);
  ASSERT_EQ(iov.size(), 3u);
  EXPECT_EQ(iov[1].iov_base, block->data());
  EXPECT_EQ(iov[1].iov_len, 150u);
  std::string gathered;
  for (const iovec& v : iov) gathered.append(static_cast<const char*>(v.iov_base), v.iov_len);
  EXPECT_EQ(gathered, f.to_string());
  EXPECT_EQ(gathered.size(), f.size());
  EXPECT_EQ(f.data_bytes(), 159u);
  expect_same(round_trip(f).messages, msgs);
}

TEST(raft_rpc_codec, heartbeats_of_many_groups_are_compact) {
  std::vector<group_message> msgs;
  for (uint64_t g = 1; g <= 1000; ++g) {
    message m = base(message_type::heartbeat);
    m.term = term_id(3 + g % 4);
    m.commit = log_index(1000 + g * 17);
    m.seq = 40 + g % 3;
    msgs.push_back({g, m});
  }
  const encoded_frame f = encode_frame(msgs);
  EXPECT_LT(f.size(), 1000u * 8);  // about 7 bytes per heartbeat
  expect_same(round_trip(f).messages, msgs);

  // Answers: term and seq only; the all-zero commit column is left out.
  std::vector<group_message> resps;
  for (uint64_t g = 1; g <= 1000; ++g) {
    message m = base(message_type::heartbeat_resp);
    m.from = node_id(2);
    m.to = node_id(1);
    m.seq = 41;
    resps.push_back({g, m});
  }
  const encoded_frame r = encode_frame(resps);
  EXPECT_LT(r.size(), 1000u * 5);
  expect_same(round_trip(r).messages, resps);
}

TEST(raft_rpc_codec, heartbeat_blocks_per_sender_and_receiver_and_full_form_otherwise) {
  std::vector<group_message> msgs;
  message a = base(message_type::heartbeat);
  message b = a;
  b.to = node_id(3);  // another block
  message c = a;
  c.reject = true;  // not compactable: sent in full
  message d = base(message_type::heartbeat_resp);
  msgs = {{1, a}, {2, b}, {3, c}, {4, a}, {5, d}};
  const decoded_frame got = round_trip(encode_frame(msgs));
  // Full messages first, then block (1->2 heartbeat: groups 1, 4), block (1->3), block (resp).
  expect_same(got.messages, {{3, c}, {1, a}, {4, a}, {2, b}, {5, d}});
}

TEST(raft_rpc_codec, sizes_stay_within_the_bounds) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 200; ++round) {
    std::vector<group_message> msgs;
    std::vector<app_message> apps;
    size_t bound = frame_bytes_bound;
    const int n = static_cast<int>(rng() % 20);
    for (int k = 0; k < n; ++k) {
      message m = base(static_cast<message_type>(rng() % 11));
      auto big = [&] { return rng() >> (rng() % 64); };
      m.from = node_id(big());
      m.to = node_id(big());
      m.term = term_id(big());
      m.index = log_index(big());
      m.commit = log_index(big());
      m.seq = big();
      m.reject = rng() % 2;
      if (m.type == message_type::append) {
        for (uint64_t e = 0, count = rng() % 5; e < count; ++e)
          m.entries.push_back(make_entry(big(), 1 + e, 1, entry_type::normal, std::string(rng() % 100, 'p')));
      }
      if (m.type == message_type::install_snapshot) {
        snapshot s;
        s.meta.index = log_index(big());
        uint64_t id = 0;
        for (uint64_t v = 0, count = rng() % 7; v < count; ++v) {
          id += 1 + rng() % 1'000'000'000'000;
          s.meta.members.voters.push_back(node_id(id));
        }
        s.data = bytes(std::string(rng() % 100, 's'));
        m.snap = s;
      }
      bound += message_bytes_bound(m);
      msgs.push_back({big(), m});
    }
    for (int k = 0, count = static_cast<int>(rng() % 3); k < count; ++k) {
      apps.push_back(app_message{static_cast<uint32_t>(rng()), rng(), true, std::string(rng() % 50, 'a')});
      bound += app_bytes_bound(apps.back());
    }
    const encoded_frame f = encode_frame(msgs, apps);
    EXPECT_LE(f.size(), bound);
    EXPECT_EQ(round_trip(f).messages.size(), msgs.size());
  }
}

// ---- frame_reader ------------------------------------------------------------

TEST(raft_rpc_codec, reader_finds_frames_in_any_split_of_the_stream) {
  const auto msgs = every_type();
  std::string stream;
  std::vector<size_t> sizes;
  for (int k = 0; k < 20; ++k) {
    const encoded_frame f = k % 5 == 0 ? encode_hello({"c", node_id(1), 0, 1, node_id(2)}) : encode_frame(msgs);
    stream += f.to_string();
    sizes.push_back(f.size());
  }
  std::mt19937 rng(7);
  for (size_t chunk : {64u, 1000u, 65536u}) {
    frame_reader reader(1 << 20, chunk);
    std::vector<decoded_frame> frames;
    size_t at = 0;
    while (at < stream.size()) {
      std::span<char> room = reader.prepare();
      ASSERT_FALSE(room.empty());
      const size_t n = std::min<size_t>({room.size(), stream.size() - at, 1 + rng() % 3000});
      std::memcpy(room.data(), stream.data() + at, n);
      reader.commit(n);
      at += n;
      for (;;) {
        auto next = reader.next();
        ASSERT_TRUE(next.has_value()) << next.err().message;
        if (!next.value()) break;
        EXPECT_EQ(next.value()->size + 4, sizes[frames.size()]);
        auto d = decode_frame(*next.value());
        ASSERT_TRUE(d.has_value()) << d.err().message;
        frames.push_back(std::move(d).value());
      }
    }
    EXPECT_EQ(reader.buffered(), 0u);
    ASSERT_EQ(frames.size(), 20u);
    // Payloads of every frame are intact although the reader moved on.
    for (size_t k = 0; k < frames.size(); ++k) {
      if (k % 5 == 0) {
        EXPECT_TRUE(frames[k].hello);
      } else {
        std::vector<group_message> want;
        for (const auto& gm : msgs)
          if (gm.msg.type != message_type::heartbeat && gm.msg.type != message_type::heartbeat_resp)
            want.push_back(gm);
        for (const auto& gm : msgs)
          if (gm.msg.type == message_type::heartbeat || gm.msg.type == message_type::heartbeat_resp)
            want.push_back(gm);
        expect_same(frames[k].messages, want);
      }
    }
  }
}

TEST(raft_rpc_codec, reader_reuses_its_chunk_once_no_frame_refers_to_it) {
  frame_reader reader(1 << 20, 4096);
  const std::string frame = encode_frame({}, {}).to_string();
  std::span<char> first = reader.prepare();
  std::memcpy(first.data(), frame.data(), frame.size());
  reader.commit(frame.size());
  {
    auto v = reader.next();
    ASSERT_TRUE(v.has_value() && v.value());
    // A frame still refers to the chunk: the reader goes on after it.
    EXPECT_EQ(reader.prepare().data(), first.data() + frame.size());
  }
  EXPECT_EQ(reader.prepare().data(), first.data());
}

TEST(raft_rpc_codec, reader_refuses_oversized_and_undersized_frames) {
  auto feed = [](frame_reader& r, const std::string& s) {
    std::span<char> room = r.prepare();
    std::memcpy(room.data(), s.data(), s.size());
    r.commit(s.size());
    return r.next();
  };
  {
    frame_reader r(1024);
    std::string s(4, '\0');
    s[0] = static_cast<char>(0xfd);
    s[1] = 0x03;  // 1021 + 4 = 1025 bytes
    auto n = feed(r, s);
    ASSERT_FALSE(n.has_value());
    EXPECT_EQ(n.err().code, errc::frame_too_large);
    EXPECT_NE(n.err().message.find("1025"), std::string::npos) << n.err().message;
  }
  {
    frame_reader r(1024);
    std::string s("\xfc\x03\0\0", 4);  // exactly 1024 bytes: fine, waits for the rest
    auto n = feed(r, s);
    ASSERT_TRUE(n.has_value());
    EXPECT_FALSE(n.value());
  }
  {
    frame_reader r(1024);
    auto n = feed(r, std::string("\x03\0\0\0abc", 7));
    ASSERT_FALSE(n.has_value());
    EXPECT_EQ(n.err().code, errc::malformed);
  }
}

// ---- decoder errors ------------------------------------------------------------

std::shared_ptr<const std::vector<char>> raw_frame(const std::string& header, const std::string& data,
                                                   int64_t header_len_delta = 0) {
  std::string out(8, '\0');
  const uint32_t frame_len = static_cast<uint32_t>(4 + header.size() + data.size());
  const uint32_t header_len = static_cast<uint32_t>(static_cast<int64_t>(header.size()) + header_len_delta);
  for (int k = 0; k < 4; ++k) {
    out[k] = static_cast<char>(frame_len >> (8 * k));
    out[4 + k] = static_cast<char>(header_len >> (8 * k));
  }
  out += header;
  out += data;
  return std::make_shared<const std::vector<char>>(out.begin(), out.end());
}

std::shared_ptr<const std::vector<char>> raw_frame(const wire::Frame& f, const std::string& data = "") {
  return raw_frame(f.SerializeAsString(), data);
}

void expect_error(std::shared_ptr<const std::vector<char>> frame, errc code, const std::string& needle) {
  auto d = decode_frame(std::move(frame), 1 << 20);
  ASSERT_FALSE(d.has_value()) << "decoded although it should not: " << needle;
  EXPECT_EQ(d.err().code, code) << d.err().message;
  EXPECT_NE(d.err().message.find(needle), std::string::npos) << "'" << d.err().message << "' lacks '" << needle << "'";
}

wire::Frame one_message(const std::function<void(wire::GroupMessage&)>& edit) {
  wire::Frame f;
  wire::GroupMessage* m = f.mutable_raft()->add_messages();
  m->set_type(wire::APPEND);
  m->set_from(1);
  m->set_to(2);
  m->set_term(3);
  edit(*m);
  return f;
}

TEST(raft_rpc_codec, decoder_rejects_bad_lengths) {
  expect_error(std::make_shared<const std::vector<char>>(3, '\0'), errc::malformed, "shorter than its length field");
  auto good = raw_frame(wire::Frame());
  std::vector<char> longer(*good);
  longer.push_back('x');
  expect_error(std::make_shared<const std::vector<char>>(longer), errc::malformed, "length field says 4 bytes, the buffer holds 5");
  {
    auto d = decode_frame(raw_frame(std::string(2000, '\0'), ""), 1024);
    ASSERT_FALSE(d.has_value());
    EXPECT_EQ(d.err().code, errc::frame_too_large);
  }
  {
    const char body[3] = {0, 0, 0};
    auto d = decode_frame(frame_view{nullptr, body, 3});
    ASSERT_FALSE(d.has_value());
    EXPECT_EQ(d.err().code, errc::malformed);
  }
  expect_error(raw_frame("", "data", 5), errc::malformed, "header length 5 exceeds the frame's 4 bytes");
  expect_error(raw_frame(std::string("\xff\xff\xff", 3), ""), errc::malformed, "not a valid protobuf Frame");
}

TEST(raft_rpc_codec, decoder_rejects_bad_hellos) {
  wire::Frame f;
  f.mutable_hello()->set_node_id(1);
  f.mutable_hello()->set_target_node_id(2);
  ASSERT_TRUE(decode_frame(raw_frame(f), 1 << 20).has_value());
  wire::Frame with_raft = f;
  with_raft.mutable_raft();
  expect_error(raw_frame(with_raft), errc::invalid, "hello frame carries");
  wire::Frame with_app = f;
  with_app.add_app();
  expect_error(raw_frame(with_app), errc::invalid, "hello frame carries");
  wire::Frame zero = f;
  zero.mutable_hello()->set_node_id(0);
  expect_error(raw_frame(zero), errc::invalid, "node id 0");
  zero = f;
  zero.mutable_hello()->set_target_node_id(0);
  expect_error(raw_frame(zero), errc::invalid, "node id 0");
}

TEST(raft_rpc_codec, decoder_rejects_bad_messages) {
  expect_error(raw_frame(one_message([](auto& m) { m.set_type(static_cast<wire::MessageType>(11)); })),
               errc::invalid, "message 0: unknown message type 11");
  expect_error(raw_frame(one_message([](auto& m) { m.set_type(static_cast<wire::MessageType>(-1)); })),
               errc::invalid, "unknown message type -1");
  auto with_entry = [](std::function<void(wire::Entry&)> edit) {
    return one_message([&](wire::GroupMessage& m) {
      wire::Entry* e = m.add_entries();
      e->set_term(3);
      e->set_index(1);
      e->set_count(1);
      e->set_data_offset(0);
      e->set_data_len(4);
      edit(*e);
    });
  };
  ASSERT_TRUE(decode_frame(raw_frame(with_entry([](auto&) {}), "data"), 1 << 20).has_value());
  expect_error(raw_frame(with_entry([](auto& e) { e.set_count(0); }), "data"), errc::invalid,
               "message 0: entry 0: count 0");
  expect_error(raw_frame(with_entry([](auto& e) { e.set_index(0); }), "data"), errc::invalid, "index 0 with count 1");
  expect_error(raw_frame(with_entry([](auto& e) {
                 e.set_index(UINT64_MAX);
                 e.set_count(2);
               }), "data"),
               errc::invalid, "outside [1, 2^64)");
  expect_error(raw_frame(with_entry([](auto& e) { e.set_type(static_cast<wire::EntryType>(3)); }), "data"),
               errc::invalid, "unknown entry type 3");
  expect_error(raw_frame(with_entry([](auto&) {}), "dat"), errc::invalid,
               "entry 0: payload [0, +4) is outside the data section (3 bytes)");
  expect_error(raw_frame(with_entry([](auto& e) { e.set_data_offset(5); e.set_data_len(0); }), "data"),
               errc::invalid, "payload [5, +0)");
  expect_error(raw_frame(with_entry([](auto& e) { e.set_data_offset(2); e.set_data_len(UINT64_MAX); }), "data"),
               errc::invalid, "outside the data section");
}

TEST(raft_rpc_codec, decoder_rejects_bad_snapshots) {
  auto with_snap = [](std::function<void(wire::Snapshot&)> edit) {
    return raw_frame(one_message([&](wire::GroupMessage& m) {
                       m.set_type(wire::INSTALL_SNAPSHOT);
                       wire::Snapshot* s = m.mutable_snap();
                       s->add_voters(1);
                       s->add_voters(2);
                       s->add_learners(3);
                       s->set_data_len(2);
                       edit(*s);
                     }),
                     "sd");
  };
  ASSERT_TRUE(decode_frame(with_snap([](auto&) {}), 1 << 20).has_value());
  expect_error(with_snap([](auto& s) { s.add_voters(2); }), errc::invalid, "snapshot: voters and learners must be increasing");
  expect_error(with_snap([](auto& s) { s.add_learners(0); }), errc::invalid, "increasing node ids other than 0");
  expect_error(with_snap([](auto& s) { s.set_voters(0, 0); }), errc::invalid, "other than 0");
  expect_error(with_snap([](auto& s) { s.add_learners(2); s.set_learners(0, 2); s.set_learners(1, 3); }),
               errc::invalid, "node 2 is both voter and learner");
  expect_error(with_snap([](auto& s) { s.set_data_offset(1); }), errc::invalid, "snapshot: payload [1, +2)");
}

TEST(raft_rpc_codec, decoder_rejects_bad_heartbeat_blocks) {
  auto block = [](std::function<void(wire::Heartbeats&)> edit) {
    wire::Frame f;
    wire::Heartbeats* h = f.mutable_raft()->add_heartbeats();
    h->set_type(wire::HEARTBEAT);
    h->add_group(1);
    h->add_group(2);
    h->add_term(3);
    h->add_term(3);
    edit(*h);
    return raw_frame(f);
  };
  ASSERT_TRUE(decode_frame(block([](auto&) {}), 1 << 20).has_value());
  expect_error(block([](auto& h) { h.set_type(wire::APPEND); }), errc::invalid,
               "heartbeat block 0: type 4 is not a heartbeat");
  expect_error(block([](auto& h) { h.add_term(4); }), errc::invalid, "columns of 3, 0 and 0 values for 2 groups");
  expect_error(block([](auto& h) { h.add_seq(4); }), errc::invalid, "columns of 2, 0 and 1 values");
  expect_error(block([](auto& h) { h.add_commit(1); h.add_commit(1); h.add_commit(1); }), errc::invalid,
               "columns of 2, 3 and 0");
}

}  // namespace
}  // namespace sluice::raft::rpc
