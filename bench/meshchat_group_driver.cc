// W2 against a running meshchat mesh: groups created through the protocol, then group_send.
#include <cstring>
#include <iostream>
#include <random>

#include "bench/event_loop.h"
#include "bench/mesh_info.h"
#include "bench/proc_stats.h"
#include "bench/w2.h"
#include "codec/group_messages.h"
#include "codec/token.h"

namespace meshchat::bench {
namespace {

using codec::FrameType;

class MeshchatGroupDriver final : public GroupDriver {
 public:
  MeshchatGroupDriver(std::string var, size_t body) : var_(std::move(var)), body_(body) {}
  std::string name() const override { return "meshchat"; }

  bool Setup(int groups, int size) override {
    MeshInfo mesh;
    if (!LoadMesh(var_, mesh)) return false;
    if (mesh.tls && !loop_.EnableTls(mesh.ca_file)) return false;
    size_ = size;
    std::random_device rd;
    run_ = std::to_string(rd() % 1000000);
    loop_.SetHandlers([this](size_t c, uint8_t t, std::string_view b) { OnFrame(c, t, b); },
                      nullptr);
    const int total = groups * size;
    max_n_.assign(static_cast<size_t>(total), 0);
    acked_n_.assign(static_cast<size_t>(total), 0);
    for (int i = 0; i < total; ++i) {
      const auto& [host, port] = mesh.gateways[static_cast<size_t>(i) % mesh.gateways.size()];
      if (loop_.Connect(host, static_cast<uint16_t>(port)) != i) return Fail("connect");
      codec::TokenClaims c{User(i / size, i % size), "lg",
                           static_cast<int64_t>(time(nullptr)) + 86400, 1};
      loop_.Send(static_cast<size_t>(i), static_cast<uint8_t>(FrameType::kHello),
                 codec::Encode(codec::Hello{1, codec::SignToken(c, mesh.secret)}));
    }
    W2Stats ignore;
    const int64_t deadline = NowNs() + 60'000'000'000LL;
    while (welcomed_ < static_cast<size_t>(total) && NowNs() < deadline) Poll(10, ignore);
    if (welcomed_ < static_cast<size_t>(total)) return Fail("authentication");
    for (int g = 0; g < groups; ++g) {  // member 0 creates each group with the others
      codec::GroupRequest req;
      req.op = "create";
      req.rid = static_cast<uint64_t>(g + 1);
      req.group = Group(g);
      for (int m = 1; m < size; ++m) req.users.push_back(User(g, m));
      loop_.Send(static_cast<size_t>(g * size), static_cast<uint8_t>(FrameType::kGroup),
                 codec::Encode(req));
    }
    while (created_ < static_cast<size_t>(groups) && NowNs() < deadline) Poll(10, ignore);
    if (created_ < static_cast<size_t>(groups)) return Fail("group creation");
    return true;
  }

  void Send(int group, int member, uint64_t k, int64_t sched_ns) override {
    std::string body(std::max<size_t>(body_, 16), 'x');
    std::memcpy(body.data(), &sched_ns, 8);
    std::memcpy(body.data() + 8, &k, 8);
    loop_.Send(static_cast<size_t>(group * size_ + member),
               static_cast<uint8_t>(FrameType::kGroupSend),
               codec::Encode(codec::GroupSend{Group(group), k + 1, body}));
  }

  void Poll(int timeout_ms, W2Stats& stats) override {
    stats_ = &stats;
    loop_.Poll(timeout_ms);
    for (size_t i : ack_due_) {
      if (max_n_[i] > acked_n_[i]) {
        acked_n_[i] = max_n_[i];
        loop_.Send(i, static_cast<uint8_t>(FrameType::kAck), codec::Encode(codec::Ack{max_n_[i]}));
      }
    }
    ack_due_.clear();
  }

  std::vector<long> ServerPids() const override { return MeshPids(var_); }

 private:
  bool Fail(const std::string& what) {
    std::cerr << "loadgen (w2): " << what << " failed\n";
    return false;
  }
  std::string User(int g, int m) const {
    return "lgw" + run_ + "-" + std::to_string(g) + "-" + std::to_string(m);
  }
  std::string Group(int g) const { return "lgg" + run_ + "-" + std::to_string(g); }

  void OnFrame(size_t ci, uint8_t type, std::string_view body) {
    switch (static_cast<FrameType>(type)) {
      case FrameType::kWelcome: ++welcomed_; return;
      case FrameType::kGroupResult: {
        codec::GroupResult r;
        if (codec::Decode(body, r) == codec::DecodeStatus::kOk && r.ok) ++created_;
        return;
      }
      case FrameType::kPush: {
        codec::Push p;
        if (codec::Decode(body, p) != codec::DecodeStatus::kOk) break;
        if (max_n_[ci] == acked_n_[ci] && p.n > max_n_[ci]) ack_due_.push_back(ci);
        max_n_[ci] = std::max(max_n_[ci], p.n);
        if (p.system || p.body.size() < 16 || !stats_) return;
        int64_t sched;
        std::memcpy(&sched, p.body.data(), 8);
        stats_->deliver.Record((NowNs() - sched) / 1000);
        ++stats_->deliveries;
        return;
      }
      case FrameType::kSent:
        if (stats_) ++stats_->acked;
        return;
      case FrameType::kError: break;
      default: return;
    }
    if (stats_) ++stats_->errors;
  }

  std::string var_;
  size_t body_;
  int size_ = 0;
  std::string run_;
  FrameLoop loop_;
  size_t welcomed_ = 0, created_ = 0;
  std::vector<uint64_t> max_n_, acked_n_;
  std::vector<size_t> ack_due_;
  W2Stats* stats_ = nullptr;
};

}  // namespace

std::unique_ptr<GroupDriver> MakeMeshchatGroupDriver(const std::string& var, size_t body_bytes) {
  return std::make_unique<MeshchatGroupDriver>(var, body_bytes);
}

}  // namespace meshchat::bench
