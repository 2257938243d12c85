// `chat mode` and `chat scroll`: a chat's retention and the server's history of it.
#pragma once

#include <optional>
#include <string>

#include "client/chat_client.h"

namespace meshchat::client {

// "off" or "0" -> 0; "90s", "15m", "24h", "7d", or plain seconds. nullopt if malformed.
std::optional<uint64_t> ParseTimer(const std::string& s);

// `chat mode USER temporary|permanent [--timer DUR]`: waits for the change's `sent`.
int RunChatMode(ChatClient& c, const std::string& with, const std::string& mode,
                const std::string& timer, int timeout_s);

// `chat scroll USER [--before S] [--after S] [--limit N]`: prints one page of the chat's
// history as the server keeps it (permanent chats), oldest first.
int RunScroll(ChatClient& c, const codec::History& h, int timeout_s);

// One line per history message: "seq  time  who: body [media ...]".
void PrintHistoryLine(const codec::Push& p, const std::string& me);

}  // namespace meshchat::client
