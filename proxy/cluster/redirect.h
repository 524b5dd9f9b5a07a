// Redis Cluster's redirections and transient errors, read from one reply's bytes.
#pragma once

#include <cstdint>
#include <string_view>

namespace corral::cluster {

struct Redirect {
  enum class Kind : uint8_t { kNone, kMoved, kAsk, kTryAgain, kClusterDown };
  Kind kind = Kind::kNone;
  uint16_t slot = 0;      // kMoved, kAsk
  std::string_view host;  // kMoved, kAsk: a view into the reply; may be empty ("-MOVED 3999
                          // :6380", unknown-endpoint): the host of the connection that answered
  uint16_t port = 0;      // kMoved, kAsk
};

// reply: the raw bytes of one reply, e.g. "-MOVED 3999 127.0.0.1:6381\r\n", "-ASK 3999
// host:port\r\n", "-TRYAGAIN ...", "-CLUSTERDOWN ...". The port follows the last ':' (an IPv6
// host is written bare: "-MOVED 1 ::1:6380"; a bracketed "[::1]" loses its brackets). The slot
// must be 0..16383 and the port 1..65535, else (and for any other error, or a reply that is no
// error) the kind is kNone. A reply that does not start with '-' costs one byte compare.
// No allocation; `host` lives as long as `reply`.
Redirect parseRedirect(std::string_view reply);

}  // namespace corral::cluster
