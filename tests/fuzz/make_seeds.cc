// Writes the seed corpora under tests/fuzz/corpus/ from real encodings, so seeds follow the
// codec. Run: build/bin/make_fuzz_seeds tests/fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "codec/client_messages.h"
#include "codec/conn_sync.h"
#include "codec/envelope.h"
#include "codec/group_messages.h"
#include "codec/history_messages.h"
#include "codec/media_messages.h"
#include "codec/presence_messages.h"
#include "codec/replication_messages.h"
#include "codec/token.h"
#include "nodes/shard/records.h"

using namespace meshchat::codec;
namespace fs = std::filesystem;

namespace {
void Write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || argv[1][0] == '-') {  // "--help" is not a corpus directory
    std::fprintf(stderr, "usage: make_fuzz_seeds CORPUS_DIR (e.g. tests/fuzz/corpus)\n");
    return 2;
  }
  const fs::path root = argv[1];
  const fs::path frames = root / "fuzz_client_frame";
  Write(frames, "hello", EncodeMessageFrame(Hello{1, "mc1.abc.def"}));
  Write(frames, "welcome", EncodeMessageFrame(Welcome{"alice", "phone", 1, "gw1", 1700000000000}));
  Write(frames, "send", EncodeMessageFrame(Send{"bob", 1, "hi"}));
  Write(frames, "sent", EncodeMessageFrame(Sent{1, "bob", 2, 3}));
  {
    const std::string id(kMediaIdBytes, 'i'), sha(kSha256Bytes, 's');
    const MediaRef ref{id, 10, "image/png", sha, sha};
    Write(frames, "send_media", EncodeMessageFrame(Send{"bob", 2, "pic", false, ref}));
    Write(frames, "upload_begin", EncodeMessageFrame(UploadBegin{1, 10, "image/png", sha}));
    Write(frames, "upload_state",
          EncodeMessageFrame(UploadState{1, id, 10, 4, 262144, true, "image/png", sha, sha}));
    Write(frames, "upload_chunk", EncodeMediaFrame(id, UploadChunk{4, "abcdef"}));
    Write(frames, "upload_status", EncodeMediaFrame(id, UploadStatus{}));
    Write(frames, "fetch", EncodeMediaFrame(id, Fetch{sha, 0, 10}));
    Write(frames, "media_data",
          EncodeMessageFrame(MediaData{id, 0, 10, "image/png", "0123456789"}));
    Write(frames, "media_link_req", EncodeMediaFrame(id, MediaLinkReq{sha, 60}));
    Write(frames, "media_link", EncodeMessageFrame(MediaLink{id, "http://h/media/x", 99}));
    Write(frames, "chat_mode", EncodeMessageFrame(ChatMode{"bob", 3, "permanent", 60}));
    Write(frames, "history", EncodeMessageFrame(History{1, "bob", 9, 0, 20}));
    HistoryPage page{1, "bob", "permanent", 60, {}, true};
    page.messages.push_back(Push{0, "bob", "alice", "phone", 1, 1, 3, "hi", "", false});
    page.messages.back().exp = 9;
    page.messages.back().media = ref;
    Write(frames, "history_page", EncodeMessageFrame(page));
  }
  Write(frames, "push",
        EncodeMessageFrame(Push{4, "alice", "alice", "phone", 2, 1, 3, "hi", "", false}));
  Write(frames, "receipt", EncodeMessageFrame(Receipt{5, "bob", ReceiptKind::kRead, 2}));
  Write(frames, "read", EncodeMessageFrame(Read{"alice", 2}));
  Write(frames, "ack", EncodeMessageFrame(Ack{2}));
  Write(frames, "ping", EncodeFrame(0x07, Encode(Ping{7})));
  Write(frames, "bye", EncodeMessageFrame(Bye{"done"}));
  Write(frames, "error", EncodeMessageFrame(Error{ErrorCode::kBadToken, "no", 5, true}));
  Write(frames, "group_create",
        EncodeMessageFrame(GroupRequest{"create", 1, "crew", {"bob", "carol"}, "Crew", 0, 0}));
  {
    GroupResult r;
    r.rid = 1;
    r.group = "crew";
    r.members = {{"alice", true, 3, 2}};
    r.messages = {Push{0, "crew", "alice", "phone", 3, 1, 5, "hi", "crew", false}};
    Write(frames, "group_result", EncodeMessageFrame(r));
  }
  Write(frames, "group_send", EncodeMessageFrame(GroupSend{"crew", 1, "hi"}));
  Write(frames, "group_hint", EncodeMessageFrame(GroupHint{"crew", 9}));
  Write(frames, "presence_watch", EncodeFrame(0x13, Encode(PresenceUsers{{"bob", "carol"}})));
  Write(frames, "presence", EncodeMessageFrame(Presence{"bob", true, 1700000000000}));
  Write(frames, "typing", EncodeMessageFrame(Typing{"bob", false, true}));
  Write(frames, "privacy", EncodeMessageFrame(Privacy{PrivacyMode::kNobody}));
  Write(frames, "pipelined",
        EncodeMessageFrame(Send{"bob", 1, "a"}) + EncodeMessageFrame(Ack{1}) +
            EncodeFrame(0x07, Encode(Ping{1})));
  Write(frames, "oversize_header", std::string("\x7f\xff\xff\xff\x03", 5));
  Write(frames, "zero_length", std::string("\0\0\0\0\x03", 5));
  Write(frames, "huge_map", EncodeFrame(0x03, std::string("\xdf\xff\xff\xff\xff", 5)));
  Write(frames, "deep", EncodeFrame(0x03, std::string(64, '\x91') + "\x01"));

  const fs::path envs = root / "fuzz_envelope";
  Envelope e;
  e.type = MeshType::kClientFrame;
  e.incarnation = 99;
  e.epoch = 1;
  e.req = 5;
  e.key = "alice";
  e.stamp = Stamp{"alice", "phone", 3, "gw1"};
  e.ftype = 3;
  e.body = Encode(Send{"bob", 1, "hi"});
  Write(envs, "client_frame", Encode(e));
  e.type = MeshType::kHeartbeat;
  e.body.clear();
  Write(envs, "heartbeat", Encode(e));
  Write(envs, "status", Encode(NodeStatus{"gw1", "gateway", 1, 1, 10, 2, 3, 3}));
  Write(envs, "array32", std::string("\xdd\xff\xff\xff\xff", 5));
  ConnDigest digest;
  digest.Add(7);
  digest.Add(71);
  Write(envs, "conn_digest", Encode(digest));
  Write(envs, "conn_list", Encode(ConnList{{7, 9}, {7, 71, 9}, {"alice", "bob", "carol"}}));
  ReplBatch batch{3, 17, 0, true, false, {}};
  batch.writes.push_back({ReplWrite::Kind::kPut, "inbox", std::string("bob\0\0\0\1", 7), "hi"});
  batch.writes.push_back({ReplWrite::Kind::kDel, "outbox", "s2", ""});
  Write(envs, "repl_batch", Encode(batch));
  Write(envs, "repl_copy",
        Encode(ReplBatch{3, 17, 0, false, true, {{ReplWrite::Kind::kClear, "", "", ""}}}));

  const fs::path tokens = root / "fuzz_token";
  Write(tokens, "valid_other_secret",
        SignToken({"alice", "phone", 1800000000, 1}, "another-secret-0123456789"));
  Write(tokens, "malformed", "mc1..");
  Write(tokens, "b64", Base64UrlEncode("\x00\x01\xfe\xff"));

  const fs::path maps = root / "fuzz_cluster_map";
  Write(maps, "two_nodes",
        "epoch 1\nnode gw1 gateway mesh=tcp://127.0.0.1:7101 client=127.0.0.1:7001\n"
        "node s1 session mesh=ipc:///tmp/s1\n");
  Write(maps, "bad", "epoch x\nnode\n");
  Write(maps, "curve",
        "epoch 2\nnode s1 session mesh=tcp://127.0.0.1:7201 curve=" + std::string(64, 'a') +
            "\nnode s2 session mesh=tcp://127.0.0.1:7202 curve=" + std::string(64, 'b') +
            "\noperator ops curve=" + std::string(64, '0') + "\n");

  using namespace meshchat::nodes;
  const fs::path records = root / "fuzz_records";
  InboxEntry entry;
  entry.chat = "bob";
  entry.from = "bob";
  entry.from_device = "pc";
  entry.seq = 3;
  entry.body = "hi";
  Write(records, "inbox_entry", EncodeRecord(entry));
  Write(records, "inbox_append", EncodeRecord(InboxAppend{{"alice", "carol"}, entry}));
  Write(records, "group_cursor", EncodeRecord(GroupCursor{"crew", "alice", 4, 2}));
  Write(records, "handover_rows", EncodeRecord(HandoverRows{2, "inbox", {{"k", "v"}}}));
  Write(records, "presence_setting", EncodeRecord(PresenceSetting{"alice", 1, "bob"}));
  Write(records, "uints", EncodeUints({1, 2, 3}));
  Write(records, "revoked", "alice phone 1700000000\nbob pc 5\n");
  return 0;
}
