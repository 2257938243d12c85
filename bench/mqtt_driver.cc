// W1 against an MQTT broker (mosquitto), doing the same work as meshchat: every message is
// published QoS 1 to the recipient's topic (the broker's PUBACK is the "sent" tick), and the
// recipient publishes an application-level receipt QoS 1 back to the sender's topic.
// Clients run on our epoll loop through libmosquitto's external-loop API.
#include <mosquitto.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <random>
#include <unordered_map>

#include "bench/event_loop.h"
#include "bench/mqtt_loop.h"
#include "bench/proc_stats.h"
#include "bench/w1.h"
#include "bench/w3_w4.h"

namespace meshchat::bench {
namespace {

class MqttDriver;

struct MqttClient {
  MqttDriver* d = nullptr;
  size_t index = 0;
  mosquitto* m = nullptr;
  std::string user;
  int pair = 0;
  bool sender = false;
  bool ready = false;
  std::unordered_map<int, int64_t> inflight;  // mid -> scheduled time (senders)
};

class MqttDriver final : public ChatDriver {
 public:
  MqttDriver(std::string host, int port, size_t body, std::vector<long> pids)
      : host_(std::move(host)), port_(port), body_(body), pids_(std::move(pids)) {
    mosquitto_lib_init();
  }
  ~MqttDriver() override {
    for (auto& c : clients_) {
      if (c->m) {
        mosquitto_disconnect(c->m);
        mosquitto_destroy(c->m);
      }
    }
    mosquitto_lib_cleanup();
  }
  std::string name() const override { return "mosquitto"; }

  bool Setup(int pairs) override {
    std::random_device rd;
    const std::string run = std::to_string(rd() % 1000000);
    for (int i = 0; i < 2 * pairs; ++i) {
      auto c = std::make_unique<MqttClient>();
      c->d = this;
      c->index = static_cast<size_t>(i);
      c->sender = i < pairs;
      c->pair = i % pairs;
      c->user = std::string(c->sender ? "lgs" : "lgr") + run + "-" + std::to_string(c->pair);
      c->m = mosquitto_new(c->user.c_str(), /*clean_session=*/false, c.get());
      if (!c->m) return Fail("mosquitto_new");
      mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
      mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
      mosquitto_max_inflight_messages_set(c->m, 0);  // no client-side cap: open loop
      mosquitto_connect_callback_set(c->m, &MqttDriver::OnConnect);
      mosquitto_subscribe_callback_set(c->m, &MqttDriver::OnSubscribe);
      mosquitto_message_callback_set(c->m, &MqttDriver::OnMessage);
      mosquitto_publish_callback_set(c->m, &MqttDriver::OnPublish);
      if (mosquitto_connect(c->m, host_.c_str(), port_, 60) != MOSQ_ERR_SUCCESS)
        return Fail("connect to " + host_ + ":" + std::to_string(port_));
      loop_.Add(c->m);
      clients_.push_back(std::move(c));
    }
    const int64_t deadline = NowNs() + 60'000'000'000LL;
    W1Stats ignore;
    while (ready_ < clients_.size() && NowNs() < deadline) Poll(10, ignore);
    if (ready_ < clients_.size()) return Fail(std::to_string(ready_) + " clients subscribed");
    return true;
  }

  void Send(int pair, uint64_t k, int64_t sched_ns) override {
    MqttClient& c = *clients_[static_cast<size_t>(pair)];
    std::string payload(std::max<size_t>(body_, 21), 'x');
    payload[0] = 'M';
    std::memcpy(payload.data() + 1, &sched_ns, 8);
    std::memcpy(payload.data() + 9, &k, 8);
    const int32_t p = pair;
    std::memcpy(payload.data() + 17, &p, 4);
    const std::string topic =
        "u/" + clients_[static_cast<size_t>(pair) + clients_.size() / 2]->user;
    int mid = 0;
    if (mosquitto_publish(c.m, &mid, topic.c_str(), static_cast<int>(payload.size()),
                          payload.data(), 1, false) == MOSQ_ERR_SUCCESS)
      c.inflight[mid] = sched_ns;
    else if (stats_)
      ++stats_->errors;
  }

  void Poll(int timeout_ms, W1Stats& stats) override {
    stats_ = &stats;
    stats.errors += static_cast<uint64_t>(loop_.Poll(timeout_ms));
  }

  std::vector<long> ServerPids() const override { return pids_; }

 private:
  bool Fail(const std::string& what) {
    std::cerr << "loadgen (mqtt): " << what << " failed\n";
    return false;
  }

