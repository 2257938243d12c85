// Abuse at a gateway, next to real traffic (bench/overload runs W1 beside it): clients that
// authenticate and never read while feeders send them large messages (the gateway must cap
// their output and cut them off, not grow), and connections that send garbage — a hello of random
// bytes, a header declaring 4 GiB, an unknown frame type — which must be cut at once. Prints the
// gateway's RSS before and at most, and how many abusive connections were cut.
#pragma once

#include <cstddef>
#include <string>

namespace meshchat::bench {

struct AbuseOptions {
  double seconds = 10;
  int never_read = 4;           // clients that never read
  int feeders_per_sleeper = 4;  // each sending 20 messages a second of `feed_body` bytes
  size_t feed_body = 60'000;
  double garbage_rate = 500;  // garbage connections a second (each waits for its cut)
};

// Returns 0 if every garbage connection was cut within 500 ms.
int RunAbuse(const std::string& var, const AbuseOptions& o);

// Strangers at gw1 (SECURITY.md): `conns` connections each start a frame declaring `frame`
// bytes and send `fill` of them, never a whole hello. Prints gw1's RSS before, at most while
// they send and hold, and after they closed, and how many the gateway cut.
struct UnauthOptions {
  int conns = 400;
  size_t frame = 1 << 20;   // declared length
  size_t fill = 1'000'000;  // bytes of it sent
  double hold_seconds = 2;  // kept open after sending
};
int RunUnauth(const std::string& var, const UnauthOptions& o);

}  // namespace meshchat::bench
