// The storage plugin loaded as a real .so by the plugin host, driven over
// the channels from another shard exactly as the Kafka plugin will: open,
// append (with and without flush), read, timestamp lookup, prefix
// truncation, close and reopen, remove, and malformed requests; and as the
// Raft plugin will: replica appends, leader epochs, suffix truncation,
// the epoch table, a reset past the log end.
#include "core/config/node_config.h"
#include "core/plugin/host.h"
#include "core/plugin/loader.h"
#include "sluice/storage.pb.h"

#include <sluice/sdk/runtime.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <future>

namespace sluice {
namespace {

namespace fs = std::filesystem;
using namespace sluice::storage;

std::string make_batch(int32_t records, size_t value_bytes, int64_t ts);

class storage_service : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "storage_service_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    _dir = fs::absolute(tmpl);
  }
  void TearDown() override { fs::remove_all(_dir); }

  // Starts a two-shard host with the storage plugin and runs body on shard 0.
  void run(std::function<sdk::task<void>()> body) {
    config::node_config cfg;
    cfg.file = "test.yaml";
    cfg.shards = 2;
    cfg.pin_threads = false;
    cfg.ring_entries = 256;
    config::plugin_entry e;
    e.name = "storage";
    e.path = std::string(SLUICE_PLUGIN_DIR) + "/libsluice_storage.so";
    e.key = "plugins[0]";
    e.origin = "test.yaml:2";
    e.config_yaml = "segment_bytes: 65536\nretention_check_interval_ms: 20\ncache_bytes: 1048576\n";
    cfg.plugins = {e};
    auto loaded = plugin::load_all(cfg);
    ASSERT_TRUE(loaded.has_value()) << loaded.err().message;
    plugin::host h(cfg, _dir.string(), std::move(loaded).value());
    ASSERT_TRUE(h.configure().has_value());
    ASSERT_TRUE(h.start().has_value());
    std::promise<void> done;
    h.exec().run_from_outside(0, [&] {
      sdk::spawn([](std::function<sdk::task<void>()>& body, std::promise<void>& done) -> sdk::task<void> {
        co_await body();
        done.set_value();
      }(body, done));
    });
    done.get_future().wait();
    h.stop();
  }

  static PartitionId id(const std::string& topic, int32_t partition, int64_t revision = 1) {
    PartitionId p;
    p.set_topic(topic);
    p.set_partition(partition);
    p.set_revision(revision);
    return p;
  }
  // Calls storage.log on `shard` with a protobuf request (and batches).
  static sdk::task<sdk::reply> call(uint32_t shard, StorageMessageType type, const google::protobuf::MessageLite& m,
                                    sdk::buffer buf = {}) {
    sdk::message req;
    req.type = type;
    m.SerializeToString(&req.bytes);
    req.buf = std::move(buf);
    co_return co_await sdk::call(sdk::lookup_service("storage.log"), shard, req);
  }
  static sdk::buffer batches(int n, int64_t ts) {
    std::string all;
    for (int i = 0; i < n; ++i) all += make_batch(2, 200, ts + i);
    sdk::buffer b = sdk::buffer::allocate(all.size());
    std::memcpy(b.data(), all.data(), all.size());
    b.set_size(all.size());
    return b;
  }
  static std::string error_text(const sdk::reply& r) {
    Error e;
    e.ParseFromString(r.msg.bytes);
    return e.message();
  }

  fs::path _dir;
};

}  // namespace
}  // namespace sluice

#include "record_batch.h"

