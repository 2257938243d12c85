// What this device received, kept on the device: `chat history` reads it back. Also keeps
// the device's last processed inbox position, so a restarted `chat` does not show a message
// twice. Files live in $MESHCHAT_HOME/var/client/ (or ./var/client/): USER.DEVICE.history
// (one tab-separated line per message: ts, chat, from, seq, body with \\ \t \n escaped, and
// for a disappearing message its expiry in ms) and
// USER.DEVICE.state (the last position), and USER.DEVICE.media: the media references this
// device uploaded or received (hex id, size, type, hex sha256, hex ticket per line), which
// `chat fetch ID` needs: the ticket is what grants access.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "codec/client_messages.h"

namespace meshchat::client {

struct HistoryLine {
  uint64_t ts = 0;
  std::string chat;
  std::string from;
  uint64_t seq = 0;
  std::string body;
};

class LocalHistory {
 public:
  LocalHistory(const std::string& user, const std::string& device);
  static std::string DefaultDir();

  void Append(const codec::Push& p);
  // Lines of the chat `with` (all chats if empty). Disappearing messages whose time has come
  // (at `now_ms`, ms since epoch) are deleted from the file instead.
  std::vector<HistoryLine> Read(const std::string& with, uint64_t now_ms) const;
  uint64_t LastN() const;
  void SaveLastN(uint64_t n) const;
  void SaveMedia(const codec::MediaRef& ref) const;
  std::optional<codec::MediaRef> FindMedia(const std::string& id_hex) const;

 private:
  std::string base_;
};

}  // namespace meshchat::client
