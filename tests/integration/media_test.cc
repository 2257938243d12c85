// Media through a real mesh: uploads via one gateway, a message carrying the reference, the
// download via another gateway and over a signed HTTP URL; resume, access control, limits;
// the same on a real Ceph cluster (scripts/ceph-dev), and with that cluster going down.
#include <httplib.h>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <random>

#include "client/media_transfer.h"
#include "tests/integration/test_mesh.h"
#include "tests/random_bytes.h"

using namespace meshchat;
using namespace meshchat::test;

namespace {

// Sends a message with `ref` from a to b and returns what b receives.
codec::MediaRef ShareAndReceive(client::ChatClient& ca, client::ChatClient& cb,
                                const std::string& b, const codec::MediaRef& ref) {
  REQUIRE(ca.SendWithMedia(b, "look at this", ref).ok());
  auto push = Expect<codec::Push>(cb);
  CHECK(push.body == "look at this");
  REQUIRE(push.media);
  CHECK(push.media->id == ref.id);
  CHECK(push.media->size == ref.size);
  return *push.media;
}

void CheckSendAndFetch(TestMesh& mesh, size_t bytes) {
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  auto cb = mesh.Connect(b, 1);
  const std::string photo = RandomBytes(bytes, 42);
  uint64_t last_progress = 0;
  client::TransferOptions o;
  o.progress = [&](uint64_t done, uint64_t) { last_progress = done; };
  auto ref = client::UploadMedia(ca, photo, "image/jpeg", o);
  REQUIRE(ref.ok());
  CHECK(last_progress == photo.size());
  CHECK(ref->sha256 == client::Sha256(photo));
  const auto got_ref = ShareAndReceive(ca, cb, b, *ref);
  auto got = client::FetchMedia(cb, got_ref);
  REQUIRE(got.ok());
  CHECK(*got == photo);
}

}  // namespace

TEST_CASE("media: an image sent on gateway 1 is fetched on gateway 2 (local directory)",
          "[integration][media]") {
  TestMesh mesh;
  CheckSendAndFetch(mesh, 1'300'000);  // several chunks, pipelined
}

