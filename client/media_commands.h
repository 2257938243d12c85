// `chat send-image`, `chat fetch` and `chat link`: media from the command line.
#pragma once

#include <string>

#include "client/chat_client.h"
#include "client/local_history.h"

namespace meshchat::client {

struct MediaCommand {
  std::string action;  // send-image, fetch, link
  std::string to;      // send-image: a user, or a group with --group
  bool group = false;
  std::string path;     // send-image: the file; fetch: where to write
  std::string caption;  // send-image: message text
  std::string type;     // send-image: content type (default: from the file name)
  std::string id;       // fetch, link: media id (hex)
  uint64_t ttl_s = 0;   // link
  int timeout_s = 30;
};

// Content type from a file name's extension ("" if unknown).
std::string ContentTypeFor(const std::string& path);

// Runs one media command; prints the result. Exit codes as chat's.
int RunMediaCommand(ChatClient& c, LocalHistory& h, const MediaCommand& cmd);

}  // namespace meshchat::client
