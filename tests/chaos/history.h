// The history a chaos run leaves: what every client sent, got acknowledged, and saw, one event
// per line, written by the workload (`meshchat-chaos workload`) and judged by the checker
// (`meshchat-chaos check`). Tab-separated; times are wall-clock milliseconds of the one
// workload process.
//
//   M <group> <member>...                   the group and its members (once, first)
//   S <t> <from> <to> <g|1> <cid> <body>    a message written (first attempt)
//   A <t> <from> <cid> <seq>                its `sent` acknowledgement
//   R <t> <user> <from> <chat> <seq> <body> a push the client library showed to `user`
//   P <t> <user> <n> <from> <chat> <seq> <body>  a push as the server sent it (repeats too)
//   F <t>                                   every user reconnects and drains once more: what
//                                           is shown only after this was stalled, not lost
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
  uint64_t acked_not_delivered = 0;  // lost: not even after the final reconnect; must be 0
  uint64_t after_reconnect = 0;      // stalled: shown only after the final reconnect; must be 0
  uint64_t duplicates = 0;           // shown twice; must be 0
  uint64_t stored_twice = 0;         // the server pushed one message at two positions n
  uint64_t misdelivered = 0;         // to a user not a recipient, or under the wrong chat
  uint64_t seq_mismatch = 0;         // delivered with another seq than its `sent` said
  // Shown out of seq order in a chat, or a message written after another's `sent` (same
  // sender, same chat) that got a lower seq: must be 0.
  uint64_t order_violations = 0;
  uint64_t phantom = 0;  // delivered, never written: must be 0
  uint64_t errors = 0, reconnects = 0;
  int64_t recovery_ms = -1;  // after heal, until acks flow at half the pre-fault rate again
  struct Latency {
    uint64_t n = 0;
    int64_t p50 = 0, p99 = 0, max = 0;
  };
  Latency before, during, after;      // write -> delivered, by when it was written
  std::vector<std::string> examples;  // a few offending messages, for the log
  bool ok() const {
    return never_acked == 0 && acked_not_delivered == 0 && after_reconnect == 0 &&
           duplicates == 0 && stored_twice == 0 && misdelivered == 0 && seq_mismatch == 0 &&
           order_violations == 0 && phantom == 0;
  }
};

// Judges a history. Bad lines are counted as errors in `why` and make it fail.
Report Check(const std::vector<Event>& events, const Phases& phases);
std::string Describe(const Report& r);

}  // namespace meshchat::chaos
