// The chaos workload: many clients chatting one-to-one and in two groups (everyone; every
// other user) through a mesh while faults are injected, logging every write, acknowledgement,
// push from the server and delivery shown (tests/chaos/history.h).
//
// Each user keeps up to `inflight` messages in flight and resends each with its cid until its
// `sent` arrives: after an error, after 1.5 s without an answer, and through another gateway
// when a connection dies or stays silent for 5 s (a frozen gateway keeps its sockets open).
// After the writing phase it stops writing, finishes what is in flight (bounded), and listens
// until deliveries stop. Then every user reconnects and drains once more: what arrives only
// then was stalled, not lost, and the checker reports it apart.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "client/chat_client.h"

namespace meshchat::chaos {

struct WorkloadOptions {
  std::vector<client::Endpoint> gateways;
  std::string secret;  // cluster secret: the workload signs its users' tokens
  int users = 12;
  std::string prefix = "c";      // user ids: prefix + index
  std::string group = "chaosg";  // every user; group + "2": the users of even index
  int write_seconds = 20;        // writing phase
  int drain_seconds = 90;        // then: resend what is unacknowledged, at most this long
  int quiet_ms = 4000;           // then: listen until no push came for this long
  int pace_ms = 50;              // per user, between an acknowledgement and the next write
  int inflight = 3;              // per user, messages written and not yet acknowledged
  // The last `offline` users are written to but stay away until the writing phase is over:
  // their inboxes grow in the store (store-and-forward), then they connect and drain them.
  int offline = 0;
  std::string stop_file;  // if it appears, the writing phase ends early
};

// Runs the workload, writing the history to `log`. Returns 0, or 2 if the group could not be
// created (no mesh to test).
int RunWorkload(const WorkloadOptions& o, std::FILE* log);

}  // namespace meshchat::chaos
