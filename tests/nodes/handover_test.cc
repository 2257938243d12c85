// Keys moving between session shards when the ring changes (nodes/shard/handover.h), without
// sockets: shards take the new map one after the other while clients keep sending, and every
// acknowledged message still reaches its recipient once and in order.
#include <catch2/catch.hpp>

#include "nodes/shard/handover.h"
#include "nodes/shard/records.h"
#include "store/mem_kv_store.h"
#include "tests/nodes/shard_harness.h"

using namespace meshchat;
using namespace meshchat::codec;
using meshchat::test::Shards;

TEST_CASE("hand-over payloads round-trip and bad ones are refused", "[nodes][handover]") {
  nodes::HandoverRows rows{7, "inbox", {{std::string("a\0b", 3), "v1"}, {"k2", ""}}};
  nodes::HandoverRows back;
  REQUIRE(nodes::DecodeRecord(nodes::EncodeRecord(rows), back));
  CHECK(back == rows);
  CHECK(nodes::KindOf(nodes::EncodeRecord(rows)) == nodes::PayloadKind::kHandoverRows);
  nodes::HandoverMarker m;
  REQUIRE(nodes::DecodeRecord(nodes::EncodeRecord(nodes::HandoverMarker{3}), m));
  CHECK(m.epoch == 3);
  CHECK(nodes::KindOf(nodes::EncodeRecord(nodes::HandoverDone{3})) ==
        nodes::PayloadKind::kHandoverDone);
  nodes::HandoverDone d;
  CHECK_FALSE(nodes::DecodeRecord(nodes::EncodeRecord(nodes::HandoverMarker{3}), d));  // kind
  nodes::HandoverState st;
  st.epoch = 4;
  st.active = true;
  st.old_ring = {"s1", "s2"};
  st.new_ring = {"s1", "s2", "s3"};
  st.senders = {"s2", "g1"};
  st.table = 2;
  st.from = std::string("x\0y", 3);
  nodes::HandoverState st2;
  REQUIRE(nodes::DecodeRecord(nodes::EncodeRecord(st), st2));
  CHECK(st2 == st);
  // Truncated, or a row without its value: refused, not a crash.
  std::string enc = nodes::EncodeRecord(rows);
  CHECK_FALSE(nodes::DecodeRecord(std::string_view(enc).substr(0, enc.size() - 1), back));
  std::string odd;
  msgpack::sbuffer sb;
  msgpack::packer<msgpack::sbuffer> pk(sb);
  pk.pack_array(4).pack(5).pack(1).pack(std::string("inbox")).pack_array(1).pack(std::string("k"));
  CHECK_FALSE(nodes::DecodeRecord(std::string_view(sb.data(), sb.size()), back));
}

TEST_CASE("a row's routing key skips a time prefix and ends at the first NUL",
          "[nodes][handover]") {
  CHECK(nodes::RoutingKeyOf("alice", 0) == "alice");
  CHECK(nodes::RoutingKeyOf(std::string("alice\0bob", 9), 0) == "alice");
  CHECK(nodes::RoutingKeyOf(std::string("12345678a|b\0x", 13), 8) == "a|b");
  CHECK(nodes::RoutingKeyOf("short", 8).empty());
}