  static void OnConnect(mosquitto* m, void* obj, int rc) {
    auto* c = static_cast<MqttClient*>(obj);
    if (rc != 0) return;
    const std::string topic = "u/" + c->user;
    mosquitto_subscribe(m, nullptr, topic.c_str(), 1);
  }
  static void OnSubscribe(mosquitto*, void* obj, int, int, const int*) {
    auto* c = static_cast<MqttClient*>(obj);
    if (!c->ready) ++c->d->ready_;
    c->ready = true;
  }
  static void OnPublish(mosquitto*, void* obj, int mid) {
    auto* c = static_cast<MqttClient*>(obj);
    auto it = c->inflight.find(mid);
    if (it == c->inflight.end()) return;
    if (c->d->stats_) {
      c->d->stats_->ack.Record((NowNs() - it->second) / 1000);
      ++c->d->stats_->acked;
    }
    c->inflight.erase(it);
  }
  static void OnMessage(mosquitto* m, void* obj, const mosquitto_message* msg) {
    auto* c = static_cast<MqttClient*>(obj);
    MqttDriver* d = c->d;
    if (msg->payloadlen < 9 || !d->stats_) return;
    const char* p = static_cast<const char*>(msg->payload);
    int64_t sched;
    std::memcpy(&sched, p + 1, 8);
    const int64_t now = NowNs();
    if (p[0] == 'M' && msg->payloadlen >= 21) {
      d->stats_->deliver.Record((now - sched) / 1000);
      ++d->stats_->delivered;
      int32_t pair;
      std::memcpy(&pair, p + 17, 4);
      // The application-level receipt back to the sender, as the meshchat server does.
      char receipt[9] = {'R'};
      std::memcpy(receipt + 1, &sched, 8);
      const std::string topic = "u/" + d->clients_[static_cast<size_t>(pair)]->user;
      mosquitto_publish(m, nullptr, topic.c_str(), 9, receipt, 1, false);
    } else if (p[0] == 'R') {
      d->stats_->receipt.Record((now - sched) / 1000);
      ++d->stats_->receipts;
    }
  }

  std::string host_;
  int port_;
  size_t body_;
  std::vector<long> pids_;
  MqttLoop loop_;
  std::vector<std::unique_ptr<MqttClient>> clients_;
  size_t ready_ = 0;
  W1Stats* stats_ = nullptr;
};

}  // namespace

std::unique_ptr<ChatDriver> MakeMqttDriver(const std::string& host, int port, size_t body_bytes,
                                           std::vector<long> server_pids) {
  return std::make_unique<MqttDriver>(host, port, body_bytes, std::move(server_pids));
}

int RunW3Mqtt(const std::string& host, int port, size_t conns, long broker_pid) {
  mosquitto_lib_init();
  std::vector<mosquitto*> clients;
  std::random_device rd;
  const std::string run = std::to_string(rd() % 1000000);
  size_t ok = 0;
  auto open = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      const std::string id = "idle" + run + "-" + std::to_string(i);
      mosquitto* m = mosquitto_new(id.c_str(), false, nullptr);
      if (!m) return;
      clients.push_back(m);
      if (mosquitto_connect(m, host.c_str(), port, 600) != MOSQ_ERR_SUCCESS) continue;
      const std::string topic = "u/" + id;
      mosquitto_subscribe(m, nullptr, topic.c_str(), 1);
      mosquitto_loop_write(m, 1);
      ++ok;
    }
    for (int round = 0; round < 20; ++round) {  // let the broker take every CONNECT, SUBSCRIBE
      for (auto* m : clients) mosquitto_loop_read(m, 1);
      usleep(25'000);
    }
  };
  const ProcUsage before = ReadProc(broker_pid);
  open(0, conns / 2);
  const size_t half = ok;
  const ProcUsage mid = ReadProc(broker_pid);
  open(conns / 2, conns);
  const ProcUsage after = ReadProc(broker_pid);
  const size_t second = ok - half;
  const double marginal = second ? (after.rss_kb - mid.rss_kb) * 1024.0 / second : 0;
  const double overall = ok ? (after.rss_kb - before.rss_kb) * 1024.0 / ok : 0;
  std::cout << "result workload=w3 system=mosquitto connections=" << ok << " requested=" << conns
            << " broker_rss_before_kb=" << before.rss_kb << " broker_rss_after_kb=" << after.rss_kb
            << " gateway_bytes_per_conn=" << static_cast<long>(marginal)
            << " gateway_bytes_per_conn_overall=" << static_cast<long>(overall) << std::endl;
  std::printf(
      "\nW3 idle connections (mosquitto): %zu; broker RSS %ld KB -> %ld KB -> %ld KB: "
      "%.0f bytes per connection (second half; %.0f overall)\n",
      ok, before.rss_kb, mid.rss_kb, after.rss_kb, marginal, overall);
  for (auto* m : clients) {
    mosquitto_disconnect(m);
    mosquitto_destroy(m);
  }
  mosquitto_lib_cleanup();
  return ok == conns ? 0 : 1;
}

}  // namespace meshchat::bench
