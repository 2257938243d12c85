// The history a chaos run leaves: what every client sent, got acknowledged, and saw, one event
// per line, written by the workload (`meshchat-chaos workload`) and judged by the checker
// (`meshchat-chaos check`). Tab-separated; times are wall-clock milliseconds of the one
// workload process.
//
//   M <group> <member>...                   the group and its members (once, first)
//   S <t> <from> <to> <g|1> <cid> <body>    a message written (first attempt)
//   A <t> <from> <cid> <seq>                its `sent` acknowledgement
//   R <t> <user> <from> <chat> <seq> <body> a push the client library showed to `user`
//   E <t> <user> <code>                     an error frame
//   O <t> <user>                            a user that stays offline while the others write
//                                           (its deliveries wait: not counted in latency)
//   C <t> <user> <gateway>                  connected (welcome)
//   D <t> <user>                            the connection went away
//
// Bodies are "<from>:<k>" (k counts each sender's messages), so a body names one message.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace meshchat::chaos {

struct Event {
  char kind = 0;
  int64_t t = 0;
  std::vector<std::string> f;  // the fields after the time
};

// Parses one line; false (and a reason) on a malformed one. Lines are bounded (4 KiB).
bool ParseEvent(std::string_view line, Event& out, std::string& why);
std::string FormatEvent(char kind, int64_t t, const std::vector<std::string>& fields);

// Fault phases of a run (the runner's phases file: "fault <t>" and "heal <t>" lines).
struct Phases {
  int64_t fault = 0, heal = 0;  // 0: none
};
bool ParsePhases(std::string_view text, Phases& out, std::string& why);

struct Report {
  uint64_t written = 0, acked = 0, never_acked = 0;
  uint64_t expected_deliveries = 0, delivered = 0;
  uint64_t acked_not_delivered = 0;  // must be 0
  uint64_t duplicates = 0;           // must be 0
  uint64_t order_violations = 0;     // must be 0
  uint64_t phantom = 0;              // delivered, never written: must be 0
  uint64_t errors = 0, reconnects = 0;
  int64_t recovery_ms = -1;  // after heal, until acks flow at half the pre-fault rate again
  struct Latency {
    uint64_t n = 0;
    int64_t p50 = 0, p99 = 0, max = 0;
  };
  Latency before, during, after;      // write -> delivered, by when it was written
  std::vector<std::string> examples;  // a few offending messages, for the log
  bool ok() const {
    return never_acked == 0 && acked_not_delivered == 0 && duplicates == 0 &&
           order_violations == 0 && phantom == 0;
  }
};

// Judges a history. Bad lines are counted as errors in `why` and make it fail.
Report Check(const std::vector<Event>& events, const Phases& phases);
std::string Describe(const Report& r);

}  // namespace meshchat::chaos
