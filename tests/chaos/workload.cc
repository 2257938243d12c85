#include "tests/chaos/workload.h"

#include <chrono>
#include <filesystem>
#include <optional>
#include <thread>

#include "codec/token.h"
#include "tests/chaos/history.h"

namespace meshchat::chaos {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

int64_t WallMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct User {
  std::string id, token;
  size_t gw = 0;
  std::optional<client::ChatClient> c;
  uint64_t last_n = 0;  // survives reconnects, as an app persists it
  bool busy = false;
  uint64_t cid = 0;
  std::string to, body;
  bool to_group = false;
  Clock::time_point sent_at, last_heard, next_write, retry_connect;
  int k = 0;
  bool offline = false;  // stays away while the others write
};

class Workload {
 public:
  Workload(const WorkloadOptions& o, std::FILE* log) : o_(o), log_(log) {
    for (int i = 0; i < o.users; ++i) {
      User u;
      u.id = o.prefix + std::to_string(i);
      u.token = codec::SignToken({u.id, "chaos", static_cast<int64_t>(WallMs() / 1000) + 86400, 1},
                                 o.secret);
      u.gw = static_cast<size_t>(i) % o.gateways.size();
      u.offline = i >= o.users - o.offline;
      users_.push_back(std::move(u));
    }
  }

  int Run() {
    if (!CreateGroup()) return 2;
    for (const auto& u : users_)
      if (u.offline) Log('O', {u.id});
    const auto write_until = Clock::now() + std::chrono::seconds(o_.write_seconds);
    Loop([&] {
      return Clock::now() >= write_until ||
             (!o_.stop_file.empty() && std::filesystem::exists(o_.stop_file));
    });
    writing_ = false;
    last_push_ = Clock::now();
    const auto drain_until = Clock::now() + std::chrono::seconds(o_.drain_seconds);
    Loop([&] { return Clock::now() >= drain_until || !AnyBusy(); });
    auto quiet = [&] { return Clock::now() - last_push_ >= milliseconds(o_.quiet_ms); };
    last_push_ = Clock::now();
    const auto listen_until = Clock::now() + std::chrono::seconds(o_.drain_seconds);
    Loop([&] { return Clock::now() >= listen_until || quiet(); });
    std::fflush(log_);
    return 0;
  }

 private:
  void Log(char kind, const std::vector<std::string>& f) {
    std::fputs((FormatEvent(kind, WallMs(), f) + "\n").c_str(), log_);
  }
  bool AnyBusy() const {
    for (const auto& u : users_)
      if (u.busy) return true;
    return false;
  }
  template <typename Done>
  void Loop(Done done) {
    while (!done()) {
      for (auto& u : users_) Turn(u);
      std::this_thread::sleep_for(milliseconds(2));
    }
  }
  // The first user creates the group with everyone in it, retrying through the gateways.
  bool CreateGroup() {
    User& u = users_[0];
    std::vector<std::string> members;
    for (size_t i = 1; i < users_.size(); ++i) members.push_back(users_[i].id);
    for (int attempt = 0; attempt < 20; ++attempt) {
      if (!Connected(u)) continue;
      codec::GroupRequest req;
      req.op = "create";
      req.group = o_.group;
      req.users = members;
      if (!u.c->Group(req).ok()) continue;
      const auto until = Clock::now() + std::chrono::seconds(3);
      while (Clock::now() < until) {
        auto ev = u.c->Next(500);
        if (!ev.ok()) break;
        if (auto* r = std::get_if<codec::GroupResult>(&*ev)) {
          // Created now, or by an earlier attempt whose answer was lost.
          if (r->ok || r->code == codec::ErrorCode::kGroupExists) {
            std::vector<std::string> m{o_.group, u.id};
            m.insert(m.end(), members.begin(), members.end());
            Log('M', m);
            return true;
          }
          break;
        }
      }
      std::this_thread::sleep_for(milliseconds(300));
    }
    return false;
  }
  bool Connected(User& u) {
    if (u.c) return true;
    if (Clock::now() < u.retry_connect) return false;
    auto c = client::ChatClient::Connect(o_.gateways[u.gw], u.token, 2000);
    if (!c.ok()) {
      u.gw = (u.gw + 1) % o_.gateways.size();
      u.retry_connect = Clock::now() + milliseconds(200);
      return false;
    }
    u.c.emplace(std::move(c).value());
    u.c->set_last_n(u.last_n);
    u.last_heard = Clock::now();
    Log('C', {u.id, u.c->welcome().node});
    return true;
  }
  void Drop(User& u) {
    u.c.reset();
    u.gw = (u.gw + 1) % o_.gateways.size();
    Log('D', {u.id});
  }
  void Turn(User& u) {
    if (u.offline && writing_) return;
    if (!Connected(u)) return;
    if (u.busy && Clock::now() - u.sent_at > milliseconds(1500)) Send(u);  // same cid
    if (u.c && u.busy && Clock::now() - u.last_heard > std::chrono::seconds(5)) return Drop(u);
    if (u.c && !u.busy && writing_ && Clock::now() >= u.next_write) Write(u);
    while (u.c) {
      auto ev = u.c->Next(0);
      if (!ev.ok()) {
        if (ev.status().code() != Code::kTimeout) Drop(u);
        return;
      }
      u.last_heard = Clock::now();
      u.last_n = u.c->last_n();
      Handle(u, *ev);
    }
  }
  void Handle(User& u, const client::Event& ev) {
    if (auto* s = std::get_if<codec::Sent>(&ev)) {
      if (!u.busy || s->cid != u.cid) return;
      u.busy = false;
      u.next_write = Clock::now() + milliseconds(o_.pace_ms);
      Log('A', {u.id, std::to_string(s->cid), std::to_string(s->seq)});
    } else if (auto* e = std::get_if<codec::Error>(&ev)) {
      Log('E', {u.id, codec::ErrorCodeName(e->code)});
      if (u.busy) u.sent_at = Clock::now() - milliseconds(1300);  // resend soon
    } else if (auto* p = std::get_if<codec::Push>(&ev)) {
      if (p->system || p->from == u.id) return;
      last_push_ = Clock::now();
      Log('R',
          {u.id, p->from, p->group.empty() ? p->from : p->group, std::to_string(p->seq), p->body});
    }
  }
  void Write(User& u) {
    const size_t i = static_cast<size_t>(&u - users_.data());
    const int k = u.k++;
    u.body = u.id + ":" + std::to_string(k);
    u.to_group = k % 3 == 2;
    u.to = u.to_group ? o_.group : users_[(i + 1 + static_cast<size_t>(k) % 3) % users_.size()].id;
    if (u.to == u.id) u.to = users_[(i + 1) % users_.size()].id;
    u.cid = static_cast<uint64_t>(k) + 1;  // fixed per message: resends reuse it
    u.busy = true;
    Log('S', {u.id, u.to, u.to_group ? "g" : "1", std::to_string(u.cid), u.body});
    Send(u);
  }
  void Send(User& u) {
    u.sent_at = Clock::now();
    auto r = u.to_group ? u.c->SendToGroup(u.to, u.body, u.cid) : u.c->Send(u.to, u.body, u.cid);
    if (!r.ok()) Drop(u);
  }

  const WorkloadOptions& o_;
  std::FILE* log_;
  std::vector<User> users_;
  bool writing_ = true;
  Clock::time_point last_push_ = Clock::now();
};

}  // namespace

int RunWorkload(const WorkloadOptions& o, std::FILE* log) {
  return Workload(o, log).Run();
}

}  // namespace meshchat::chaos