TEST_CASE("what a map change means for a node", "[nodes][handover]") {
  auto parse = [](const std::string& text) {
    auto m = router::ClusterMap::Parse(text);
    REQUIRE(m.ok());
    return *m;
  };
  const std::string nodes =
      "node gw1 gateway mesh=tcp://127.0.0.1:1 client=127.0.0.1:2\n"
      "node s1 session mesh=tcp://127.0.0.1:3\n"
      "node s2 session mesh=tcp://127.0.0.1:4\n"
      "node g1 group mesh=tcp://127.0.0.1:5\n";
  auto before = parse("epoch 1\n" + nodes);
  auto added = parse("epoch 2\n" + nodes + "node s3 session mesh=tcp://127.0.0.1:6 joined=2\n");
  auto c = nodes::MapChangeFor(before, added, "s1", router::Role::kSession);
  CHECK(c.epoch == 2);
  CHECK(c.keyed_rings_changed);
  CHECK(c.own_ring_changed);
  CHECK(c.marker_to == std::vector<std::string>{"s2", "g1"});  // not gateways, not s3
  CHECK(c.new_owners == std::vector<std::string>{"s1", "s2", "s3"});
  auto g = nodes::MapChangeFor(before, added, "g1", router::Role::kGroup);
  CHECK(g.keyed_rings_changed);     // g1 sends markers: it fans out to session shards...
  CHECK_FALSE(g.own_ring_changed);  // ...but hands nothing over
  // s2 leaving: it owns nothing any more, but still gets markers (it runs until removed).
  auto leaving = parse("epoch 2\n" + std::string(nodes).replace(nodes.find("tcp://127.0.0.1:4"), 17,
                                                                "tcp://127.0.0.1:4 leaving"));
  auto l = nodes::MapChangeFor(before, leaving, "s1", router::Role::kSession);
  CHECK(l.new_owners == std::vector<std::string>{"s1"});
  CHECK(l.marker_to == std::vector<std::string>{"s2", "g1"});
  // Only a gateway changed: no markers, no hand-over.
  auto gw =
      parse("epoch 2\n" + nodes + "node gw2 gateway mesh=tcp://127.0.0.1:7 client=127.0.0.1:8\n");
  auto n = nodes::MapChangeFor(before, gw, "s1", router::Role::kSession);
  CHECK_FALSE(n.keyed_rings_changed);
  CHECK_FALSE(n.own_ring_changed);
}

namespace {

// Senders (connected) write to recipients (offline until the end) in several rounds while
// the ring changes; every message is resent with its cid until its `sent` arrives.
struct Chat {
  Shards& sh;
  std::vector<std::pair<std::string, std::string>> pairs;  // sender, recipient
  std::map<std::string, std::vector<std::string>> want;    // recipient -> bodies in order
  std::map<std::pair<std::string, uint64_t>, std::pair<std::string, std::string>> unacked;
  uint64_t next_cid = 1;

  Stamp SenderStamp(size_t i) const { return Stamp{pairs[i].first, "phone", 100 + i, "gw1"}; }
  void Round(int k) {
    for (size_t i = 0; i < pairs.size(); ++i) {
      const std::string body = pairs[i].first + ":" + std::to_string(k);
      unacked[{pairs[i].first, next_cid}] = {pairs[i].second, body};
      sh.Send(SenderStamp(i), pairs[i].second, next_cid++, body);
    }
    Collect();
  }
  // Acked (`sent`) messages leave `unacked`, in the order of their cids per sender.
  void Collect() {
    for (size_t i = 0; i < pairs.size(); ++i) {
      auto& v = sh.Client("gw1", 100 + i);
      for (const auto& s : v.sent)
        if (auto it = unacked.find({pairs[i].first, s.cid}); it != unacked.end()) {
          want[it->second.first].push_back(it->second.second);
          unacked.erase(it);
        }
      v.sent.clear();
    }
  }
  void ResendUnacked() {
    auto copy = unacked;
    for (const auto& [key, msg] : copy)
      for (size_t i = 0; i < pairs.size(); ++i)
        if (pairs[i].first == key.first) sh.Send(SenderStamp(i), msg.first, key.second, msg.second);
    Collect();
  }
  void ConnectSenders() {
    for (size_t i = 0; i < pairs.size(); ++i) sh.Connect(pairs[i].first, "phone", "gw1", 100 + i);
  }
};

std::vector<std::string> Received(Shards& sh, const std::string& user, uint64_t conn) {
  sh.Connect(user, "phone", "gw2", conn);
  for (int i = 0; i < 20; ++i) {  // push windows and acks
    sh.AckAll({user, "phone", conn, "gw2"});
    sh.Tick();
  }
  std::map<uint64_t, std::string> by_n;  // a resent push has its first one's n
  for (const auto& p : sh.Client("gw2", conn).pushes) by_n[p.n] = p.body;
  std::vector<std::string> out;
  for (const auto& [n, body] : by_n) out.push_back(body);
  return out;
}

void SettleHandover(Shards& sh, const std::vector<std::string>& ids) {
  for (int i = 0; i < 40; ++i) {
    bool busy = false;
    for (const auto& id : ids) busy |= sh.core(id).handover().Pending() != 0;
    if (!busy) return;
    sh.clock.Advance(300);
    sh.Tick();
  }
  FAIL("hand-over did not finish");
}

}  // namespace

