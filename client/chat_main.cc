// chat: the command-line client.
//   chat [--token T] [--server H:P]          interactive: "@bob hi", or "/to bob" then lines
//        [--ca FILE]                         TLS: H:P or tls://H:P (the default), checked
//                                            against FILE (else system CAs); tcp://H:P: plain
//   chat send --to bob "hi" [--wait sent|delivered|read]
//   chat listen [--count N] [--timeout S] [--read]   print each received body on its own line
//   chat history [--with USER]               what this device has received
//   chat presence USER..                     online / last seen
//   chat privacy everyone|contacts|nobody
//   chat group ACTION GROUP [ARGS..]          create, add, remove, leave, rename, info, list,
//                                            receipts, send
//   chat send-image --to bob photo.jpg [--caption T] [--group]   upload, then send
//   chat fetch MEDIA_ID -o FILE               download media this device received (or sent)
//   chat link MEDIA_ID [--ttl S]              a signed, expiring HTTP URL for it
//   chat mode USER temporary|permanent [--timer off|24h|7d|90d|SECONDS]
//   chat scroll USER [--before SEQ | --after SEQ] [--limit N]   the server's history
// Exit codes: 0 ok, 1 the server refused (error frame), 2 usage, 3 cannot connect or
// authenticate, 4 timed out.
#include <poll.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>

#include "client/chat_client.h"
#include "client/group_commands.h"
#include "client/local_history.h"
#include "client/media_commands.h"
#include "client/retention_commands.h"
#include "codec/token.h"

using namespace meshchat;
using client::ChatClient;

namespace {

constexpr int kExitRefused = 1, kExitUsage = 2, kExitConnect = 3, kExitTimeout = 4;

int TokenFrom(std::string& token) {
  if (token.empty())
    if (const char* t = std::getenv("MESHCHAT_TOKEN")) token = t;
  if (token.empty()) {
    std::cerr << "chat: no token: pass --token or set MESHCHAT_TOKEN (meshctl token USER)\n";
    return kExitUsage;
  }
  return 0;
}

int Connect(const std::string& server, const std::string& ca, std::string token,
            std::optional<ChatClient>& out) {
  if (int rc = TokenFrom(token); rc != 0) return rc;
  auto ep = client::FindServer(server, ca);
  if (!ep.ok()) {
    std::cerr << "chat: " << ep.status().message() << "\n";
    return kExitConnect;
  }
  auto c = ChatClient::Connect(*ep, token);
  if (!c.ok()) {
    std::cerr << "chat: " << c.status().message() << "\n";
    return kExitConnect;
  }
  out.emplace(std::move(c).value());
  return 0;
}

// " [media ID TYPE N bytes]" for a message carrying media (fetch it with `chat fetch ID`).
std::string MediaNote(const codec::Push& p) {
  if (!p.media) return "";
  return " [media " + codec::HexOf(p.media->id) + " " + p.media->type + " " +
         std::to_string(p.media->size) + " bytes]";
}

int64_t MsLeft(std::chrono::steady_clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                               std::chrono::steady_clock::now())
      .count();
}

