// --opt settings: one typed table, clear start-up errors.
#include <catch2/catch.hpp>

#include <type_traits>

#include "nodes/runtime/node_options.h"

using meshchat::nodes::NodeOptions;

TEST_CASE("node settings (--opt) are typed and checked at start-up", "[nodes][options]") {
  auto o = NodeOptions::Parse({"max_out_bytes=2097152", "send_rate=12.5", "client_tls=off",
                               "tls_cert=/etc/gw.pem", "inbox_ttl_s=60"});
  CHECK(o.Int("max_out_bytes", 1) == 2'097'152);
  CHECK(o.Int("max_out_bytes", size_t{1}) == size_t{2'097'152});  // a size_t field
  // An int literal fallback gives int64_t, so `Int(k, 2592000) * 1000` cannot overflow an int.
  static_assert(std::is_same_v<decltype(o.Int("retention_s", 2592000)), int64_t>);
  CHECK(o.Real("send_rate", 1) == 12.5);
  CHECK(o.Text("client_tls") == "off");
  CHECK(o.Text("tls_cert") == "/etc/gw.pem");
  CHECK(o.Int("push_rto_ms", 2000) == 2000);  // absent: the default
  CHECK_FALSE(o.Has("push_rto_ms"));
  CHECK(o.Has("inbox_ttl_s"));
  // A key of another role is accepted (meshctl up gives every node the same list).
  CHECK(NodeOptions::Parse({"online_ms=1000", "max_mb=2"}).Int("max_mb", 64) == 2);

  auto refused = [](const std::string& kv, const std::string& says) {
    CHECK_THROWS_WITH(NodeOptions::Parse({kv}), Catch::Contains(says));
  };
  refused("frame_deadline=1000", "no such setting");  // a typo is an error, not silence
  refused("frame_deadline_ms=10s", "not a whole number");
  refused("frame_deadline_ms=", "not a whole number");
  refused("frame_deadline_ms=5", "out of range");
  refused("send_rate=fast", "not a number");
  refused("send_rate=-1", "out of range");
  refused("send_rate=nan", "not a number");
  refused("client_tls=maybe", "on|off");
  refused("media=s3", "localdir|rados");
  refused("=1", "KEY=VALUE");
  refused("noequals", "KEY=VALUE");
  refused("max_out_bytes=99999999999999999999", "not a whole number");  // overflows int64
  // Asking for a key the table does not declare, or as another type, is a programming error.
  CHECK_THROWS_AS(o.Int("no_such_key", 0), std::logic_error);
  CHECK_THROWS_AS(o.Int("send_rate", 0), std::logic_error);
}