TEST_CASE("session keys move to an added shard and from a leaving one, nothing lost or doubled",
          "[nodes][handover]") {
  Shards sh({"s1", "s2"});
  Chat chat{sh, {}, {}, {}};
  for (int i = 0; i < 30; ++i)  // pair 23: its chat stays on s1, its recipient moves s2 -> s3
    chat.pairs.push_back({"u" + std::to_string(i), "r" + std::to_string(i)});
  chat.ConnectSenders();
  chat.Round(0);
  chat.Round(1);
  REQUIRE(chat.unacked.empty());

  // s3 joins at epoch 2. s1 takes the map first: for a while s1 and s2 route differently.
  const std::vector<std::string> ring3{"s1", "s2", "s3"};
  sh.AddShard("s3", ring3);
  REQUIRE(sh.core("s3").handover().Begin(2, {"s1", "s2"}, ring3).ok());
  sh.TakeMap("s1", ring3, 2);
  chat.Round(2);  // some refused (moving keys), some stashed at s3, some applied at old owners
  sh.TakeMap("s2", ring3, 2);
  chat.Round(3);
  sh.SetGatewayRing(ring3);
  chat.ConnectSenders();  // gateways announce their connections to the new owners
  SettleHandover(sh, ring3);
  chat.ResendUnacked();
  chat.Round(4);
  REQUIRE(chat.unacked.empty());

  // Nothing of a moved key stays behind at its old owner.
  for (const std::string id : {"s1", "s2"}) {
    router::HashRing ring(ring3);
    int foreign = 0;
    REQUIRE(sh.store(id)
                .Scan("inbox", "",
                      [&](std::string_view k, std::string_view) {
                        foreign += ring.Owner(nodes::RoutingKeyOf(k, 0)) != id;
                        return true;
                      })
                .ok());
    CHECK(foreign == 0);
  }

  // s2 leaves: its keys go to s1 and s3; s2 stays in the mesh until it shipped everything.
  const std::vector<std::string> ring13{"s1", "s3"};
  // s1 switches first: what it sends by the new map reaches s3 before s3 knows that map (a
  // regression: s3 applied such entries at once, and s2's rows arriving later overwrote them).
  sh.TakeMap("s1", ring13, 3);
  chat.Round(5);
  sh.TakeMap("s2", ring13, 3);
  chat.Round(6);
  sh.TakeMap("s3", ring13, 3);
  sh.SetGatewayRing(ring13);
  chat.ConnectSenders();
  SettleHandover(sh, ring3);
  chat.ResendUnacked();
  chat.Round(7);
  REQUIRE(chat.unacked.empty());
  CHECK(sh.kv("s2").Count("inbox") == 0);
  CHECK(sh.kv("s2").Count("user") == 0);

  // Every acknowledged message, once, in order; resending old cids made no copies.
  for (size_t i = 0; i < chat.pairs.size(); ++i) {
    const auto& [from, to] = chat.pairs[i];
    INFO(from << " -> " << to);
    CHECK(Received(sh, to, 500 + i) == chat.want[to]);
    CHECK(chat.want[to].size() == 8);
  }
}

TEST_CASE("a hand-over survives a failed commit and a restart of the old owner",
          "[nodes][handover]") {
  Shards sh({"s1", "s2"});
  Chat chat{sh, {}, {}, {}};
  for (int i = 0; i < 8; ++i)
    chat.pairs.push_back({"u" + std::to_string(i), "r" + std::to_string(i)});
  chat.ConnectSenders();
  chat.Round(0);
  const std::vector<std::string> ring3{"s1", "s2", "s3"};
  sh.AddShard("s3", ring3);
  REQUIRE(sh.core("s3").handover().Begin(2, {"s1", "s2"}, ring3).ok());
  sh.TakeMap("s1", ring3, 2);
  sh.Restart("s1");  // waiting for s2's marker: the state is stored, it resumes
  CHECK(sh.core("s1").handover().Pending() != 0);
  sh.TakeMap("s2", ring3, 2);
  sh.kv("s1").FailNextCommit();  // the first shipping batch is lost: it ships again
  sh.clock.Advance(300);
  sh.Tick();
  sh.SetGatewayRing(ring3);
  chat.ConnectSenders();
  SettleHandover(sh, ring3);
  chat.Round(1);
  chat.ResendUnacked();
  REQUIRE(chat.unacked.empty());
  for (size_t i = 0; i < chat.pairs.size(); ++i) {
    const auto& [from, to] = chat.pairs[i];
    INFO(from << " -> " << to);
    CHECK(Received(sh, to, 500 + i) == chat.want[to]);
    CHECK(chat.want[to].size() == 2);
  }
}

