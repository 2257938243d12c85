#include <catch2/catch.hpp>

#include "tests/codec/round_trip.h"

#include "codec/group_messages.h"
#include "codec/msgpack_view.h"

using namespace meshchat::codec;

using meshchat::test::RoundTrip;

TEST_CASE("group frames round-trip", "[codec][groups]") {
  RoundTrip(GroupRequest{"create", 7, "team", {"bob", "carol"}, "The team", 0, 0});
  RoundTrip(GroupRequest{"pull", 8, "team", {}, "", 41, 100});
  GroupResult r;
  r.rid = 7;
  r.group = "team";
  r.name = "The team";
  r.seq = 42;
  r.members = {{"alice", true, 40, 39}, {"bob", false, 42, 0}};
  r.groups = {"team", "club"};
  r.total = 2;
  r.delivered = 1;
  r.read = 1;
  r.messages = {Push{0, "team", "alice", "phone", 41, 9, 1700000000000, "hi", "team", false}};
  RoundTrip(r);
  GroupResult refused;
  refused.ok = false;
  refused.code = ErrorCode::kNotMember;
  refused.msg = "not a member";
  RoundTrip(refused);
  RoundTrip(GroupSend{"team", 5, "hello all"});
  RoundTrip(GroupHint{"team", 43});
  RoundTrip(Push{3, "team", "alice", "phone", 1, 0, 5, "alice created the group", "team", true});
  RoundTrip(Read{"team", 9, true});
}

TEST_CASE("group request limits", "[codec][groups]") {
  GroupRequest big{"add", 1, "team", {}, "", 0, 0};
  for (size_t i = 0; i <= kMaxGroupList; ++i) big.users.push_back("u" + std::to_string(i));
  GroupRequest out;
  CHECK(Decode(Encode(big), out) == DecodeStatus::kTooLarge);
  GroupRequest bad{"add", 1, "team", {std::string(65, 'x')}, "", 0, 0};
  CHECK(Decode(Encode(bad), out) == DecodeStatus::kTooLarge);
  std::string no_op;
  Writer(no_op).Map(1).Key("rid").Uint(1);
  CHECK(Decode(no_op, out) == DecodeStatus::kMalformed);
}
