#include <catch2/catch.hpp>

#include <map>

#include "router/hash_ring.h"

using namespace meshchat::router;

namespace {
std::vector<std::string> Nodes(int n) {
  std::vector<std::string> v;
  for (int i = 1; i <= n; ++i) v.push_back("s" + std::to_string(i));
  return v;
}
}  // namespace

TEST_CASE("100k keys over 8 nodes land within 10% of even", "[router]") {
  HashRing ring(Nodes(8));
  std::map<std::string, int> count;
  const int keys = 100000;
  for (int i = 0; i < keys; ++i) ++count[ring.Owner("user" + std::to_string(i))];
  REQUIRE(count.size() == 8);
  const double even = keys / 8.0;
  for (const auto& [node, n] : count) {
    INFO(node << " owns " << n);
    CHECK(n > even * 0.9);
    CHECK(n < even * 1.1);
  }
}

TEST_CASE("adding a 9th node moves about 1/9 of keys, all to the new node", "[router]") {
  HashRing before(Nodes(8)), after(Nodes(9));
  const int keys = 100000;
  int moved = 0;
  for (int i = 0; i < keys; ++i) {
    const std::string k = "user" + std::to_string(i);
    const std::string& a = before.Owner(k);
    const std::string& b = after.Owner(k);
    if (a != b) {
      ++moved;
      REQUIRE(b == "s9");  // keys only move to the new node
    }
  }
  const double frac = double(moved) / keys;
  INFO("moved fraction " << frac);
  CHECK(frac > (1.0 / 9) * 0.85);
  CHECK(frac < (1.0 / 9) * 1.15);
}

TEST_CASE("removing a node moves only that node's keys", "[router]") {
  HashRing full(Nodes(5));
  auto fewer = Nodes(5);
  fewer.erase(fewer.begin() + 2);  // drop s3
  HashRing without(fewer);
  for (int i = 0; i < 20000; ++i) {
    const std::string k = "g" + std::to_string(i);
    if (full.Owner(k) != "s3") REQUIRE(without.Owner(k) == full.Owner(k));
  }
}

TEST_CASE("ring is independent of the order nodes are listed in", "[router]") {
  HashRing a({"a", "b", "c"}), b({"c", "a", "b"});
  for (int i = 0; i < 1000; ++i) {
    const std::string k = std::to_string(i);
    REQUIRE(a.Owner(k) == b.Owner(k));
  }
}
