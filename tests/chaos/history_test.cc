// The chaos checker on made-up histories: it must catch each kind of failure it claims to.
#include <catch2/catch.hpp>

#include "tests/chaos/history.h"

using namespace meshchat::chaos;

namespace {

std::vector<Event> Parse(const std::vector<std::string>& lines) {
  std::vector<Event> out;
  for (const auto& l : lines) {
    Event e;
    std::string why;
    REQUIRE(ParseEvent(l, e, why));
    out.push_back(e);
  }
  return out;
}

// a writes to b (1:1) and to the group {a, b, c}; everything acked and delivered in order.
std::vector<std::string> Good() {
  return {
      "M\tg\ta\tb\tc",
      "S\t1000\ta\tb\t1\t1\ta:0",
      "A\t1010\ta\t1\t1",
      "R\t1020\tb\ta\ta\t1\ta:0",
      "S\t1100\ta\tg\tg\t2\ta:1",
      "A\t1110\ta\t2\t1",
      "R\t1120\tb\ta\tg\t1\ta:1",
      "R\t1130\tc\ta\tg\t1\ta:1",
      "S\t1200\ta\tb\t1\t3\ta:2",
      "A\t1210\ta\t3\t2",
      "R\t1230\tb\ta\ta\t2\ta:2",
  };
}

}  // namespace

TEST_CASE("a clean history passes, with its latencies", "[chaos]") {
  Report r = Check(Parse(Good()), {});
  CHECK(r.ok());
  CHECK(r.written == 3);
  CHECK(r.acked == 3);
  CHECK(r.expected_deliveries == 4);
  CHECK(r.delivered == 4);
  CHECK(r.before.n == 4);
  CHECK(r.before.max == 30);
  CHECK_THAT(Describe(r), Catch::Contains("verdict: PASS"));
}

TEST_CASE("an acknowledged message missing at one recipient fails", "[chaos]") {
  auto lines = Good();
  lines.erase(lines.begin() + 7);  // c never got a:1
  Report r = Check(Parse(lines), {});
  CHECK_FALSE(r.ok());
  CHECK(r.acked_not_delivered == 1);
  CHECK_THAT(Describe(r), Catch::Contains("never delivered to c: a:1"));
}

TEST_CASE("duplicates, reordering and phantoms fail", "[chaos]") {
  auto dup = Good();
  dup.push_back("R\t1300\tb\ta\ta\t1\ta:0");
  CHECK(Check(Parse(dup), {}).duplicates == 1);
  auto reorder = Good();
  reorder.push_back(reorder[3]);  // b sees a:0 (seq 1) only after a:2 (seq 2)
  reorder.erase(reorder.begin() + 3);
  CHECK(Check(Parse(reorder), {}).order_violations == 1);
  auto phantom = Good();
  phantom.push_back("R\t1300\tb\ta\ta\t3\ta:9");
  Report p = Check(Parse(phantom), {});
  CHECK(p.phantom == 1);
  CHECK_FALSE(p.ok());
}

TEST_CASE("a message never acknowledged is a hang, not a loss", "[chaos]") {
  auto lines = Good();
  lines.push_back("S\t1300\ta\tb\t1\t4\ta:3");
  Report r = Check(Parse(lines), {});
  CHECK(r.never_acked == 1);
  CHECK(r.acked_not_delivered == 0);
  CHECK_FALSE(r.ok());
}

TEST_CASE("latency is split by phase, and recovery is measured from the heal", "[chaos]") {
  std::vector<std::string> lines{"M\tg\ta\tb"};
  int cid = 0;
  // 4 acks a second before the fault (t < 10 s), none during, 3 a second from 13 s.
  auto msg = [&](int64_t t, int64_t lat) {
    ++cid;
    const std::string body = "a:" + std::to_string(cid - 1), c = std::to_string(cid);
    lines.push_back("S\t" + std::to_string(t) + "\ta\tb\t1\t" + c + "\t" + body);
    lines.push_back("A\t" + std::to_string(t + 5) + "\ta\t" + c + "\t" + c);
    lines.push_back("R\t" + std::to_string(t + lat) + "\tb\ta\ta\t" + c + "\t" + body);
  };
  for (int64_t t = 0; t < 10000; t += 250) msg(t, 10);
  msg(10500, 2600);  // written during the fault, delivered after
  for (int64_t t = 13000; t < 16000; t += 333) msg(t, 20);
  Report r = Check(Parse(lines), Phases{10000, 12000});
  CHECK(r.ok());
  CHECK(r.during.n == 1);
  CHECK(r.during.p50 == 2600);
  CHECK(r.after.p50 == 20);
  CHECK(r.before.p99 == 10);
  CHECK(r.recovery_ms == 1000);  // the second starting at 13 s
}

