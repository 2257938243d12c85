// W2 against an MQTT broker: one topic per group, every member subscribed with QoS 1, each
// message published QoS 1 to the group's topic (the broker fans it out). Members ignore the
// copy of their own messages (MQTT 3.1.1 has no "no local").
#include <mosquitto.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <random>

#include "bench/event_loop.h"
#include "bench/mqtt_loop.h"
#include "bench/w2.h"

namespace meshchat::bench {
namespace {

class MqttGroupDriver;

struct Member {
  MqttGroupDriver* d = nullptr;
  size_t index = 0;
  int group = 0;
  mosquitto* m = nullptr;
  bool ready = false;
};

class MqttGroupDriver final : public GroupDriver {
 public:
  MqttGroupDriver(std::string host, int port, size_t body, std::vector<long> pids)
      : host_(std::move(host)), port_(port), body_(body), pids_(std::move(pids)) {
    mosquitto_lib_init();
  }
  ~MqttGroupDriver() override {
    for (auto& c : members_) {
      mosquitto_disconnect(c->m);
      mosquitto_destroy(c->m);
    }
    mosquitto_lib_cleanup();
  }
  std::string name() const override { return "mosquitto"; }

  bool Setup(int groups, int size) override {
    size_ = size;
    std::random_device rd;
    run_ = std::to_string(rd() % 1000000);
    for (int i = 0; i < groups * size; ++i) {
      auto c = std::make_unique<Member>();
      c->d = this;
      c->index = static_cast<size_t>(i);
      c->group = i / size;
      const std::string id = "lgw" + run_ + "-" + std::to_string(i);
      c->m = mosquitto_new(id.c_str(), false, c.get());
      if (!c->m) return false;
      mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
      mosquitto_max_inflight_messages_set(c->m, 0);
      mosquitto_connect_callback_set(c->m, [](mosquitto* m, void* obj, int rc) {
        auto* c = static_cast<Member*>(obj);
        if (rc == 0) mosquitto_subscribe(m, nullptr, c->d->Topic(c->group).c_str(), 1);
      });
      mosquitto_subscribe_callback_set(c->m, [](mosquitto*, void* obj, int, int, const int*) {
        auto* c = static_cast<Member*>(obj);
        if (!c->ready) ++c->d->ready_;
        c->ready = true;
      });
      mosquitto_publish_callback_set(c->m, [](mosquitto*, void* obj, int) {
        auto* c = static_cast<Member*>(obj);
        if (c->d->stats_) ++c->d->stats_->acked;
      });
      mosquitto_message_callback_set(c->m, &MqttGroupDriver::OnMessage);
      if (mosquitto_connect(c->m, host_.c_str(), port_, 60) != MOSQ_ERR_SUCCESS) {
        std::cerr << "loadgen (mqtt w2): connect failed\n";
        return false;
      }
      loop_.Add(c->m);
      members_.push_back(std::move(c));
    }
    W2Stats ignore;
    const int64_t deadline = NowNs() + 60'000'000'000LL;
    while (ready_ < members_.size() && NowNs() < deadline) Poll(10, ignore);
    return ready_ == members_.size();
  }

  void Send(int group, int member, uint64_t k, int64_t sched_ns) override {
    const size_t i = static_cast<size_t>(group * size_ + member);
    std::string payload(std::max<size_t>(body_, 25), 'x');
    payload[0] = 'M';
    std::memcpy(payload.data() + 1, &sched_ns, 8);
    std::memcpy(payload.data() + 9, &k, 8);
    const uint64_t from = i;
    std::memcpy(payload.data() + 17, &from, 8);
    mosquitto_publish(members_[i]->m, nullptr, Topic(group).c_str(),
                      static_cast<int>(payload.size()), payload.data(), 1, false);
  }

  void Poll(int timeout_ms, W2Stats& stats) override {
    stats_ = &stats;
    stats.errors += static_cast<uint64_t>(loop_.Poll(timeout_ms));
  }

  std::vector<long> ServerPids() const override { return pids_; }
  std::string Topic(int g) const { return "g/" + run_ + "/" + std::to_string(g); }

 private:
  static void OnMessage(mosquitto*, void* obj, const mosquitto_message* msg) {
    auto* c = static_cast<Member*>(obj);
    if (msg->payloadlen < 25 || !c->d->stats_) return;
    const char* p = static_cast<const char*>(msg->payload);
    uint64_t from;
    std::memcpy(&from, p + 17, 8);
    if (from == c->index) return;  // our own message, echoed by the broker
    int64_t sched;
    std::memcpy(&sched, p + 1, 8);
    c->d->stats_->deliver.Record((NowNs() - sched) / 1000);
    ++c->d->stats_->deliveries;
  }

  std::string host_;
  int port_;
  size_t body_;
  std::vector<long> pids_;
  int size_ = 0;
  std::string run_;
  MqttLoop loop_;
  std::vector<std::unique_ptr<Member>> members_;
  size_t ready_ = 0;
  W2Stats* stats_ = nullptr;
};

}  // namespace

std::unique_ptr<GroupDriver> MakeMqttGroupDriver(const std::string& host, int port,
                                                 size_t body_bytes, std::vector<long> pids) {
  return std::make_unique<MqttGroupDriver>(host, port, body_bytes, std::move(pids));
}

}  // namespace meshchat::bench
