#include "client/media_commands.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iostream>
#include <sstream>

#include "client/cli_wait.h"
#include "client/media_transfer.h"

namespace meshchat::client {

namespace {
constexpr uint64_t kMaxFileBytes = 1ull << 30;  // the server's limit is lower; this guards RAM

int ExitFor(const Status& s) {
  switch (s.code()) {
    case Code::kTimeout: return kExitTimeout;
    case Code::kIo: return kExitConnect;
    default: return kExitRefused;
  }
}

// A progress bar on stderr when it is a terminal; nothing otherwise (scripts, tests).
ProgressFn Bar(const std::string& label) {
  if (!::isatty(STDERR_FILENO)) return nullptr;
  return [label](uint64_t done, uint64_t total) {
    const int width = 30;
    const int filled = total ? static_cast<int>(width * done / total) : width;
    std::cerr << "\r" << label << " [" << std::string(static_cast<size_t>(filled), '#')
              << std::string(static_cast<size_t>(width - filled), ' ') << "] "
              << (total ? 100 * done / total : 100) << "% " << done / 1024 << "/" << total / 1024
              << " KiB" << (done >= total ? "\n" : "") << std::flush;
  };
}

int SendImage(ChatClient& c, LocalHistory& h, const MediaCommand& cmd) {
  std::ifstream in(cmd.path, std::ios::binary | std::ios::ate);
  if (!in) {
    std::cerr << "chat: cannot read " << cmd.path << "\n";
    return kExitUsage;
  }
  const auto size = static_cast<uint64_t>(in.tellg());
  if (size == 0 || size > kMaxFileBytes) {
    std::cerr << "chat: " << cmd.path << " is empty or too large\n";
    return kExitUsage;
  }
  const std::string type = cmd.type.empty() ? ContentTypeFor(cmd.path) : cmd.type;
  if (type.empty()) {
    std::cerr << "chat: unknown content type for " << cmd.path << "; pass --type\n";
    return kExitUsage;
  }
  std::string data(static_cast<size_t>(size), '\0');
  in.seekg(0);
  in.read(data.data(), static_cast<std::streamsize>(size));
  c.set_auto_ack(false);  // pushes that arrive meanwhile stay queued for the next listen
  TransferOptions o;
  o.timeout_ms = cmd.timeout_s * 1000;
  o.progress = Bar("upload");
  auto ref = UploadMedia(c, data, type, o);
  if (!ref.ok()) {
    std::cerr << "chat: upload failed: " << ref.status().message() << "\n";
    return ExitFor(ref.status());
  }
  h.SaveMedia(*ref);
  auto cid = cmd.group ? c.SendToGroupWithMedia(cmd.to, cmd.caption, *ref)
                       : c.SendWithMedia(cmd.to, cmd.caption, *ref);
  if (!cid.ok()) {
    std::cerr << "chat: " << cid.status().message() << "\n";
    return kExitConnect;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(cmd.timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    auto ev = c.Next(1000);
    if (!ev.ok() && ev.status().code() != Code::kTimeout) {
      std::cerr << "chat: " << ev.status().message() << "\n";
      return kExitConnect;
    }
    if (!ev.ok()) continue;
    if (auto* s = std::get_if<codec::Sent>(&*ev); s && s->cid == *cid) {
      std::cout << "sent seq=" << s->seq << " media=" << codec::HexOf(ref->id) << " " << type << " "
                << size << " bytes" << std::endl;
      return 0;
    }
    if (auto* e = std::get_if<codec::Error>(&*ev); e && (!e->cid || *e->cid == *cid)) {
      std::cerr << "chat: " << Describe(*e) << "\n";
      return kExitRefused;
    }
  }
  std::cerr << "chat: no sent tick within " << cmd.timeout_s << " s\n";
  return kExitTimeout;
}

std::optional<codec::MediaRef> Known(LocalHistory& h, const std::string& id) {
  auto ref = h.FindMedia(id);
  if (!ref)
    std::cerr << "chat: this device has no reference to media " << id
              << " (it arrives in a message: run chat listen first)\n";
  return ref;
}

}  // namespace

std::string ContentTypeFor(const std::string& path) {
  std::string ext = path.substr(
      path.find_last_of('.') == std::string::npos ? path.size() : path.find_last_of('.') + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  static const std::pair<const char*, const char*> kTypes[] = {
      {"jpg", "image/jpeg"}, {"jpeg", "image/jpeg"},    {"png", "image/png"},
      {"gif", "image/gif"},  {"webp", "image/webp"},    {"heic", "image/heic"},
      {"mp4", "video/mp4"},  {"ogg", "audio/ogg"},      {"mp3", "audio/mpeg"},
      {"m4a", "audio/mp4"},  {"pdf", "application/pdf"}};
  for (const auto& [e, t] : kTypes)
    if (ext == e) return t;
  return "";
}

int RunMediaCommand(ChatClient& c, LocalHistory& h, const MediaCommand& cmd) {
  if (cmd.action == "send-image") return SendImage(c, h, cmd);
  auto ref = Known(h, cmd.id);
  if (!ref) return kExitUsage;
  if (cmd.action == "link") {
    auto link = RequestMediaLink(c, *ref, cmd.ttl_s, cmd.timeout_s * 1000);
    if (!link.ok()) {
      std::cerr << "chat: " << link.status().message() << "\n";
      return ExitFor(link.status());
    }
    std::cout << link->url << "\n";
    return 0;
  }
  c.set_auto_ack(false);
  TransferOptions o;
  o.timeout_ms = cmd.timeout_s * 1000;
  o.progress = Bar("fetch");
  auto data = FetchMedia(c, *ref, o);
  if (!data.ok()) {
    std::cerr << "chat: fetch failed: " << data.status().message() << "\n";
    return ExitFor(data.status());
  }
  std::ofstream out(cmd.path, std::ios::binary | std::ios::trunc);
  if (!out.write(data->data(), static_cast<std::streamsize>(data->size()))) {
    std::cerr << "chat: cannot write " << cmd.path << "\n";
    return kExitUsage;
  }
  std::cout << "fetched " << data->size() << " bytes (" << ref->type << ", sha256 ok) to "
            << cmd.path << "\n";
  return 0;
}

}  // namespace meshchat::client
