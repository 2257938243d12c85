#include "tests/chaos/workload.h"

#include <algorithm>
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

struct Pending {  // a message written and not yet acknowledged
  uint64_t cid = 0;
  std::string to, body;
  bool to_group = false;
  Clock::time_point sent_at;
};

struct User {
  std::string id, token;
  size_t gw = 0;
  std::optional<client::ChatClient> c;
  uint64_t last_n = 0;  // survives reconnects, as an app persists it
  std::vector<Pending> inflight;
  Clock::time_point last_heard, next_write, retry_connect;
  int k = 0;
  bool offline = false;  // stays away while the others write
  bool in_group2 = false;
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
      u.in_group2 = i % 2 == 0;
      users_.push_back(std::move(u));
    }
  }

  int Run() {
    std::vector<std::string> all, evens;
    for (const auto& u : users_) {
      all.push_back(u.id);
      if (u.in_group2) evens.push_back(u.id);
    }
    if (!CreateGroup(o_.group, all) || !CreateGroup(o_.group + "2", evens)) return 2;
    for (const auto& u : users_)
      if (u.offline) Log('O', {u.id});
    const auto write_until = Clock::now() + std::chrono::seconds(o_.write_seconds);
    Loop([&] {
      return Clock::now() >= write_until ||
             (!o_.stop_file.empty() && std::filesystem::exists(o_.stop_file));
    });
    writing_ = false;
    const auto drain_until = Clock::now() + std::chrono::seconds(o_.drain_seconds);
    Loop([&] { return Clock::now() >= drain_until || !AnyBusy(); });
    ListenUntilQuiet();
    // Every user reconnects and drains once more: a delivery that only comes now was stalled
    // (a connection the mesh had stopped serving), which the checker tells from a loss.
    Log('F', {});
    for (auto& u : users_)
      if (u.c) Drop(u);
    ListenUntilQuiet();
    std::fflush(log_);
    return 0;
  }

 private:
  void Log(char kind, const std::vector<std::string>& f) {
    std::fputs((FormatEvent(kind, WallMs(), f) + "\n").c_str(), log_);
  }
  bool AnyBusy() const {
    for (const auto& u : users_)
      if (!u.inflight.empty()) return true;
    return false;
  }
  // Until no push came for quiet_ms (and every user is connected), at most drain_seconds.
  void ListenUntilQuiet() {
    last_push_ = Clock::now();
    const auto until = Clock::now() + std::chrono::seconds(o_.drain_seconds);
    Loop([&] {
      if (Clock::now() >= until) return true;
      for (const auto& u : users_)
        if (!u.c) return false;
      return Clock::now() - last_push_ >= milliseconds(o_.quiet_ms);
    });
  }
  template <typename Done>
  void Loop(Done done) {
    while (!done()) {
      for (auto& u : users_) Turn(u);
      std::this_thread::sleep_for(milliseconds(2));
    }
  }
  // The first member creates the group with the others in it, retrying through the gateways.
  bool CreateGroup(const std::string& group, const std::vector<std::string>& all) {
    User& u = users_[0];
    const std::vector<std::string> members(all.begin() + 1, all.end());
    for (int attempt = 0; attempt < 20; ++attempt) {
      if (!Connected(u)) continue;
      codec::GroupRequest req;
      req.op = "create";
      req.group = group;
      req.users = members;
      if (!u.c->Group(req).ok()) continue;
      const auto until = Clock::now() + std::chrono::seconds(3);
      while (Clock::now() < until) {
        auto ev = u.c->Next(500);
        if (!ev.ok()) break;
        if (auto* r = std::get_if<codec::GroupResult>(&*ev)) {
          // Created now, or by an earlier attempt whose answer was lost.
          if (r->ok || r->code == codec::ErrorCode::kGroupExists) {
            std::vector<std::string> m{group};
            m.insert(m.end(), all.begin(), all.end());
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
    u.c->set_push_observer([this, &u](const codec::Push& p) {
      if (p.system) return;  // group notices ("x joined"): not messages of the history
      Log('P', {u.id, std::to_string(p.n), p.from, p.group.empty() ? p.from : p.group,
                std::to_string(p.seq), p.body});
    });
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
    const auto now = Clock::now();
    for (auto& p : u.inflight)
      if (u.c && now - p.sent_at > milliseconds(1500)) Send(u, p);  // same cid
    if (u.c && !u.inflight.empty() && now - u.last_heard > std::chrono::seconds(5)) return Drop(u);
    if (u.c && writing_ && u.inflight.size() < static_cast<size_t>(o_.inflight) &&
        now >= u.next_write)
      Write(u);
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
      auto it = std::find_if(u.inflight.begin(), u.inflight.end(),
                             [&](const Pending& p) { return p.cid == s->cid; });
      if (it == u.inflight.end()) return;  // a second answer to a resend
      u.inflight.erase(it);
      u.next_write = Clock::now() + milliseconds(o_.pace_ms);
      Log('A', {u.id, std::to_string(s->cid), std::to_string(s->seq)});
    } else if (auto* e = std::get_if<codec::Error>(&ev)) {
      Log('E', {u.id, codec::ErrorCodeName(e->code)});
      for (auto& p : u.inflight)  // resend soon: the one it names, or all if it names none
        if (!e->cid || *e->cid == p.cid) p.sent_at = Clock::now() - milliseconds(1300);
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
    Pending p;
    p.body = u.id + ":" + std::to_string(k);
    p.to_group = k % 3 == 2;
    if (p.to_group) {
      p.to = (k / 3) % 2 == 1 && u.in_group2 ? o_.group + "2" : o_.group;
    } else {
      p.to = users_[(i + 1 + static_cast<size_t>(k) % 3) % users_.size()].id;
      if (p.to == u.id) p.to = users_[(i + 1) % users_.size()].id;
    }
    p.cid = static_cast<uint64_t>(k) + 1;  // fixed per message: resends reuse it
    Log('S', {u.id, p.to, p.to_group ? "g" : "1", std::to_string(p.cid), p.body});
    u.inflight.push_back(std::move(p));
    Send(u, u.inflight.back());
  }
  void Send(User& u, Pending& p) {
    p.sent_at = Clock::now();
    auto r = p.to_group ? u.c->SendToGroup(p.to, p.body, p.cid) : u.c->Send(p.to, p.body, p.cid);
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