TEST_CASE("read receipts put off under load move with their user and are sent after",
          "[nodes][handover][overload]") {
  Shards sh({"s1", "s2"});
  const std::vector<std::string> ring3{"s1", "s2", "s3"};
  router::HashRing before({"s1", "s2"}), after(ring3);
  // A reader whose key moves to s3, and a writer whose key stays.
  std::string reader, writer;
  for (int i = 0; reader.empty() || writer.empty(); ++i) {
    const std::string u = "user" + std::to_string(i);
    if (reader.empty() && after.Owner(u) == "s3") reader = u;
    if (writer.empty() && after.Owner(u) == before.Owner(u)) writer = u;
  }
  const Stamp w{writer, "phone", 1, "gw1"}, r{reader, "phone", 2, "gw1"};
  sh.Connect(writer, "phone", "gw1", 1);
  sh.Connect(reader, "phone", "gw1", 2);
  sh.Send(w, reader, 1, "read me");
  sh.Send(w, reader, 2, "and me");
  sh.AckAll(r);
  sh.AckAll(w);
  for (const char* id : {"s1", "s2"}) sh.core(id).SetLoad({nodes::LoadLevel::kDelayReceipts});
  sh.Read(r, writer, 2);  // stored at the reader's old shard, not sent
  auto& wv = sh.Client("gw1", 1);
  auto reads = [&] {
    size_t n = 0;
    for (const auto& rc : wv.receipts) n += rc.kind == ReceiptKind::kRead && rc.seq == 2;
    return n;
  };
  CHECK(reads() == 0);
  CHECK(sh.kv(before.Owner(reader)).Count("readlater") == 1);

  sh.AddShard("s3", ring3);
  sh.core("s3").SetLoad({nodes::LoadLevel::kDelayReceipts});
  REQUIRE(sh.core("s3").handover().Begin(2, {"s1", "s2"}, ring3).ok());
  sh.TakeMap("s1", ring3, 2);
  sh.TakeMap("s2", ring3, 2);
  sh.SetGatewayRing(ring3);
  sh.Connect(writer, "phone", "gw1", 1);
  SettleHandover(sh, ring3);
  for (const char* id : {"s1", "s2"}) CHECK(sh.kv(id).Count("readlater") == 0);
  // Load falls everywhere: the new owner sends it.
  for (const char* id : {"s1", "s2", "s3"}) sh.core(id).SetLoad({});
  for (int i = 0; i < 5 && reads() == 0; ++i) {
    sh.clock.Advance(300);
    sh.Tick();
  }
  CHECK(reads() == 1);
  CHECK(sh.kv("s3").Count("readlater") == 0);
}

TEST_CASE("a shard refuses requests for keys still moving in, and answers them after",
          "[nodes][handover]") {
  Shards sh({"s1"});
  const std::vector<std::string> ring2{"s1", "s2"};
  sh.AddShard("s2", ring2);
  REQUIRE(sh.core("s2").handover().Begin(2, {"s1"}, ring2).ok());
  router::HashRing r(ring2);
  std::string mover;
  for (int i = 0; !mover.size(); ++i)
    if (r.Owner("m" + std::to_string(i)) == "s2") mover = "m" + std::to_string(i);
  sh.SetGatewayRing(ring2);
  sh.Connect(mover, "phone", "gw1", 1);
  CHECK(sh.Client("gw1", 1).welcomed == 0);  // not yet: the gateway announces it again
  sh.Send({mover, "phone", 1, "gw1"}, "x", 1, "early");
  CHECK(sh.Client("gw1", 1).sent.empty());
  sh.TakeMap("s1", ring2, 2);
  SettleHandover(sh, ring2);
  sh.Connect(mover, "phone", "gw1", 1);
  CHECK(sh.Client("gw1", 1).welcomed == 1);
  sh.Send({mover, "phone", 1, "gw1"}, "x", 1, "now");
  CHECK(sh.Client("gw1", 1).sent.size() == 1);
}