TEST_CASE("malformed history and phase lines are refused with a reason", "[chaos]") {
  Event e;
  std::string why;
  CHECK_FALSE(ParseEvent("S\tnot-a-time\ta\tb\t1\t1\ta:0", e, why));
  CHECK(why == "bad time");
  CHECK_FALSE(ParseEvent("A\t10\ta\t1", e, why));
  CHECK_THAT(why, Catch::Contains("field count"));
  CHECK_FALSE(ParseEvent("Z\t10", e, why));
  CHECK_FALSE(ParseEvent(std::string(5000, 'x'), e, why));
  Phases p;
  CHECK(ParsePhases("fault 10\nheal 20\n", p, why));
  CHECK(p.fault == 10);
  CHECK(p.heal == 20);
  CHECK_FALSE(ParsePhases("fault soon\n", p, why));
  CHECK_FALSE(ParsePhases("boom 10\n", p, why));
}

TEST_CASE("a message shown only after the final reconnect is a stall, reported apart", "[chaos]") {
  auto lines = Good();
  lines.erase(lines.begin() + 7);  // c did not get a:1 while connected...
  lines.push_back("F\t2000");
  lines.push_back("R\t2100\tc\ta\tg\t1\ta:1");  // ...only once it reconnected
  Report r = Check(Parse(lines), {});
  CHECK_FALSE(r.ok());
  CHECK(r.acked_not_delivered == 0);
  CHECK(r.after_reconnect == 1);
  CHECK_THAT(Describe(r), Catch::Contains("only after reconnecting: a:1"));
}

TEST_CASE("misdelivery, a wrong seq and a message stored twice fail", "[chaos]") {
  auto stranger = Good();
  stranger.push_back("R\t1300\tc\ta\ta\t1\ta:0");  // c is not in a's chat with b
  CHECK(Check(Parse(stranger), {}).misdelivered == 1);
  auto wrong_chat = Good();
  wrong_chat[3] = "R\t1020\tb\ta\tg\t1\ta:0";  // a 1:1 message shown in the group
  CHECK(Check(Parse(wrong_chat), {}).misdelivered == 1);
  auto wrong_seq = Good();
  wrong_seq[10] = "R\t1230\tb\ta\ta\t3\ta:2";  // acked as seq 2
  Report ws = Check(Parse(wrong_seq), {});
  CHECK(ws.seq_mismatch == 1);
  CHECK_FALSE(ws.ok());
  auto twice = Good();
  twice.push_back("P\t1020\tb\t1\ta\ta\t1\ta:0");
  twice.push_back("P\t1500\tb\t1\ta\ta\t1\ta:0");  // the same position again: a resend, fine
  CHECK(Check(Parse(twice), {}).ok());
  twice.push_back("P\t1600\tb\t7\ta\ta\t1\ta:0");  // another position: stored twice
  Report t = Check(Parse(twice), {});
  CHECK(t.stored_twice == 1);
  CHECK_FALSE(t.ok());
}

TEST_CASE("a message written after another was acked must get a higher seq", "[chaos]") {
  std::vector<std::string> lines{
      "M\tg\ta\tb",
      "S\t1000\ta\tb\t1\t1\ta:0",
      "A\t1010\ta\t1\t2",
      "R\t1020\tb\ta\ta\t2\ta:0",
      "S\t1100\ta\tb\t1\t2\ta:1",
      "A\t1110\ta\t2\t1",  // written after a:0's sent, seq lower
  };
  Report r = Check(Parse(lines), {});
  CHECK(r.order_violations == 1);
  // Both in flight at once: either order is allowed.
  std::vector<std::string> overlap{
      "M\tg\ta\tb",
      "S\t1000\ta\tb\t1\t1\ta:0",
      "S\t1001\ta\tb\t1\t2\ta:1",
      "A\t1010\ta\t2\t1",
      "A\t1011\ta\t1\t2",
      "R\t1020\tb\ta\ta\t1\ta:1",
      "R\t1021\tb\ta\ta\t2\ta:0",
  };
  CHECK(Check(Parse(overlap), {}).ok());
}