// `send` does not consume the inbox (auto-ack off): pushes and receipts that arrive stay
// queued for the next listen or interactive session.
int CmdSend(ChatClient& c, const std::string& to, const std::string& text, const std::string& wait,
            int timeout_s) {
  c.set_auto_ack(false);
  auto cid = c.Send(to, text);
  if (!cid.ok()) {
    std::cerr << "chat: " << cid.status().message() << "\n";
    return kExitConnect;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  uint64_t seq = 0;
  while (MsLeft(deadline) > 0) {
    auto ev = c.Next(static_cast<int>(MsLeft(deadline)));
    if (!ev.ok()) {
      if (ev.status().code() == Code::kTimeout) break;
      std::cerr << "chat: " << ev.status().message() << "\n";
      return kExitConnect;
    }
    if (auto* s = std::get_if<codec::Sent>(&*ev); s && s->cid == *cid) {
      seq = s->seq;
      std::cout << "sent seq=" << seq << std::endl;
      if (wait == "sent") return 0;
    } else if (auto* r = std::get_if<codec::Receipt>(&*ev);
               r && seq && r->chat == to && r->seq >= seq) {
      const bool read = r->kind == codec::ReceiptKind::kRead;
      if (r->kind == codec::ReceiptKind::kDelivered || read) {
        std::cout << codec::ReceiptKindName(r->kind) << " seq=" << r->seq << std::endl;
        if (wait == "delivered" || read) return 0;
      }
    } else if (auto* e = std::get_if<codec::Error>(&*ev); e && (!e->cid || *e->cid == *cid)) {
      std::cerr << "chat: " << client::Describe(*e) << "\n";
      return kExitRefused;
    }
  }
  std::cerr << "chat: no " << (seq ? wait : std::string("sent")) << " tick within " << timeout_s
            << " s\n";
  return kExitTimeout;
}

int CmdListen(ChatClient& c, client::LocalHistory& h, int count, double timeout_s, bool read) {
  int got = 0;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(timeout_s * 1000));
  while (count <= 0 || got < count) {
    int wait = -1;
    if (timeout_s > 0) {
      if (MsLeft(deadline) <= 0) break;
      wait = static_cast<int>(MsLeft(deadline));
    }
    auto ev = c.Next(wait);
    if (!ev.ok()) {
      if (ev.status().code() == Code::kTimeout) break;
      std::cerr << "chat: " << ev.status().message() << "\n";
      return kExitConnect;
    }
    if (auto* p = std::get_if<codec::Push>(&*ev)) {
      h.Append(*p);
      h.SaveLastN(c.last_n());
      if (p->from == c.welcome().user) continue;           // our own, sent from another device
      std::cout << p->body << MediaNote(*p) << std::endl;  // flushed per line for scripts
      if (read) (void)c.Read(p->chat, p->seq);
      ++got;
    } else if (std::get_if<codec::Receipt>(&*ev)) {
      h.SaveLastN(c.last_n());
    } else if (auto* e = std::get_if<codec::Error>(&*ev)) {
      std::cerr << "chat: " << client::Describe(*e) << "\n";
      if (e->fatal) return kExitRefused;
    }
  }
  if (count > 0 && got < count) {
    std::cerr << "chat: received " << got << " of " << count << " messages before the timeout\n";
    return kExitTimeout;
  }
  return 0;
}

void Show(ChatClient& c, client::LocalHistory& h, const client::Event& ev) {
  if (auto* p = std::get_if<codec::Push>(&ev); p && !p->group.empty()) {
    h.Append(*p);
    h.SaveLastN(c.last_n());
    if (p->system)
      std::cout << "[" << p->group << "] * " << p->body << "\n";
    else
      std::cout << "[" << p->group << "/" << p->from << "] " << p->body << MediaNote(*p) << "\n";
    if (!p->system) (void)c.ReadGroup(p->group, p->seq);
  } else if (auto* p = std::get_if<codec::Push>(&ev)) {
    h.Append(*p);
    h.SaveLastN(c.last_n());
    if (p->from == c.welcome().user) {
      std::cout << "[you -> " << p->chat << ", other device] " << p->body << "\n";
    } else {
      std::cout << "[" << p->from << "] " << p->body << MediaNote(*p) << "\n";
      (void)c.Read(p->chat, p->seq);  // shown on screen: the chat is open
    }
  } else if (auto* s = std::get_if<codec::Sent>(&ev)) {
    std::cout << "  \u2713 sent to " << s->to << " (seq " << s->seq << ")\n";
  } else if (auto* r = std::get_if<codec::Receipt>(&ev)) {
    h.SaveLastN(c.last_n());
    const char* ticks = r->kind == codec::ReceiptKind::kExpired ? "\u2717" : "\u2713\u2713";
    std::cout << "  " << ticks << " " << codec::ReceiptKindName(r->kind) << " by " << r->chat
              << (r->kind == codec::ReceiptKind::kExpired ? " (seq " : " (up to seq ") << r->seq
              << ")\n";
  } else if (auto* t = std::get_if<codec::TypingNotice>(&ev)) {
    if (t->on) std::cout << "  ... " << t->from << " is typing\n";
  } else if (auto* pr = std::get_if<codec::Presence>(&ev)) {
    std::cout << "* " << pr->user << (pr->online ? " is online" : " is offline") << "\n";
  } else if (auto* e = std::get_if<codec::Error>(&ev)) {
    std::cout << "* " << client::Describe(*e) << "\n";
  } else if (std::get_if<codec::Bye>(&ev)) {
    std::cout << "* server said goodbye\n";
  }
  std::cout.flush();
}

