// W1 against a running meshchat mesh (found through its meshctl state directory).
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "bench/event_loop.h"
#include "bench/mesh_info.h"
#include "bench/proc_stats.h"
#include "bench/w1.h"
#include "codec/client_messages.h"
#include "codec/presence_messages.h"
#include "codec/token.h"

namespace meshchat::bench {
namespace {

using codec::FrameType;

struct Client {
  std::string user;
  int pair = 0;
  bool sender = false;
  bool welcomed = false;
  uint64_t max_n = 0, acked_n = 0;
  // sender side: sent but not yet covered by a delivered receipt, in seq order
  std::deque<std::pair<uint64_t, int64_t>> awaiting_receipt;
  uint64_t receipted_upto = 0;
};

class MeshchatDriver final : public ChatDriver {
 public:
  MeshchatDriver(std::string var, size_t body, bool chatty, int heavy_pairs)
      : var_(std::move(var)), body_(body), chatty_(chatty), heavy_pairs_(heavy_pairs) {}
  std::string name() const override { return "meshchat"; }

  bool Setup(int pairs) override {
    MeshInfo mesh;
    if (!LoadMesh(var_, mesh)) return false;
    if (mesh.tls && !loop_.EnableTls(mesh.ca_file)) return false;
    secret_ = mesh.secret;
    gateways_ = mesh.gateways;
    std::random_device rd;
    const std::string run = std::to_string(rd() % 1000000);  // fresh users: empty inboxes
    loop_.SetHandlers([this](size_t c, uint8_t t, std::string_view b) { OnFrame(c, t, b); },
                      [this](size_t c) { closed_.push_back(c); });
    for (int i = 0; i < 2 * pairs; ++i) {
      Client c;
      c.sender = i < pairs;
      c.pair = i % pairs;
      c.user = std::string(c.sender ? "lgs" : "lgr") + run + "-" + std::to_string(c.pair);
      const auto& [host, port] = gateways_[static_cast<size_t>(i) % gateways_.size()];
      if (loop_.Connect(host, static_cast<uint16_t>(port)) != i) {
        std::cerr << "loadgen: connect to " << host << ":" << port << " failed\n";
        return false;
      }
      codec::TokenClaims claims{c.user, "lg", static_cast<int64_t>(time(nullptr)) + 86400, 1};
      loop_.Send(static_cast<size_t>(i), static_cast<uint8_t>(FrameType::kHello),
                 codec::Encode(codec::Hello{1, codec::SignToken(claims, secret_)}));
      clients_.push_back(std::move(c));
    }
    const int64_t deadline = NowNs() + 60'000'000'000LL;
    W1Stats ignore;
    while (welcomed_ < clients_.size() && NowNs() < deadline && closed_.empty()) Poll(10, ignore);
    if (welcomed_ < clients_.size()) {
      std::cerr << "loadgen: only " << welcomed_ << " of " << clients_.size()
                << " clients authenticated (" << closed_.size() << " closed)\n";
      return false;
    }
    return true;
  }

  void Send(int pair, uint64_t k, int64_t sched_ns) override {
    sched_[k + 1] = sched_ns;
    pair_of_[k + 1] = static_cast<size_t>(pair);
    // A sender told to wait holds new messages until then, as the client library does.
    const auto wait = not_before_.find(static_cast<size_t>(pair));
    if (wait != not_before_.end() && wait->second > NowNs()) {
      retry_.emplace_back(wait->second, k + 1);
      return;
    }
    SendMessage(static_cast<size_t>(pair), k, sched_ns);
  }

  void Poll(int timeout_ms, W1Stats& stats) override {
    stats_ = &stats;
    // Refused sends whose retry_after has passed go again, with the same cid.
    const int64_t now = NowNs();
    while (!retry_.empty() && retry_.front().first <= now) {
      const uint64_t cid = retry_.front().second;
      retry_.pop_front();
      auto it = sched_.find(cid);
      if (it != sched_.end()) SendMessage(pair_of_[cid], cid - 1, it->second);
    }
    loop_.Poll(timeout_ms);
    for (const auto& [ci, seq] : read_due_)  // one read per receiver per poll, as an app would
      loop_.Send(ci, static_cast<uint8_t>(FrameType::kRead),
                 codec::Encode(codec::Read{clients_[ci - clients_.size() / 2].user, seq}));
    read_due_.clear();
    // One cumulative ack per connection per poll, not one per push.
    for (size_t i : ack_due_) {
      Client& c = clients_[i];
      if (c.max_n > c.acked_n) {
        c.acked_n = c.max_n;
        loop_.Send(i, static_cast<uint8_t>(FrameType::kAck), codec::Encode(codec::Ack{c.max_n}));
      }
    }
    ack_due_.clear();
  }

  std::vector<long> ServerPids() const override { return MeshPids(var_); }

