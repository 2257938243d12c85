// The etcd client against a real etcd (leases, create-if-absent, guarded puts, expiry), and
// against a fake one that answers garbage.
#include "store/etcd_client.h"

#include <httplib.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "tests/etcd_server.h"
#include "tests/temp_dir.h"

using namespace meshchat;
using namespace meshchat::store;

TEST_CASE("etcd: one candidate takes the key, its lease's expiry frees it for the other",
          "[store][etcd]") {
  test::TempDir dir;
  test::EtcdServer etcd(dir.path());
  REQUIRE(etcd.ready());
  auto c1 = EtcdClient::Make(etcd.endpoint(), 2000);
  auto c2 = EtcdClient::Make(etcd.endpoint(), 2000);
  REQUIRE(c1.ok());
  REQUIRE(c2.ok());
  auto l1 = (*c1)->GrantLease(2);
  auto l2 = (*c2)->GrantLease(2);
  REQUIRE(l1.ok());
  REQUIRE(l2.ok());
  const std::string key = std::string("meshchat/shard/s1/primary\0x", 27);  // any bytes
  auto won = (*c1)->CreateIfAbsent(key, "s1", *l1);
  REQUIRE(won.ok());
  CHECK(won->first);
  const int64_t term = won->second.create_revision;
  CHECK(term > 0);
  auto lost = (*c2)->CreateIfAbsent(key, "s1-r1", *l2);
  REQUIRE(lost.ok());
  CHECK_FALSE(lost->first);
  CHECK(lost->second.value == "s1");
  CHECK(lost->second.create_revision == term);
  CHECK(lost->second.lease == *l1);
  // Only the holder changes the in-sync set.
  auto put = (*c1)->PutIfHeld("meshchat/shard/s1/in-sync", "s1,s1-r1", key, term);
  REQUIRE(put.ok());
  CHECK(*put);
  auto isr = (*c2)->Get("meshchat/shard/s1/in-sync");
  REQUIRE(isr.ok());
  REQUIRE(isr->has_value());
  CHECK((*isr)->value == "s1,s1-r1");
  CHECK((*c2)->Get("meshchat/none")->has_value() == false);
  auto ttl = (*c1)->KeepAlive(*l1);
  REQUIRE(ttl.ok());
  CHECK(*ttl > 0);
  // The holder goes silent: within its TTL the key is gone, and nothing it says counts.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(6);
  bool gone = false;
  while (!gone && std::chrono::steady_clock::now() < deadline) {
    REQUIRE((*c2)->KeepAlive(*l2).ok());
    auto k = (*c2)->Get(key);
    REQUIRE(k.ok());
    gone = !k->has_value();
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  CHECK(gone);
  CHECK((*c1)->KeepAlive(*l1).status().code() == Code::kNotFound);
  auto late = (*c1)->PutIfHeld("meshchat/shard/s1/in-sync", "s1", key, term);
  REQUIRE(late.ok());
  CHECK_FALSE(*late);
  auto next = (*c2)->CreateIfAbsent(key, "s1-r1", *l2);
  REQUIRE(next.ok());
  CHECK(next->first);
  CHECK(next->second.create_revision > term);  // a newer term
  CHECK((*c2)->Revoke(*l2).ok());
  CHECK_FALSE((*c1)->Get(key)->has_value());  // revoking frees at once
}

TEST_CASE("etcd: garbage, oversized and error answers, and no server, are errors",
          "[store][etcd]") {
  CHECK(EtcdClient::Make("tcp://127.0.0.1:1", 100).status().code() == Code::kInvalid);
  httplib::Server fake;
  fake.Post("/v3/kv/range", [](const httplib::Request&, httplib::Response& r) {
    r.set_content("not json", "application/json");
  });
  fake.Post("/v3/lease/grant", [](const httplib::Request&, httplib::Response& r) {
    r.set_content(std::string(2 << 20, ' '), "application/json");
  });
  fake.Post("/v3/lease/keepalive", [](const httplib::Request&, httplib::Response& r) {
    r.set_content("{\"result\":{\"ID\":\"7\"}}", "application/json");  // no TTL: expired
  });
  fake.Post("/v3/kv/txn", [](const httplib::Request&, httplib::Response& r) {
    r.status = 400;
    r.set_content("{\"error\":\"etcdserver: boom\",\"code\":3}", "application/json");
  });
  fake.Post("/v3/lease/revoke", [](const httplib::Request&, httplib::Response& r) {
    r.set_content("{\"header\":{\"revision\":[1]}}", "application/json");
  });
  const int port = fake.bind_to_any_port("127.0.0.1");
  std::thread t([&] { fake.listen_after_bind(); });
  auto c = EtcdClient::Make("http://127.0.0.1:" + std::to_string(port), 1000);
  REQUIRE(c.ok());
  CHECK((*c)->Get("k").status().code() == Code::kInvalid);
  CHECK((*c)->GrantLease(2).status().code() == Code::kTooLarge);
  CHECK((*c)->KeepAlive(7).status().code() == Code::kNotFound);
  auto txn = (*c)->CreateIfAbsent("k", "v", 7);
  CHECK(txn.status().code() == Code::kUnavailable);
  CHECK_THAT(txn.status().message(), Catch::Contains("boom"));
  CHECK((*c)->Revoke(7).ok());  // a header it does not read
  fake.stop();
  t.join();
  auto none = EtcdClient::Make("http://127.0.0.1:" + std::to_string(port), 300);
  REQUIRE(none.ok());
  CHECK((*none)->Get("k").status().code() == Code::kUnavailable);
}
