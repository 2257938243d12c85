// The conversation owner: the shard that the conversation id ("a|b") hashes to. It gives each
// one-to-one conversation one total order for both directions: in one store batch it dedups
// on (sender, cid), assigns the next conversation sequence, and queues the message on reliable
// channels to the recipient's shard and to the sender's own shard (for the sender's other
// devices). Only after that batch commits does the sender get `sent`.
//
// We sequence at the conversation's own shard rather than at the recipient's so that both
// directions share one order (a chat shows the same interleaving on every device); groups
// reuse the same shape with more members.
#pragma once

#include "nodes/session/session_context.h"
#include "nodes/shard/records.h"

namespace meshchat::nodes {

class Conversations {
 public:
  explicit Conversations(SessionContext& ctx) : ctx_(ctx) {}
  // A `deliver` from the sender's shard: body is the client's validated send (or chat_mode,
  // when ftype says so) body.
  Status OnDeliver(const std::string& from, const codec::Envelope& env, Effects& fx);
  // A history request (key = conversation, stamp = who asks, body = History): answered
  // straight to the asker's connection, for the two participants only.
  Status OnHistory(const codec::Envelope& env, Effects& fx);
  // Deletes up to `max` disappeared messages from permanent chats' logs.
  Status ExpireLog(size_t max);
  // Forgets up to `max` dedup records older than the inbox retention: a retry can only
  // concern a message whose sender has not had its `sent` yet, never one that old.
  Status ExpireDedup(size_t max);

 private:
  struct Settings {
    uint64_t next_seq = 1;
    bool permanent = false;  // the server keeps the history (default: temporary, a mailbox)
    uint64_t timer_s = 0;    // disappearing messages after this many seconds; 0 = off
  };
  Result<Settings> LoadSettings(const std::string& conv);
  Status Log(const std::string& conv, const InboxEntry& e);
  SessionContext& ctx_;
};

}  // namespace meshchat::nodes