namespace sluice {
namespace {

std::string make_batch(int32_t records, size_t value_bytes, int64_t ts) {
  return storage::make_test_batch(records, value_bytes, ts);
}

TEST_F(storage_service, open_append_read_and_reopen) {
  run([&]() -> sdk::task<void> {
    OpenRequest open;
    *open.mutable_id() = id("orders", 3);
    sdk::reply r = co_await call(1, STORAGE_OPEN, open);
    EXPECT_EQ(r.status, 0) << error_text(r);

    AppendRequest app;
    *app.mutable_id() = id("orders", 3);
    app.set_flush(true);
    r = co_await call(1, STORAGE_APPEND, app, batches(3, 1000));
    EXPECT_EQ(r.status, 0) << error_text(r);
    AppendReply ar;
    EXPECT_TRUE(ar.ParseFromString(r.msg.bytes));
    EXPECT_EQ(ar.base_offset(), 0);
    EXPECT_EQ(ar.last_offset(), 5);
    EXPECT_EQ(ar.batches(), 3u);
    EXPECT_EQ(ar.flushed_offset(), 6);  // acks=all: durable before the reply

    app.set_flush(false);
    r = co_await call(1, STORAGE_APPEND, app, batches(2, 2000));
    EXPECT_EQ(r.status, 0);

    ReadRequest rd;
    *rd.mutable_id() = id("orders", 3);
    rd.set_offset(2);
    rd.set_max_bytes(1 << 20);
    r = co_await call(1, STORAGE_READ, rd);
    EXPECT_EQ(r.status, 0) << error_text(r);
    ReadReply rr;
    EXPECT_TRUE(rr.ParseFromString(r.msg.bytes));
    EXPECT_EQ(rr.first_offset(), 2);
    EXPECT_EQ(rr.next_offset(), 10);
    EXPECT_EQ(rr.state().next_offset(), 10);
    EXPECT_TRUE(r.msg.buf);
    if (r.msg.buf) {
      // The bytes are whole v2 batches with their assigned offsets.
      size_t at = 0;
      int64_t expect = 2;
      while (at < r.msg.buf.size()) {
        storage::batch_header h;
        EXPECT_EQ(storage::check_batch(r.msg.buf.data() + at, r.msg.buf.size() - at, 1 << 20, &h),
                  storage::batch_check::ok);
        EXPECT_EQ(h.base_offset, expect);
        expect = h.last_offset() + 1;
        at += h.size_bytes();
      }
      EXPECT_EQ(expect, 10);
    }

    TimestampRequest ts;
    *ts.mutable_id() = id("orders", 3);
    ts.set_timestamp(2000);
    r = co_await call(1, STORAGE_OFFSET_FOR_TIME, ts);
    TimestampReply tr;
    EXPECT_TRUE(tr.ParseFromString(r.msg.bytes));
    EXPECT_EQ(tr.offset(), 6);

    TruncateRequest tq;
    *tq.mutable_id() = id("orders", 3);
    tq.set_offset(4);
    r = co_await call(1, STORAGE_TRUNCATE_PREFIX, tq);
    LogState state;
    EXPECT_TRUE(state.ParseFromString(r.msg.bytes));
    EXPECT_EQ(state.start_offset(), 4);

    PartitionRequest pr;
    *pr.mutable_id() = id("orders", 3);
    r = co_await call(1, STORAGE_CLOSE, pr);
    EXPECT_EQ(r.status, 0);
    // Closed: unknown until opened again, then everything is still there.
    r = co_await call(1, STORAGE_STATE, pr);
    EXPECT_EQ(r.status, STORAGE_STATUS_UNKNOWN_PARTITION);
    r = co_await call(1, STORAGE_OPEN, open);
    EXPECT_TRUE(state.ParseFromString(r.msg.bytes));
    EXPECT_EQ(state.start_offset(), 4);
    EXPECT_EQ(state.next_offset(), 10);
    EXPECT_EQ(state.flushed_offset(), 10);
  });
  // And across a restart of the whole plugin.
  run([&]() -> sdk::task<void> {
    OpenRequest open;
    *open.mutable_id() = id("orders", 3);
    sdk::reply r = co_await call(1, STORAGE_OPEN, open);
    LogState state;
    EXPECT_TRUE(state.ParseFromString(r.msg.bytes));
    EXPECT_EQ(state.next_offset(), 10);
    PartitionRequest pr;
    *pr.mutable_id() = id("orders", 3);
    r = co_await call(1, STORAGE_REMOVE, pr);
    EXPECT_EQ(r.status, 0) << error_text(r);
  });
  EXPECT_FALSE(fs::exists(_dir / "storage" / "orders" / "3_1"));
}

TEST_F(storage_service, bad_requests_get_errors_not_crashes) {
  run([&]() -> sdk::task<void> {
    OpenRequest open;
    *open.mutable_id() = id("../etc", 0);
    sdk::reply r = co_await call(0, STORAGE_OPEN, open);
    EXPECT_EQ(r.status, STORAGE_STATUS_BAD_REQUEST);
    EXPECT_NE(error_text(r).find("invalid partition"), std::string::npos);

    AppendRequest app;
    *app.mutable_id() = id("nowhere", 0);
    r = co_await call(0, STORAGE_APPEND, app, batches(1, 0));
    EXPECT_EQ(r.status, STORAGE_STATUS_UNKNOWN_PARTITION);

    sdk::message junk;
    junk.type = STORAGE_READ;
    junk.bytes = "\xff\xff\xff garbage";
    r = co_await sdk::call(sdk::lookup_service("storage.log"), 0, junk);
    EXPECT_EQ(r.status, STORAGE_STATUS_BAD_REQUEST);
    junk.type = 999;
    r = co_await sdk::call(sdk::lookup_service("storage.log"), 0, junk);
    EXPECT_EQ(r.status, STORAGE_STATUS_BAD_REQUEST);

    *open.mutable_id() = id("t", 0);
    r = co_await call(0, STORAGE_OPEN, open);
    EXPECT_EQ(r.status, 0);
    *app.mutable_id() = id("t", 0);
    sdk::buffer bad = batches(1, 0);
    bad.data()[30] ^= 0xff;
    r = co_await call(0, STORAGE_APPEND, app, bad);
    EXPECT_EQ(r.status, STORAGE_STATUS_INVALID_BATCH);
    EXPECT_NE(error_text(r).find("CRC32C"), std::string::npos);
    ReadRequest rd;
    *rd.mutable_id() = id("t", 0);
    rd.set_offset(5);
    rd.set_max_bytes(100);
    r = co_await call(0, STORAGE_READ, rd);
    EXPECT_EQ(r.status, STORAGE_STATUS_OFFSET_OUT_OF_RANGE);
  });
}

// The batches of a reply's buffer, checked (CRC included).
std::vector<storage::batch_header> batch_headers(const sdk::buffer& buf) {
  std::vector<storage::batch_header> out;
  size_t at = 0;
  while (buf && at < buf.size()) {
    storage::batch_header h;
    EXPECT_EQ(storage::check_batch(buf.data() + at, buf.size() - at, 1 << 20, &h), storage::batch_check::ok);
    out.push_back(h);
    at += h.size_bytes();
  }
  return out;
}

TEST_F(storage_service, raft_replica_appends_epochs_and_truncations) {
  run([&]() -> sdk::task<void> {
    const PartitionId pid = id("raft", 0);
    OpenRequest open;
    *open.mutable_id() = pid;
    sdk::reply r = co_await call(1, STORAGE_OPEN, open);
    EXPECT_EQ(r.status, 0) << error_text(r);
    LogState state;
    EXPECT_TRUE(state.ParseFromString(r.msg.bytes));
    EXPECT_EQ(state.last_epoch(), -1);

    // A leader appends with its term stamped: offsets 0..5, epoch 2.
    AppendRequest app;
    *app.mutable_id() = pid;
    app.set_leader_epoch(2);
    r = co_await call(1, STORAGE_APPEND, app, batches(3, 1000));
    EXPECT_EQ(r.status, 0) << error_text(r);

    // A follower's replica append with the leader's offsets and stamps.
    sdk::buffer replica = batches(2, 2000);
    for (int i = 0; i < 2; ++i) {
      uint8_t* b = replica.data() + i * (replica.size() / 2);
      storage::set_base_offset(b, 6 + 2 * i);
      storage::set_leader_epoch(b, 4);
    }
    AppendRequest rep;
    *rep.mutable_id() = pid;
    rep.set_keep_offsets(true);
    rep.set_flush(true);
    r = co_await call(1, STORAGE_APPEND, rep, replica);
    EXPECT_EQ(r.status, 0) << error_text(r);
    AppendReply ar;
    EXPECT_TRUE(ar.ParseFromString(r.msg.bytes));
    EXPECT_EQ(ar.base_offset(), 6);
    EXPECT_EQ(ar.last_offset(), 9);
    EXPECT_EQ(ar.flushed_offset(), 10);

    // Out of sequence: refused, naming the offsets.
    sdk::buffer late = batches(1, 3000);
    storage::set_base_offset(late.data(), 12);
    r = co_await call(1, STORAGE_APPEND, rep, late);
    EXPECT_EQ(r.status, STORAGE_STATUS_OFFSET_OUT_OF_RANGE);
    EXPECT_NE(error_text(r).find("base offset 12"), std::string::npos) << error_text(r);
    EXPECT_NE(error_text(r).find("next offset is 10"), std::string::npos) << error_text(r);

    PartitionRequest pr;
    *pr.mutable_id() = pid;
    r = co_await call(1, STORAGE_EPOCHS, pr);
    EXPECT_EQ(r.status, 0) << error_text(r);
    EpochTable table;
    EXPECT_TRUE(table.ParseFromString(r.msg.bytes));
    EXPECT_EQ(table.entries_size(), 2);
    if (table.entries_size() == 2) {
      EXPECT_EQ(table.entries(0).epoch(), 2);
      EXPECT_EQ(table.entries(0).start_offset(), 0);
      EXPECT_EQ(table.entries(1).epoch(), 4);
      EXPECT_EQ(table.entries(1).start_offset(), 6);
    }
    r = co_await call(1, STORAGE_STATE, pr);
    EXPECT_TRUE(state.ParseFromString(r.msg.bytes));
    EXPECT_EQ(state.last_epoch(), 4);
    EXPECT_EQ(state.next_offset(), 10);

    // The stamps are in the stored batches.
    ReadRequest rd;
    *rd.mutable_id() = pid;
    rd.set_max_bytes(1 << 20);
    r = co_await call(1, STORAGE_READ, rd);
    std::vector<int32_t> stamps;
    for (const auto& h : batch_headers(r.msg.buf)) stamps.push_back(h.leader_epoch);
    const std::vector<int32_t> want_stamps = {2, 2, 2, 4, 4};
    EXPECT_EQ(stamps, want_stamps);

    // Suffix truncation: not a batch boundary, out of range, then at 6.
    TruncateRequest tq;
    *tq.mutable_id() = pid;
    tq.set_offset(7);
    r = co_await call(1, STORAGE_TRUNCATE_SUFFIX, tq);
    EXPECT_EQ(r.status, STORAGE_STATUS_OFFSET_OUT_OF_RANGE);
    EXPECT_NE(error_text(r).find("nearest boundaries are 6 and 8"), std::string::npos) << error_text(r);
    tq.set_offset(11);
    r = co_await call(1, STORAGE_TRUNCATE_SUFFIX, tq);
    EXPECT_EQ(r.status, STORAGE_STATUS_OFFSET_OUT_OF_RANGE);
    EXPECT_NE(error_text(r).find("[0, 10]"), std::string::npos) << error_text(r);
    tq.set_offset(6);
    r = co_await call(1, STORAGE_TRUNCATE_SUFFIX, tq);
    EXPECT_EQ(r.status, 0) << error_text(r);
    EXPECT_TRUE(state.ParseFromString(r.msg.bytes));
    EXPECT_EQ(state.next_offset(), 6);
    EXPECT_EQ(state.flushed_offset(), 6);
    EXPECT_EQ(state.last_epoch(), 2);
    // The new leader's entries continue there.
    app.set_leader_epoch(5);
    r = co_await call(1, STORAGE_APPEND, app, batches(1, 4000));
    EXPECT_TRUE(ar.ParseFromString(r.msg.bytes));
    EXPECT_EQ(ar.base_offset(), 6);
    r = co_await call(1, STORAGE_EPOCHS, pr);
    EXPECT_TRUE(table.ParseFromString(r.msg.bytes));
    EXPECT_EQ(table.entries_size(), 2);
    if (table.entries_size() == 2) {
      EXPECT_EQ(table.entries(1).epoch(), 5);
    }

    // A reset: truncate_prefix past the end empties the log there.
    tq.set_offset(100);
    r = co_await call(1, STORAGE_TRUNCATE_PREFIX, tq);
    EXPECT_EQ(r.status, 0) << error_text(r);
    EXPECT_TRUE(state.ParseFromString(r.msg.bytes));
    EXPECT_EQ(state.start_offset(), 100);
    EXPECT_EQ(state.next_offset(), 100);
    EXPECT_EQ(state.last_epoch(), -1);
    sdk::buffer at100 = batches(1, 5000);
    storage::set_base_offset(at100.data(), 100);
    rep.set_leader_epoch(6);
    r = co_await call(1, STORAGE_APPEND, rep, at100);
    EXPECT_EQ(r.status, 0) << error_text(r);
    r = co_await call(1, STORAGE_STATE, pr);
    EXPECT_TRUE(state.ParseFromString(r.msg.bytes));
    EXPECT_EQ(state.next_offset(), 102);
    EXPECT_EQ(state.last_epoch(), 6);
    r = co_await call(1, STORAGE_CLOSE, pr);
    EXPECT_EQ(r.status, 0);
  });
  // Across a restart: the same state and table.
  run([&]() -> sdk::task<void> {
    OpenRequest open;
    *open.mutable_id() = id("raft", 0);
    sdk::reply r = co_await call(1, STORAGE_OPEN, open);
    LogState state;
    EXPECT_TRUE(state.ParseFromString(r.msg.bytes));
    EXPECT_EQ(state.start_offset(), 100);
    EXPECT_EQ(state.next_offset(), 102);
    EXPECT_EQ(state.last_epoch(), 6);
    PartitionRequest pr;
    *pr.mutable_id() = id("raft", 0);
    r = co_await call(1, STORAGE_EPOCHS, pr);
    EpochTable table;
    EXPECT_TRUE(table.ParseFromString(r.msg.bytes));
    EXPECT_EQ(table.entries_size(), 1);
    if (table.entries_size() == 1) {
      EXPECT_EQ(table.entries(0).epoch(), 6);
      EXPECT_EQ(table.entries(0).start_offset(), 100);
    }
  });
}

TEST_F(storage_service, malformed_raft_requests_get_errors) {
  run([&]() -> sdk::task<void> {
    OpenRequest open;
    *open.mutable_id() = id("m", 0);
    sdk::reply r = co_await call(0, STORAGE_OPEN, open);
    EXPECT_EQ(r.status, 0);
    AppendRequest app;
    *app.mutable_id() = id("m", 0);
    app.set_leader_epoch(-2);
    r = co_await call(0, STORAGE_APPEND, app, batches(1, 0));
    EXPECT_EQ(r.status, STORAGE_STATUS_BAD_REQUEST);
    EXPECT_NE(error_text(r).find("leader_epoch is -2"), std::string::npos) << error_text(r);
    // A replica append whose offsets do not start at the log end.
    app.clear_leader_epoch();
    app.set_keep_offsets(true);
    sdk::buffer b = batches(1, 0);
    storage::set_base_offset(b.data(), -5);
    r = co_await call(0, STORAGE_APPEND, app, b);
    EXPECT_EQ(r.status, STORAGE_STATUS_OFFSET_OUT_OF_RANGE);
    EXPECT_NE(error_text(r).find("-5"), std::string::npos) << error_text(r);
    // Suffix truncation below the start, epochs of an unknown partition, garbage.
    TruncateRequest tq;
    *tq.mutable_id() = id("m", 0);
    tq.set_offset(-1);
    r = co_await call(0, STORAGE_TRUNCATE_SUFFIX, tq);
    EXPECT_EQ(r.status, STORAGE_STATUS_OFFSET_OUT_OF_RANGE);
    PartitionRequest pr;
    *pr.mutable_id() = id("nowhere", 0);
    r = co_await call(0, STORAGE_EPOCHS, pr);
    EXPECT_EQ(r.status, STORAGE_STATUS_UNKNOWN_PARTITION);
    const std::vector<uint32_t> types = {STORAGE_EPOCHS, STORAGE_TRUNCATE_SUFFIX};
    for (uint32_t type : types) {
      sdk::message junk;
      junk.type = type;
      junk.bytes = "\xff\xff\xff garbage";
      r = co_await sdk::call(sdk::lookup_service("storage.log"), 0, junk);
      EXPECT_EQ(r.status, STORAGE_STATUS_BAD_REQUEST);
    }
  });
}

}  // namespace
}  // namespace sluice
