// chat: the command-line client.
//   chat [--token T] [--server H:P]              interactive: "@bob hi" or "/to bob" then lines
//   chat send --to bob "hi"                       send one message, wait for the sent tick
//   chat listen [--count N] [--timeout S]         print each received body on its own line
// Exit codes: 0 ok, 1 the server refused (error frame), 2 usage, 3 cannot connect or
// authenticate, 4 timed out.
#include <poll.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>

#include "client/chat_client.h"

using namespace meshchat;
using client::ChatClient;

namespace {

constexpr int kExitRefused = 1, kExitUsage = 2, kExitConnect = 3, kExitTimeout = 4;

int Connect(const std::string& server, std::string token, std::optional<ChatClient>& out) {
  if (token.empty())
    if (const char* t = std::getenv("MESHCHAT_TOKEN")) token = t;
  if (token.empty()) {
    std::cerr << "chat: no token: pass --token or set MESHCHAT_TOKEN (meshctl token USER)\n";
    return kExitUsage;
  }
  auto ep = client::FindServer(server);
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

int CmdSend(ChatClient& c, const std::string& to, const std::string& text, int timeout_s) {
  auto cid = c.Send(to, text);
  if (!cid.ok()) {
    std::cerr << "chat: " << cid.status().message() << "\n";
    return kExitConnect;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    auto ev = c.Next(static_cast<int>(left.count()));
    if (!ev.ok()) {
      if (ev.status().code() == Code::kTimeout) break;
      std::cerr << "chat: " << ev.status().message() << "\n";
      return kExitConnect;
    }
    if (auto* s = std::get_if<codec::Sent>(&*ev); s && s->cid == *cid) {
      std::cout << "sent id=" << s->id << "\n";
      (void)c.Bye();
      return 0;
    }
    if (auto* e = std::get_if<codec::Error>(&*ev); e && (!e->cid || *e->cid == *cid)) {
      std::cerr << "chat: " << client::Describe(*e) << "\n";
      return kExitRefused;
    }
  }
  std::cerr << "chat: no sent ack within " << timeout_s << " s\n";
  return kExitTimeout;
}

int CmdListen(ChatClient& c, int count, double timeout_s) {
  int got = 0;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(timeout_s * 1000));
  while (count <= 0 || got < count) {
    int wait = -1;
    if (timeout_s > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      wait = static_cast<int>(left.count());
    }
    auto ev = c.Next(wait);
    if (!ev.ok()) {
      if (ev.status().code() == Code::kTimeout) break;
      std::cerr << "chat: " << ev.status().message() << "\n";
      return kExitConnect;
    }
    if (auto* p = std::get_if<codec::Push>(&*ev)) {
      std::cout << p->body << std::endl;  // flushed per line for scripts
      ++got;
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

int Interactive(ChatClient& c) {
  std::string to;
  std::cout << "connected as " << c.welcome().user << " (" << c.welcome().device << ") via "
            << c.welcome().node << ". Type '@user text' to send, '/to user' to pick a recipient, "
            << "'/quit' to leave.\n";
  std::string line;
  while (true) {
    pollfd fds[2] = {{0, POLLIN, 0}, {c.fd(), POLLIN, 0}};
    if (!c.HasBufferedEvent() && poll(fds, 2, -1) < 0) continue;
    if (c.HasBufferedEvent() || (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      auto ev = c.Next(0);
      if (!ev.ok() && ev.status().code() != Code::kTimeout) {
        std::cout << "* " << ev.status().message() << "\n";
        return kExitConnect;
      }
      if (ev.ok()) {
        if (auto* p = std::get_if<codec::Push>(&*ev))
          std::cout << "[" << p->from << "] " << p->body << "\n";
        else if (auto* s = std::get_if<codec::Sent>(&*ev))
          std::cout << "  \u2713 sent (id " << s->id << ")\n";
        else if (auto* e = std::get_if<codec::Error>(&*ev))
          std::cout << "* " << client::Describe(*e) << "\n";
        else if (std::get_if<codec::Bye>(&*ev))
          std::cout << "* server said goodbye\n";
      }
      continue;
    }
    if (fds[0].revents & (POLLIN | POLLHUP)) {
      if (!std::getline(std::cin, line) || line == "/quit") {
        (void)c.Bye();
        return 0;
      }
      if (line.rfind("/to ", 0) == 0) {
        to = line.substr(4);
        std::cout << "* now talking to " << to << "\n";
        continue;
      }
      std::string target = to, text = line;
      if (!line.empty() && line[0] == '@') {
        const size_t sp = line.find(' ');
        target = line.substr(1, sp == std::string::npos ? std::string::npos : sp - 1);
        text = sp == std::string::npos ? "" : line.substr(sp + 1);
      }
      if (target.empty()) {
        std::cout << "* no recipient: use '@user text' or '/to user'\n";
        continue;
      }
      if (text.empty()) continue;
      if (auto r = c.Send(target, text); !r.ok()) std::cout << "* " << r.status().message() << "\n";
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"chat: meshchat command-line client"};
  std::string token, server;
  app.add_option("--token", token, "access token (default $MESHCHAT_TOKEN)");
  app.add_option("--server", server, "gateway HOST:PORT (default: the local mesh)");

  std::string to, text;
  int send_timeout = 10;
  auto* csend = app.add_subcommand("send", "send one message and wait for the sent tick");
  csend->add_option("--to", to, "recipient user id")->required();
  csend->add_option("text", text, "message text")->required();
  csend->add_option("--timeout", send_timeout, "seconds to wait for the ack");

  int count = 0;
  double timeout = 0;
  auto* clisten = app.add_subcommand("listen", "print received message bodies, one per line");
  clisten->add_option("--count", count, "exit after N messages (0 = no limit)");
  clisten->add_option("--timeout", timeout, "give up after S seconds (0 = never)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  std::optional<ChatClient> c;
  if (int rc = Connect(server, token, c); rc != 0) return rc;
  if (csend->parsed()) return CmdSend(*c, to, text, send_timeout);
  if (clisten->parsed()) return CmdListen(*c, count, timeout);
  return Interactive(*c);
}
