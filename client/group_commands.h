// `chat group ...`: group operations from the command line (see chat_main.cc).
#pragma once

#include <string>
#include <vector>

#include "client/chat_client.h"

namespace meshchat::client {

struct GroupCommand {
  std::string action;  // create add remove leave rename info list receipts send
  std::string group;
  std::vector<std::string> args;  // users, a name, a sequence or the text, by action
  int timeout_s = 10;
};

// Runs one group command on a connected client; prints the result. Exit codes as chat's.
int RunGroupCommand(ChatClient& c, const GroupCommand& cmd);

}  // namespace meshchat::client