int Interactive(ChatClient& c, client::LocalHistory& h) {
  std::string to;
  std::cout << "connected as " << c.welcome().user << " (" << c.welcome().device << ") via "
            << c.welcome().node << ". Type '@user text' to send, '#group text' to a group, "
            << "'/to user' to pick a recipient, '/quit' to leave." << std::endl;
  std::string line;
  while (true) {
    pollfd fds[2] = {{0, POLLIN, 0}, {c.fd(), POLLIN, 0}};
    if (!c.HasBufferedEvent() && poll(fds, 2, -1) < 0) continue;
    if (c.HasBufferedEvent() || (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      auto ev = c.Next(0);
      if (!ev.ok() && ev.status().code() != Code::kTimeout) {
        std::cout << "* " << ev.status().message() << std::endl;
        return kExitConnect;
      }
      if (ev.ok()) Show(c, h, *ev);
      continue;
    }
    if (fds[0].revents & (POLLIN | POLLHUP)) {
      if (!std::getline(std::cin, line) || line == "/quit") {
        (void)c.Bye();
        return 0;
      }
      if (line.rfind("/to ", 0) == 0) {
        to = line.substr(4);
        std::cout << "* now talking to " << to << std::endl;
        (void)c.WatchPresence({to});  // the chat is open: follow its presence
        continue;
      }
      std::string target = to, text = line;
      if (!line.empty() && line[0] == '@') {
        const size_t sp = line.find(' ');
        target = line.substr(1, sp == std::string::npos ? std::string::npos : sp - 1);
        text = sp == std::string::npos ? "" : line.substr(sp + 1);
      }
      if (!line.empty() && line[0] == '#') {  // #group text: to a group
        const size_t sp = line.find(' ');
        if (sp != std::string::npos)
          if (auto r = c.SendToGroup(line.substr(1, sp - 1), line.substr(sp + 1)); !r.ok())
            std::cout << "* " << r.status().message() << std::endl;
        continue;
      }
      if (target.empty()) {
        std::cout << "* no recipient: use '@user text' or '/to user'" << std::endl;
        continue;
      }
      if (text.empty()) continue;
      if (auto r = c.Send(target, text); !r.ok())
        std::cout << "* " << r.status().message() << std::endl;
    }
  }
}

int CmdPresence(ChatClient& c, const std::vector<std::string>& users) {
  c.set_auto_ack(false);
  if (Status s = c.QueryPresence(users); !s.ok()) {
    std::cerr << "chat: " << s.message() << "\n";
    return kExitConnect;
  }
  size_t got = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (got < users.size() && MsLeft(deadline) > 0) {
    auto ev = c.Next(static_cast<int>(MsLeft(deadline)));
    if (!ev.ok()) break;
    if (auto* p = std::get_if<codec::Presence>(&*ev)) {
      ++got;
      if (p->online) {
        std::cout << p->user << " online\n";
      } else if (p->last_seen == 0) {
        std::cout << p->user << " not seen\n";
      } else {
        const time_t secs = static_cast<time_t>(p->last_seen / 1000);
        char when[32];
        std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&secs));
        std::cout << p->user << " last seen " << when << "\n";
      }
    } else if (auto* e = std::get_if<codec::Error>(&*ev)) {
      std::cerr << "chat: " << client::Describe(*e) << "\n";
      return kExitRefused;
    }
  }
  return got == users.size() ? 0 : kExitTimeout;
}

