// One member of a librdkafka consumer group, run as its own process by librdkafka_groups_test.py (which
// SIGKILLs and restarts it). It subscribes to one topic, consumes, commits synchronously and logs, one
// line each, flushed at once so a SIGKILL loses nothing that was logged:
//
//   A <p>,<p>,...        an assignment (eager rebalance: the whole new assignment)
//   R                    the assignment was revoked
//   C <p> <offset>       a consumed record
//   K <p> <offset>       a commit the coordinator acknowledged: <offset> is the next offset to read
//   E <text>             a consumer error (logged, the consumer goes on, as an application would)
//
//   group_consumer BOOTSTRAP GROUP TOPIC LOGFILE [INSTANCE_ID]
//
// INSTANCE_ID, when given and non-empty, makes it a static member (group.instance.id, KIP-345). SIGTERM
// makes it commit, close (LeaveGroup for a dynamic member) and exit 0.
#include <librdkafka/rdkafka.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>

namespace {

volatile std::sig_atomic_t stop_requested = 0;
FILE* out = nullptr;

void on_term(int) { stop_requested = 1; }

void line(const std::string& s) {
  std::fputs(s.c_str(), out);
  std::fputc('\n', out);
  std::fflush(out);
}

void set(rd_kafka_conf_t* c, const char* k, const std::string& v) {
  char err[512];
  if (rd_kafka_conf_set(c, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    std::fprintf(stderr, "group_consumer: %s=%s: %s\n", k, v.c_str(), err);
    std::exit(2);
  }
}

void log_commits(rd_kafka_resp_err_t err, const rd_kafka_topic_partition_list_t* offs) {
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (err != RD_KAFKA_RESP_ERR__NO_OFFSET) line(std::string("E commit: ") + rd_kafka_err2name(err));
    return;
  }
  for (int i = 0; offs && i < offs->cnt; ++i) {
    const auto& p = offs->elems[i];
    if (p.err)
      line("E commit " + std::to_string(p.partition) + ": " + rd_kafka_err2name(p.err));
    else if (p.offset >= 0)
      line("K " + std::to_string(p.partition) + " " + std::to_string(p.offset));
  }
}

void commit(rd_kafka_t* rk) {
  rd_kafka_topic_partition_list_t* pos = nullptr;
  if (rd_kafka_assignment(rk, &pos) != RD_KAFKA_RESP_ERR_NO_ERROR || !pos) return;
  if (pos->cnt > 0 && rd_kafka_position(rk, pos) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    // Commit exactly the positions reached (offset after the last record handed to us); skip partitions
    // with no position yet.
    rd_kafka_topic_partition_list_t* c = rd_kafka_topic_partition_list_new(pos->cnt);
    for (int i = 0; i < pos->cnt; ++i)
      if (pos->elems[i].offset >= 0)
        rd_kafka_topic_partition_list_add(c, pos->elems[i].topic, pos->elems[i].partition)->offset =
            pos->elems[i].offset;
    if (c->cnt > 0) {
      rd_kafka_resp_err_t err = rd_kafka_commit(rk, c, 0);
      log_commits(err, c);
    }
    rd_kafka_topic_partition_list_destroy(c);
  }
  rd_kafka_topic_partition_list_destroy(pos);
}

void rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void*) {
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    std::string s = "A ";
    for (int i = 0; i < parts->cnt; ++i) s += (i ? "," : "") + std::to_string(parts->elems[i].partition);
    line(s);
    rd_kafka_assign(rk, parts);
  } else {
    commit(rk);  // an eager revoke: commit what was consumed before giving the partitions away
    line("R");
    rd_kafka_assign(rk, nullptr);
  }
}

int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: group_consumer BOOTSTRAP GROUP TOPIC LOGFILE [INSTANCE_ID]\n");
    return 2;
  }
  out = std::fopen(argv[4], "a");
  if (!out) {
    std::perror(argv[4]);
    return 2;
  }
  std::signal(SIGTERM, on_term);
  std::signal(SIGINT, on_term);

  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  set(conf, "bootstrap.servers", argv[1]);
  set(conf, "group.id", argv[2]);
  if (argc > 5 && argv[5][0]) set(conf, "group.instance.id", argv[5]);
  set(conf, "enable.auto.commit", "false");
  set(conf, "auto.offset.reset", "earliest");
  set(conf, "session.timeout.ms", "6000");  // Kafka's group.min.session.timeout.ms
  set(conf, "heartbeat.interval.ms", "500");
  set(conf, "max.poll.interval.ms", "15000");
  set(conf, "partition.assignment.strategy", "range");
  set(conf, "check.crcs", "true");
  set(conf, "reconnect.backoff.max.ms", "500");
  rd_kafka_conf_set_rebalance_cb(conf, rebalance);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) {
    std::fprintf(stderr, "group_consumer: %s\n", err);
    return 2;
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, argv[3], RD_KAFKA_PARTITION_UA);
  if (rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics)) {
    std::fprintf(stderr, "group_consumer: subscribe: %s\n", rd_kafka_err2str(e));
    return 2;
  }
  rd_kafka_topic_partition_list_destroy(topics);

  int64_t last_commit = now_ms();
  int uncommitted = 0;
  while (!stop_requested) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m) {
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        line("C " + std::to_string(m->partition) + " " + std::to_string(m->offset));
        ++uncommitted;
      } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        line(std::string("E ") + rd_kafka_err2name(m->err) + ": " + rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
    }
    if (uncommitted > 0 && (uncommitted >= 50 || now_ms() - last_commit >= 200)) {
      commit(rk);
      uncommitted = 0;
      last_commit = now_ms();
    }
  }
  commit(rk);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  line("X");
  std::fclose(out);
  return 0;
}
