#include "broker.h"

#include "cluster_config.h"

#include <unistd.h>

namespace sluice::kafka {

using sdk::task;

task<void> run_all(std::vector<std::function<task<void>()>> fns) {
  if (fns.size() == 1) {
    co_await fns[0]();
    co_return;
  }
  sdk::gate g;
  for (auto& fn : fns) {
    sdk::spawn([](std::function<task<void>()>& fn, sdk::gate::holder) -> task<void> { co_await fn(); }(
        fn, g.try_enter()));
  }
  co_await g.close();
}

task<void> broker::on_owner(const std::string& topic, int32_t partition,
                            std::function<task<void>(partition_table&)> fn) {
  const uint32_t owner = shard_of(topic, partition, sdk::shard_count());
  (void)co_await invoker.run_on(owner, [&]() -> task<void> { co_await fn(shards.local().parts); });
}

task<void> broker::on_group(const std::string& group_id, std::function<task<void>(group_coordinator&)> fn) {
  const topic_info* t = image()->find(offsets_topic);
  const int32_t p = group_partition(group_id, t ? t->partitions : cfg.offsets_topic_num_partitions);
  const uint32_t owner = shard_of(offsets_topic, p, sdk::shard_count());
  (void)co_await invoker.run_on(owner, [&]() -> task<void> { co_await fn(shards.local().groups); });
}

task<void> broker::on_controller(std::function<task<void>(topic_manager&)> fn) {
  (void)co_await invoker.run_on(0, [&]() -> task<void> { co_await fn(*topics); });
}

bool broker::leader_key_current(const metadata_image& img, const std::string& key) {
  const size_t first = key.find('\0'), last = key.rfind('\0');  // topic \0 partition \0 revision
  const topic_info* t = img.find(key.substr(0, first));
  return t != nullptr && key.compare(last + 1, std::string::npos, std::to_string(t->revision)) == 0;
}

namespace {

// Cluster mode: leader and ISR entries of topics the image no longer has
// (deleted, or re-created under a new revision) go with the image.
void prune_leaders(shard_state& sh, const metadata_image& img) {
  const auto stale = [&img](const auto& entry) { return !broker::leader_key_current(img, entry.first); };
  std::erase_if(sh.leaders, stale);
  std::erase_if(sh.in_sync, stale);
}

}  // namespace

task<void> broker::publish(image_ptr img) {
  std::vector<std::function<task<void>()>> work;
  for (uint32_t s = 0; s < sdk::shard_count(); ++s) {
    work.push_back([this, s, img]() -> task<void> {
      (void)co_await invoker.run_on(s, [&]() -> task<void> {
        shard_state& sh = shards.local();
        sh.image = img;
        prune_leaders(sh, *img);
        sh.cfg = apply_live_cluster_config(cfg, img->cluster_config);
        co_await sh.parts.apply_image(img);
      });
    });
  }
  co_await run_all(std::move(work));
}

std::pair<int32_t, int32_t> broker::leader_of(const std::string& topic, int32_t partition) {
  const topic_info* t = image()->find(topic);
  if (!t) return {-1, -1};
  const auto& leaders = local().leaders;
  auto it = leaders.find(leader_key(topic, partition, t->revision));
  return it == leaders.end() ? std::pair<int32_t, int32_t>{-1, -1} : it->second;
}

std::vector<int32_t> broker::in_sync_of(const std::string& topic, int32_t partition) {
  const topic_info* t = image()->find(topic);
  if (!t) return {};
  const std::string key = leader_key(topic, partition, t->revision);
  const auto& leaders = local().leaders;
  const auto lead = leaders.find(key);
  const auto& isrs = local().in_sync;
  const auto isr = isrs.find(key);
  if (lead == leaders.end() || isr == isrs.end() || lead->second.first < 0 || isr->second.first != lead->second.second)
    return {};
  return isr->second.second;
}

void broker::note_in_sync(const std::string& key, int32_t term, std::vector<int32_t> isr) {
  auto [it, fresh] = local().in_sync.try_emplace(key, term, std::vector<int32_t>{});
  if (!fresh && it->second.first > term) return;
  it->second = {term, std::move(isr)};
}

std::pair<std::string, int32_t> broker::advertised(size_t listener) const {
  const listener_config& l = cfg.listeners.at(listener);
  if (!l.advertised_host.empty()) return {l.advertised_host, l.advertised_port};
  const int32_t port = listener < bound_ports.size() && bound_ports[listener] ? bound_ports[listener] : l.address.port();
  std::string host = l.address.to_string();
  host = host.substr(0, host.rfind(':'));
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host == "0.0.0.0" || host == "::") {
    char name[256] = {};
    if (::gethostname(name, sizeof(name) - 1) == 0 && name[0]) host = name;
  }
  return {host, port};
}

task<void> broker::wait_for_data(std::map<uint32_t, std::vector<fetch_position>> by_shard, uint64_t timeout_ms) {
  if (by_shard.size() == 1) {
    const uint32_t s = by_shard.begin()->first;
    (void)co_await invoker.run_on(s, [&]() -> task<void> {
      co_await shards.local().parts.wait_for_data(by_shard.begin()->second, timeout_ms);
    });
    co_return;
  }
  // Several shards: return when the first one sees data. The others run
  // to their own timeout (bounded by max_wait_ms); their state is shared.
  struct shared {
    sdk::event done;
    std::map<uint32_t, std::vector<fetch_position>> positions;
  };
  auto st = std::make_shared<shared>();
  st->positions = std::move(by_shard);
  shard_state& here = local();
  bool waiting = false;
  for (auto& [s, list] : st->positions) {
    auto holder = here.tasks.try_enter();
    if (!holder) break;
    waiting = true;
    sdk::spawn([](broker* b, std::shared_ptr<shared> st, uint32_t s, uint64_t timeout_ms,
                  sdk::gate::holder) -> task<void> {
      (void)co_await b->invoker.run_on(s, [&]() -> task<void> {
        co_await b->shards.local().parts.wait_for_data(st->positions[s], timeout_ms);
      });
      st->done.set();
    }(this, st, s, timeout_ms, std::move(holder)));
  }
  if (waiting) co_await st->done.wait();
}

task<image_ptr> broker::auto_create(const std::vector<std::string>& names) {
  co_await on_controller([&](topic_manager& tm) -> task<void> {
    for (const auto& n : names) {
      create_topic_spec spec;
      spec.name = n;
      const op_result r = co_await tm.create_topic(spec);
      if (r.error != error_code::none && r.error != error_code::topic_already_exists)
        sdk::log_warn("kafka: auto-creating topic " + n + ": " + r.message);
      else if (r.error == error_code::none)
        sdk::log_info("kafka: auto-created topic " + n);
    }
  });
  co_return image();
}

}  // namespace sluice::kafka