int CmdHistory(std::string token, const std::string& with) {
  if (int rc = TokenFrom(token); rc != 0) return rc;
  codec::TokenClaims claims;
  if (!codec::ReadClaimsUnverified(token, claims)) {
    std::cerr << "chat: that is not a meshchat token\n";
    return kExitUsage;
  }
  client::LocalHistory h(claims.user, claims.device);
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (const auto& l : h.Read(with, static_cast<uint64_t>(now_ms))) {
    const time_t secs = static_cast<time_t>(l.ts / 1000);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&secs));
    std::cout << when << "  " << (l.from == claims.user ? "you -> " + l.chat : l.from) << ": "
              << l.body << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"chat: meshchat command-line client"};
  std::string token, server, ca;
  app.add_option("--token", token, "access token (default $MESHCHAT_TOKEN)");
  app.add_option("--server", server,
                 "gateway HOST:PORT or tls://HOST:PORT (TLS), tcp://HOST:PORT (plain); "
                 "default: the local mesh");
  app.add_option("--ca", ca,
                 "CA certificates (PEM) the gateway's certificate must chain to (default "
                 "$MESHCHAT_CA, the local mesh's VAR/tls/ca.pem, else the system's)");

  std::string to, text, wait = "sent";
  int send_timeout = 10;
  auto* csend = app.add_subcommand("send", "send one message and wait for its tick");
  csend->add_option("--to", to, "recipient user id")->required();
  csend->add_option("text", text, "message text")->required();
  csend->add_option("--wait", wait, "which tick to wait for")
      ->check(CLI::IsMember({"sent", "delivered", "read"}));
  csend->add_option("--timeout", send_timeout, "seconds to wait for the tick");

  int count = 0;
  double timeout = 0;
  bool read = false;
  auto* clisten = app.add_subcommand("listen", "print received message bodies, one per line");
  clisten->add_option("--count", count, "exit after N messages (0 = no limit)");
  clisten->add_option("--timeout", timeout, "give up after S seconds (0 = never)");
  clisten->add_flag("--read", read, "mark each printed message read (blue ticks)");

  client::GroupCommand gcmd;
  std::vector<std::string> gwords;
  auto* cgroup = app.add_subcommand(
      "group",
      "group commands: create G [USERS..] | add G USERS.. | remove G USERS.. | leave G | "
      "rename G NAME | info G | list | receipts G SEQ | send G TEXT | mode G MODE [TIMER] | "
      "history G [BEFORE]");
  cgroup->add_option("action", gcmd.action, "what to do")->required();
  cgroup->add_option("words", gwords, "group id, then the action's arguments");
  cgroup->add_option("--timeout", gcmd.timeout_s, "seconds to wait for the answer");

  std::vector<std::string> who;
  auto* cpresence = app.add_subcommand("presence", "show online / last seen of users");
  cpresence->add_option("users", who, "user ids")->required();
  std::string mode;
  auto* cprivacy = app.add_subcommand("privacy", "who sees your online / last seen");
  cprivacy->add_option("mode", mode, "everyone, contacts or nobody")
      ->required()
      ->check(CLI::IsMember({"everyone", "contacts", "nobody"}));

  client::MediaCommand mcmd;
  auto* cimage = app.add_subcommand("send-image", "upload a file, then send it in a message");
  cimage->add_option("--to", mcmd.to, "recipient user id (or group id with --group)")->required();
  cimage->add_option("file", mcmd.path, "the file")->required();
  cimage->add_option("--caption", mcmd.caption, "message text");
  cimage->add_option("--type", mcmd.type, "content type (default: from the extension)");
  cimage->add_flag("--group", mcmd.group, "--to names a group");
  cimage->add_option("--timeout", mcmd.timeout_s, "seconds to wait for each answer");
  auto* cfetch = app.add_subcommand("fetch", "download media received in a message");
  cfetch->add_option("id", mcmd.id, "media id (hex, as listen and history show it)")->required();
  cfetch->add_option("-o,--output", mcmd.path, "file to write")->required();
  cfetch->add_option("--timeout", mcmd.timeout_s, "seconds to wait for each answer");
  auto* clink = app.add_subcommand("link", "print a signed, expiring HTTP URL for media");
  clink->add_option("id", mcmd.id, "media id (hex)")->required();
  clink->add_option("--ttl", mcmd.ttl_s, "seconds the URL stays valid (server caps it)");

  std::string mode_with, mode_name, mode_timer = "off";
  auto* cmode = app.add_subcommand("mode", "make a chat temporary or permanent, set its timer");
  cmode->add_option("user", mode_with, "the other user")->required();
  cmode->add_option("mode", mode_name, "temporary or permanent")
      ->required()
      ->check(CLI::IsMember({"temporary", "permanent"}));
  cmode->add_option("--timer", mode_timer, "disappearing messages: off, 30s, 24h, 7d, 90d");
  codec::History scroll;
  auto* cscroll = app.add_subcommand("scroll", "a page of a permanent chat's server history");
  cscroll->add_option("user", scroll.chat, "the other user")->required();
  cscroll->add_option("--before", scroll.before, "messages before this sequence (default: latest)");
  cscroll->add_option("--after", scroll.after, "messages after this sequence instead");
  cscroll->add_option("--limit", scroll.limit, "messages per page (server caps at 100)");

  std::string with;
  auto* chistory = app.add_subcommand("history", "show what this device has received");
  chistory->add_option("--with", with, "only the chat with this user");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  if (chistory->parsed()) return CmdHistory(token, with);
  std::optional<ChatClient> c;
  if (int rc = Connect(server, ca, token, c); rc != 0) return rc;
  client::LocalHistory h(c->welcome().user, c->welcome().device);
  c->set_last_n(h.LastN());
  if (csend->parsed()) return CmdSend(*c, to, text, wait, send_timeout);
  if (cmode->parsed()) return client::RunChatMode(*c, mode_with, mode_name, mode_timer, 10);
  if (cscroll->parsed()) return client::RunScroll(*c, scroll, 10);
  if (cimage->parsed() || cfetch->parsed() || clink->parsed()) {
    mcmd.action = cimage->parsed() ? "send-image" : cfetch->parsed() ? "fetch" : "link";
    return client::RunMediaCommand(*c, h, mcmd);
  }
  if (cpresence->parsed()) return CmdPresence(*c, who);
  if (cprivacy->parsed()) {
    const auto m = mode == "contacts" ? codec::PrivacyMode::kContacts
                   : mode == "nobody" ? codec::PrivacyMode::kNobody
                                      : codec::PrivacyMode::kEveryone;
    if (Status s = c->SetPrivacy(m); !s.ok()) {
      std::cerr << "chat: " << s.message() << "\n";
      return kExitConnect;
    }
    (void)c->Ping(1);  // the answer to a ping after it: the setting has been taken
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      auto ev = c->Next(1000);
      if (ev.ok() && std::holds_alternative<client::Pong>(*ev)) {
        std::cout << "privacy " << mode << "\n";
        return 0;
      }
    }
    return kExitTimeout;
  }
  if (cgroup->parsed()) {
    if (gcmd.action != "list") {
      if (gwords.empty()) {
        std::cerr << "chat: group " << gcmd.action << " needs a group id\n";
        return kExitUsage;
      }
      gcmd.group = gwords[0];
      gcmd.args.assign(gwords.begin() + 1, gwords.end());
    }
    return client::RunGroupCommand(*c, gcmd);
  }
  if (clisten->parsed()) return CmdListen(*c, h, count, timeout, read);
  return Interactive(*c, h);
}
