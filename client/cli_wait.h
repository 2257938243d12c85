// Shared by the `chat` subcommands: exit codes, and waiting for the answer to a request.
#pragma once

#include <chrono>
#include <iostream>

#include "client/chat_client.h"

namespace meshchat::client {

inline constexpr int kExitRefused = 1, kExitUsage = 2, kExitConnect = 3, kExitTimeout = 4;

// Waits until `want` accepts an event (returns >= 0: the exit code) or `timeout_s` passes.
// An error frame ends the wait (printed; exit code 1): commands do one thing at a time.
template <typename Want>
int WaitFor(ChatClient& c, int timeout_s, Want want) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      std::cerr << "chat: no answer within " << timeout_s << " s\n";
      return kExitTimeout;
    }
    auto ev = c.Next(static_cast<int>(left.count()));
    if (!ev.ok()) {
      if (ev.status().code() == Code::kTimeout) continue;
      std::cerr << "chat: " << ev.status().message() << "\n";
      return kExitConnect;
    }
    if (auto* e = std::get_if<codec::Error>(&*ev)) {
      std::cerr << "chat: " << Describe(*e) << "\n";
      return kExitRefused;
    }
    if (int rc = want(*ev); rc >= 0) return rc;
  }
}

}  // namespace meshchat::client
