// Every node serves Prometheus metrics on the port its map entry names.
#include <catch2/catch.hpp>

#include <httplib.h>

#include <chrono>
#include <thread>

#include "client/media_transfer.h"
#include "tests/integration/test_mesh.h"

using namespace meshchat;
using namespace meshchat::test;

TEST_CASE("nodes serve Prometheus metrics that move with traffic", "[integration][metrics]") {
  TestMesh mesh;
  auto a = mesh.Connect("alice", 0);
  auto b = mesh.Connect("bob", 0);
  for (int i = 0; i < 5; ++i) REQUIRE(a.Send("bob", "m").ok());
  for (int i = 0; i < 5; ++i) Expect<codec::Push>(b);
  std::string gw, s1, s2;
  for (int i = 0; i < 30; ++i) {  // snapshots are rendered once a second
    gw = mesh.Scrape("gw1");
    if (gw.find("meshchat_gateway_frames_in_total 0") == std::string::npos &&
        gw.find("meshchat_gateway_authenticated 2") != std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  CHECK_THAT(gw, Catch::Contains("# TYPE meshchat_gateway_frames_in_total counter"));
  CHECK_THAT(gw, Catch::Contains("meshchat_gateway_authenticated 2"));
  CHECK_THAT(gw, Catch::Contains("meshchat_up{role=\"gateway\"} 1"));
  s1 = mesh.Scrape("s1");
  s2 = mesh.Scrape("s2");
  CHECK_THAT(s1 + s2, Catch::Contains("meshchat_store_batches_total"));
  CHECK_THAT(s1, Catch::Contains("meshchat_store_durable_seconds_bucket{le=\"+Inf\"}"));
  CHECK_THAT(s1 + s2, Catch::Contains("meshchat_session_pushes_total") &&
                          Catch::Contains("meshchat_session_acks_total"));
  CHECK_THAT(mesh.Scrape("g1"), Catch::Contains("meshchat_up{role=\"group\"} 1"));
  CHECK_THAT(mesh.Scrape("p1"), Catch::Contains("meshchat_up{role=\"presence\"} 1"));
  // Labels are bounded: no user ids anywhere.
  CHECK(gw.find("alice") == std::string::npos);
  CHECK_THAT(gw, Catch::Contains("meshchat_gateway_frames_in_by_type_total{type=\"send\"} 5"));
  CHECK_THAT(gw, Catch::Contains("meshchat_gateway_frames_out_by_type_total{type=\"push\"}"));
  CHECK_THAT(gw, Catch::Contains("meshchat_queue_depth"));
}

TEST_CASE("errors by code and media store latency are in the metrics", "[integration][metrics]") {
  TestMesh mesh;
  auto a = mesh.Connect("alice", 0);
  REQUIRE(a.Send("not a valid id!", "m").ok());  // bad_request from the session shard
  Expect<codec::Error>(a);
  auto ref = client::UploadMedia(a, std::string(1000, 'x'), "image/png");
  REQUIRE(ref.ok());
  bool seen = false;
  std::string s, m1;
  for (int i = 0; i < 30 && !seen; ++i) {
    s = mesh.Scrape("s1") + mesh.Scrape("s2");
    m1 = mesh.Scrape("m1");
    seen = s.find("meshchat_errors_total{code=\"bad_request\"} 1") != std::string::npos &&
           m1.find("meshchat_media_store_write_seconds_count 1") != std::string::npos;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  INFO(s << m1);
  CHECK(seen);
  CHECK_THAT(m1, Catch::Contains("meshchat_media_uploads_completed_total 1"));
}
