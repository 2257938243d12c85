#include "client/retention_commands.h"

#include <chrono>
#include <ctime>
#include <iostream>

#include "client/cli_wait.h"
#include "codec/media_messages.h"

namespace meshchat::client {

std::optional<uint64_t> ParseTimer(const std::string& s) {
  if (s == "off" || s == "0") return 0;
  if (s.empty()) return std::nullopt;
  size_t used = 0;
  uint64_t n = 0;
  try {
    n = std::stoull(s, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const std::string unit = s.substr(used);
  const uint64_t mult = unit.empty() || unit == "s" ? 1
                        : unit == "m"               ? 60
                        : unit == "h"               ? 3600
                        : unit == "d"               ? 86400
                                                    : 0;
  if (mult == 0 || n > codec::kMaxTimerS / mult) return std::nullopt;  // 90 days at most
  return n * mult;
}

int RunChatMode(ChatClient& c, const std::string& with, const std::string& mode,
                const std::string& timer, int timeout_s) {
  codec::ChatRetention r;
  const auto secs = ParseTimer(timer);
  if (!codec::ParseRetention(mode, r) || !secs) {
    std::cerr << "chat: mode USER temporary|permanent [--timer off|30s|24h|7d|90d]\n";
    return kExitUsage;
  }
  c.set_auto_ack(false);
  auto cid = c.SetChatMode(with, r, *secs);
  if (!cid.ok()) {
    std::cerr << "chat: " << cid.status().message() << "\n";
    return kExitConnect;
  }
  return WaitFor(c, timeout_s, [&](const Event& ev) {
    auto* s = std::get_if<codec::Sent>(&ev);
    if (!s || s->cid != *cid) return -1;
    std::cout << "sent seq=" << s->seq << ": the chat with " << with << " is " << mode
              << (*secs ? ", messages disappear after " + std::to_string(*secs) + " s" : "")
              << std::endl;
    return 0;
  });
}

void PrintHistoryLine(const codec::Push& p, const std::string& me) {
  const time_t secs = static_cast<time_t>(p.ts / 1000);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&secs));
  std::cout << p.seq << "  " << when << "  "
            << (p.system       ? std::string("*")
                : p.from == me ? std::string("you")
                               : p.from)
            << ": " << p.body;
  if (p.media)
    std::cout << " [media " << codec::HexOf(p.media->id) << " " << p.media->type << " "
              << p.media->size << " bytes]";
  std::cout << "\n";
}

int RunScroll(ChatClient& c, const codec::History& h, int timeout_s) {
  c.set_auto_ack(false);
  auto rid = c.RequestHistory(h);
  if (!rid.ok()) {
    std::cerr << "chat: " << rid.status().message() << "\n";
    return kExitConnect;
  }
  return WaitFor(c, timeout_s, [&](const Event& ev) {
    auto* p = std::get_if<codec::HistoryPage>(&ev);
    if (!p || p->rid != *rid) return -1;
    for (const auto& m : p->messages) PrintHistoryLine(m, c.welcome().user);
    if (p->messages.empty()) std::cout << "(no history kept: the chat is " << p->mode << ")\n";
    if (p->more && !p->messages.empty())
      std::cout << "(more: "
                << (h.after ? "--after " + std::to_string(p->messages.back().seq)
                            : "--before " + std::to_string(p->messages.front().seq))
                << ")\n";
    std::cout.flush();
    return 0;
  });
}

}  // namespace meshchat::client