 private:
  void SendMessage(size_t sender, uint64_t k, int64_t sched_ns) {
    std::string body(std::max<size_t>(body_, 16), 'x');
    std::memcpy(body.data(), &sched_ns, 8);
    std::memcpy(body.data() + 8, &k, 8);
    const std::string& to = clients_[sender + clients_.size() / 2].user;
    if (chatty_)
      loop_.Send(sender, static_cast<uint8_t>(FrameType::kTyping),
                 codec::Encode(codec::Typing{to, false, true}));
    loop_.Send(sender, static_cast<uint8_t>(FrameType::kSend),
               codec::Encode(codec::Send{to, k + 1, body}));
  }
  void NoteN(size_t ci, uint64_t n) {
    Client& c = clients_[ci];
    if (c.max_n == c.acked_n && n > c.max_n) ack_due_.push_back(ci);
    c.max_n = std::max(c.max_n, n);
  }
  void OnFrame(size_t ci, uint8_t type, std::string_view body) {
    Client& c = clients_[ci];
    const int64_t now = NowNs();
    switch (static_cast<FrameType>(type)) {
      case FrameType::kWelcome:
        if (!c.welcomed) ++welcomed_;
        c.welcomed = true;
        return;
      case FrameType::kPush: {
        codec::Push p;
        if (codec::Decode(body, p) != codec::DecodeStatus::kOk) break;
        NoteN(ci, p.n);
        if (c.sender || p.body.size() < 16 || !stats_) return;  // own copies: ack only
        int64_t sched;
        uint64_t k;
        std::memcpy(&sched, p.body.data(), 8);
        std::memcpy(&k, p.body.data() + 8, 8);
        stats_->deliver.Record((now - sched) / 1000);
        if (!refused_.erase(k + 1)) stats_->deliver_first.Record((now - sched) / 1000);
        if (c.pair >= heavy_pairs_) stats_->deliver_light.Record((now - sched) / 1000);
        ++stats_->delivered;
        if (chatty_) read_due_[ci] = std::max(read_due_[ci], p.seq);
        return;
      }
      case FrameType::kSent: {
        codec::Sent s;
        if (codec::Decode(body, s) != codec::DecodeStatus::kOk || !stats_) break;
        auto it = sched_.find(s.cid);
        if (it == sched_.end()) return;
        stats_->ack.Record((now - it->second) / 1000);
        pair_of_.erase(s.cid);
        ++stats_->acked;
        if (s.seq <= c.receipted_upto) {  // the receipt overtook the ack
          stats_->receipt.Record((now - it->second) / 1000);
          ++stats_->receipts;
        } else {
          c.awaiting_receipt.emplace_back(s.seq, it->second);
        }
        sched_.erase(it);
        return;
      }
      case FrameType::kReceipt: {
        codec::Receipt r;
        if (codec::Decode(body, r) != codec::DecodeStatus::kOk) break;
        NoteN(ci, r.n);
        if (r.kind == codec::ReceiptKind::kRead && stats_) ++stats_->reads;
        // Read implies delivered: a read that comes first stands for both.
        if ((r.kind != codec::ReceiptKind::kDelivered && r.kind != codec::ReceiptKind::kRead) ||
            !stats_)
          return;
        c.receipted_upto = std::max(c.receipted_upto, r.seq);
        while (!c.awaiting_receipt.empty() && c.awaiting_receipt.front().first <= r.seq) {
          stats_->receipt.Record((now - c.awaiting_receipt.front().second) / 1000);
          ++stats_->receipts;
          c.awaiting_receipt.pop_front();
        }
        return;
      }
      case FrameType::kError: {
        codec::Error e;
        if (codec::Decode(body, e) != codec::DecodeStatus::kOk || !stats_) break;
        // Refused before it was stored (rate_limited, or overloaded): resend it when told.
        if (chatty_ && e.cid && e.retry_after && sched_.count(*e.cid)) {
          ++stats_->refused;
          refused_.insert(*e.cid);
          const int64_t when = now + static_cast<int64_t>(e.retry_after) * 1'000'000;
          retry_.emplace_back(when, *e.cid);
          // Like ChatClient::Refused: extend the wait only for a send made after it was set.
          int64_t& nb = not_before_[ci];
          if (nb < now) nb = when;
          return;
        }
        ++stats_->errors;
        return;
      }
      case FrameType::kTypingNotice:
        if (stats_) ++stats_->typing;
        return;
      default: return;
    }
    if (stats_) ++stats_->errors;  // undecodable
  }

  std::string var_;
  size_t body_;
  std::string secret_;
  std::vector<std::pair<std::string, int>> gateways_;
  FrameLoop loop_;
  std::vector<Client> clients_;
  std::vector<size_t> closed_;
  size_t welcomed_ = 0;
  std::unordered_map<uint64_t, int64_t> sched_;
  std::vector<size_t> ack_due_;
  W1Stats* stats_ = nullptr;
  bool chatty_ = false;
  std::unordered_map<size_t, uint64_t> read_due_;   // receiver -> highest seq to mark read
  std::deque<std::pair<int64_t, uint64_t>> retry_;  // (when, cid), in time order
  std::unordered_set<uint64_t> refused_;            // cids refused at least once
  std::unordered_map<size_t, int64_t> not_before_;  // sender -> hold new sends until
  std::unordered_map<uint64_t, size_t> pair_of_;    // cid in flight -> its pair
  int heavy_pairs_ = 0;
};

}  // namespace

std::unique_ptr<ChatDriver> MakeMeshchatDriver(const std::string& var_dir, size_t body_bytes,
                                               bool chatty, int heavy_pairs) {
  return std::make_unique<MeshchatDriver>(var_dir, body_bytes, chatty, heavy_pairs);
}

}  // namespace meshchat::bench
