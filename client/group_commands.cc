#include "client/group_commands.h"

#include "client/cli_wait.h"
#include "client/retention_commands.h"

#include <chrono>
#include <iostream>

namespace meshchat::client {
namespace {

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

}  // namespace

int RunGroupCommand(ChatClient& c, const GroupCommand& cmd) {
  c.set_auto_ack(false);  // a command does not consume the inbox
  if (cmd.action == "send") {
    if (cmd.args.empty()) {
      std::cerr << "chat: group send GROUP TEXT\n";
      return kExitUsage;
    }
    auto cid = c.SendToGroup(cmd.group, Join(cmd.args));
    if (!cid.ok()) {
      std::cerr << "chat: " << cid.status().message() << "\n";
      return kExitConnect;
    }
    return WaitFor(c, cmd.timeout_s, [&](const Event& ev) {
      if (auto* s = std::get_if<codec::Sent>(&ev); s && s->cid == *cid) {
        std::cout << "sent seq=" << s->seq << std::endl;
        return 0;
      }
      return -1;
    });
  }
  codec::GroupRequest req;
  req.op = cmd.action;
  req.group = cmd.group;
  if (cmd.action == "create" || cmd.action == "add" || cmd.action == "remove") {
    req.users = cmd.args;
  } else if (cmd.action == "rename") {
    req.name = Join(cmd.args);
  } else if (cmd.action == "receipts") {
    if (cmd.args.empty()) {
      std::cerr << "chat: group receipts GROUP SEQ\n";
      return kExitUsage;
    }
    req.seq = std::strtoull(cmd.args[0].c_str(), nullptr, 10);
  } else if (cmd.action == "mode") {
    const auto secs = ParseTimer(cmd.args.size() > 1 ? cmd.args[1] : "off");
    if (cmd.args.empty() || !secs) {
      std::cerr << "chat: group mode GROUP temporary|permanent [off|24h|7d|90d]\n";
      return kExitUsage;
    }
    req.mode = cmd.args[0];
    req.timer = *secs;
  } else if (cmd.action == "history") {
    req.seq = cmd.args.empty() ? 0 : std::strtoull(cmd.args[0].c_str(), nullptr, 10);
    req.limit = codec::kMaxHistoryPage;
  } else if (cmd.action != "leave" && cmd.action != "info" && cmd.action != "list") {
    std::cerr << "chat: unknown group action '" << cmd.action << "'\n";
    return kExitUsage;
  }
  auto rid = c.Group(req);
  if (!rid.ok()) {
    std::cerr << "chat: " << rid.status().message() << "\n";
    return kExitConnect;
  }
  return WaitFor(c, cmd.timeout_s, [&](const Event& ev) {
    auto* r = std::get_if<codec::GroupResult>(&ev);
    if (!r || r->rid != *rid) return -1;
    if (!r->ok) {
      std::cerr << "chat: " << codec::ErrorCodeName(r->code) << ": " << r->msg << "\n";
      return kExitRefused;
    }
    if (cmd.action == "list") {
      for (const auto& g : r->groups) std::cout << g << "\n";
    } else if (cmd.action == "info") {
      std::cout << r->group << " \"" << r->name << "\" seq=" << r->seq << " " << r->mode
                << (r->timer ? " timer=" + std::to_string(r->timer) + "s" : "") << " members:";
      for (const auto& m : r->members) std::cout << " " << m.user << (m.admin ? "*" : "");
      std::cout << "\n";
    } else if (cmd.action == "history") {
      for (const auto& m : r->messages) PrintHistoryLine(m, c.welcome().user);
      if (r->messages.empty()) std::cout << "(no history kept: the group is " << r->mode << ")\n";
      if (r->more && !r->messages.empty())
        std::cout << "(more: history " << r->group << " " << r->messages.front().seq << ")\n";
    } else if (cmd.action == "receipts") {
      std::cout << "seq " << r->seq << ": delivered to " << r->delivered << " of " << r->total
                << ", read by " << r->read << " of " << r->total << "\n";
      for (const auto& m : r->members)
        std::cout << "  " << m.user << " delivered=" << m.delivered << " read=" << m.read << "\n";
    } else {
      std::cout << "ok " << r->group << " seq=" << r->seq << "\n";
    }
    std::cout.flush();
    return 0;
  });
}

}  // namespace meshchat::client