TEST_CASE("media: signed HTTP links, ranges, and not-found for everyone else",
          "[integration][media]") {
  TestMesh mesh;
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  auto cb = mesh.Connect(b, 1);
  auto cc = mesh.Connect("mallory", 0);
  const std::string photo = RandomBytes(300'000, 7);
  auto ref = client::UploadMedia(ca, photo, "image/png");
  REQUIRE(ref.ok());
  const auto shared = ShareAndReceive(ca, cb, b, *ref);

  auto link = client::RequestMediaLink(cb, shared, 60);
  REQUIRE(link.ok());
  INFO(link->url);
  const std::string prefix = "http://";
  REQUIRE(link->url.rfind(prefix, 0) == 0);
  const auto slash = link->url.find('/', prefix.size());
  httplib::Client http(link->url.substr(0, slash));
  const std::string path = link->url.substr(slash);
  auto whole = http.Get(path);
  REQUIRE(whole);
  CHECK(whole->status == 200);
  CHECK(whole->body == photo);
  CHECK(whole->get_header_value("Content-Type") == "image/png");
  auto part = http.Get(path, {{"Range", "bytes=1000-1999"}});
  REQUIRE(part);
  CHECK(part->status == 206);
  CHECK(part->body == photo.substr(1000, 1000));
  // Any change to the signed fields (user, expiry, size) is a plain 404.
  std::string forged = path;
  forged.insert(forged.find("u=") + 2, "x");  // another user
  auto bad = http.Get(forged);
  REQUIRE(bad);
  CHECK(bad->status == 404);
  auto bad_sig = http.Get(path.substr(0, path.size() - 4) + "0000");
  REQUIRE(bad_sig);
  CHECK(bad_sig->status == 404);

  // Mallory was not in the chat: no ticket, a made-up one, or a link request all say
  // media_not_found, exactly as for an id that does not exist.
  codec::MediaRef guess = shared;
  guess.ticket = std::string(32, 'x');
  auto denied = client::FetchMedia(cc, guess);
  CHECK(denied.status().code() == Code::kNotFound);
  CHECK(client::RequestMediaLink(cc, guess).status().code() == Code::kNotFound);
  codec::MediaRef nothing = guess;
  nothing.id = std::string(16, '\x01');
  CHECK(client::FetchMedia(cc, nothing).status().code() == Code::kNotFound);
  // ...and the uploader's status query is the uploader's alone.
  CHECK(client::QueryUpload(cc, ref->id).status().code() == Code::kNotFound);
}

TEST_CASE("media: an interrupted upload resumes from the last stored chunk",
          "[integration][media]") {
  TestMesh mesh;
  const std::string photo = RandomBytes(1'000'000, 9);
  std::string id;
  {
    auto ca = mesh.Connect("alice", 0);
    REQUIRE(ca.UploadBegin({1, photo.size(), "image/jpeg", client::Sha256(photo)}).ok());
    auto st = Expect<codec::UploadState>(ca);
    id = st.id;
    for (uint64_t off = 0; off < 2 * st.chunk; off += st.chunk) {
      REQUIRE(ca.SendMedia(id, codec::UploadChunk{off, photo.substr(off, st.chunk)}).ok());
      CHECK(Expect<codec::UploadState>(ca).next == off + st.chunk);
    }
  }                                    // the connection drops mid-upload
  auto ca = mesh.Connect("alice", 1);  // and comes back through the other gateway
  auto st = client::QueryUpload(ca, id);
  REQUIRE(st.ok());
  CHECK(st->next == 2 * st->chunk);
  CHECK_FALSE(st->done);
  auto ref = client::ResumeUpload(ca, id, photo);
  REQUIRE(ref.ok());
  auto back = client::FetchMedia(ca, *ref);
  REQUIRE(back.ok());
  CHECK(*back == photo);
}

TEST_CASE("media: wrong hash, oversize, bad offsets and unfinished media are refused",
          "[integration][media]") {
  TestMesh mesh;
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  const std::string photo = RandomBytes(100'000, 3);

  SECTION("a hash mismatch discards the upload") {
    std::string wrong = client::Sha256(photo);
    wrong[0] ^= 1;
    REQUIRE(ca.UploadBegin({5, photo.size(), "image/jpeg", wrong}).ok());
    auto st = Expect<codec::UploadState>(ca);
    REQUIRE(ca.SendMedia(st.id, codec::UploadChunk{0, photo}).ok());
    auto err = Expect<codec::Error>(ca);
    CHECK(err.code == codec::ErrorCode::kHashMismatch);
    CHECK(err.media == st.id);
    CHECK(client::QueryUpload(ca, st.id).status().code() == Code::kNotFound);
  }
  SECTION("over the size limit, past the declared size, a gap, a bad type") {
    REQUIRE(ca.UploadBegin({6, 65ull << 20, "image/jpeg", client::Sha256(photo)}).ok());
    CHECK(Expect<codec::Error>(ca).code == codec::ErrorCode::kMediaTooLarge);
    REQUIRE(ca.UploadBegin({7, 10, "application/x-sh", client::Sha256(photo)}).ok());
    CHECK(Expect<codec::Error>(ca).code == codec::ErrorCode::kMediaType);
    REQUIRE(ca.UploadBegin({8, 1000, "image/jpeg", client::Sha256(photo)}).ok());
    auto st = Expect<codec::UploadState>(ca);
    REQUIRE(ca.SendMedia(st.id, codec::UploadChunk{0, std::string(1001, 'x')}).ok());
    CHECK(Expect<codec::Error>(ca).code == codec::ErrorCode::kMediaTooLarge);
    REQUIRE(ca.SendMedia(st.id, codec::UploadChunk{500, std::string(10, 'x')}).ok());
    auto gap = Expect<codec::Error>(ca);
    CHECK(gap.code == codec::ErrorCode::kBadOffset);
    CHECK(gap.msg.find("expected 0") != std::string::npos);
    // Not complete: a message referencing it (with any ticket) is refused, and nothing of it
    // can be fetched.
    codec::MediaRef half{st.id, 1000, "image/jpeg", client::Sha256(photo), std::string(32, 'x')};
    REQUIRE(ca.SendWithMedia(b, "see", half).ok());
    CHECK(Expect<codec::Error>(ca).code == codec::ErrorCode::kMediaIncomplete);
    CHECK(client::FetchMedia(ca, half).status().code() == Code::kNotFound);
  }
  SECTION("a media frame without its id prefix") {
    REQUIRE(ca.SendMedia("short", codec::UploadStatus{}).ok());  // 5 + 1 bytes < 16
    CHECK(Expect<codec::Error>(ca).code == codec::ErrorCode::kMalformedFrame);
  }
}

TEST_CASE("media: images in a group reach every member", "[integration][media]") {
  TestMesh mesh;
  auto ca = mesh.Connect("gina", 0);
  auto cb = mesh.Connect("hank", 1);
  codec::GroupRequest create{"create", 0, "photos", {"hank"}, "Photos", 0, 0};
  REQUIRE(ca.Group(create).ok());
  REQUIRE(Expect<codec::GroupResult>(ca).ok);
  const std::string photo = RandomBytes(50'000, 5);
  auto ref = client::UploadMedia(ca, photo, "image/gif");
  REQUIRE(ref.ok());
  REQUIRE(ca.SendToGroupWithMedia("photos", "group pic", *ref).ok());
  codec::Push push;
  do push = Expect<codec::Push>(cb);
  while (push.system);
  REQUIRE(push.media);
  auto got = client::FetchMedia(cb, *push.media);
  REQUIRE(got.ok());
  CHECK(*got == photo);
}

TEST_CASE("media: on a real Ceph cluster (RADOS)", "[integration][media][rados]") {
  const char* conf = std::getenv("MESHCHAT_CEPH_CONF");
  if (!conf) FAIL("MESHCHAT_CEPH_CONF is not set: run scripts/ceph-dev up (scripts/test does)");
  TestMesh mesh(2, 2, std::string("--media rados --ceph-conf ") + conf);
  CheckSendAndFetch(mesh, 5'000'000);  // more than one 4 MiB stripe
}

TEST_CASE("media: RADOS going down mid-upload fails the upload, not the chat",
          "[integration][media][rados]") {
  // A private cluster, so stopping it does not disturb the tests sharing the main one.
  TempDir ceph;
  const std::string dev = std::string(MESHCHAT_SOURCE_DIR) + "/scripts/ceph-dev";
  const std::string env = "CEPH_DEV_DIR=" + ceph.path() + "/c ";
  std::string out;
  INFO(out);
  REQUIRE(RunCommand(env + dev + " up", &out) == 0);
  const std::string conf = ceph.path() + "/c/ceph.conf";
  struct Stop {
    std::string cmd;
    ~Stop() { RunCommand(cmd); }
  } stop{env + dev + " down"};
  TestMesh mesh(2, 2, "--media rados --ceph-conf " + conf + " --opt ceph_timeout_s=2");
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  auto cb = mesh.Connect(b, 1);
  const std::string photo = RandomBytes(600'000, 11);
  REQUIRE(ca.UploadBegin({1, photo.size(), "image/jpeg", client::Sha256(photo)}).ok());
  auto st = Expect<codec::UploadState>(ca);
  REQUIRE(ca.SendMedia(st.id, codec::UploadChunk{0, photo.substr(0, st.chunk)}).ok());
  REQUIRE(Expect<codec::UploadState>(ca).next == st.chunk);

  REQUIRE(RunCommand(env + dev + " down", &out) == 0);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(ca.SendMedia(st.id, codec::UploadChunk{st.chunk, photo.substr(st.chunk, st.chunk)}).ok());
  auto err = Expect<codec::Error>(ca, 20000);
  CHECK(err.code == codec::ErrorCode::kMediaUnavailable);                   // retryable
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(15));  // bounded
  // Chat goes on while the media store is down.
  REQUIRE(ca.Send(b, "still here").ok());
  CHECK(Expect<codec::Push>(cb).body == "still here");
  // Nothing half-written is visible: the upload stays where it was, incomplete.
  auto now = client::QueryUpload(ca, st.id);
  REQUIRE(now.ok());
  CHECK(now->next == st.chunk);
  CHECK_FALSE(now->done);
  codec::MediaRef half{st.id, photo.size(), "image/jpeg", client::Sha256(photo),
                       std::string(32, 'x')};
  CHECK(client::FetchMedia(cb, half).status().code() == Code::kNotFound);
}

TEST_CASE("media: size limit and content types are configurable", "[integration][media]") {
  TestMesh mesh(2, 2, "--opt max_mb=1 --opt media_types=image/png,text/plain");
  auto ca = mesh.Connect("alice", 0);
  REQUIRE(ca.UploadBegin({1, (1 << 20) + 1, "image/png", client::Sha256("x")}).ok());
  CHECK(Expect<codec::Error>(ca).code == codec::ErrorCode::kMediaTooLarge);
  REQUIRE(ca.UploadBegin({2, 10, "image/jpeg", client::Sha256("x")}).ok());
  CHECK(Expect<codec::Error>(ca).code == codec::ErrorCode::kMediaType);
  auto ref = client::UploadMedia(ca, "plain text, allowed here", "text/plain");
  REQUIRE(ref.ok());
}
