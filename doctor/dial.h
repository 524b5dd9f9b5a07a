// Blocking-with-a-deadline socket helpers for the one-shot subcommands (doctor's Connection,
// health's GET): a connected non-blocking socket within a deadline, and waiting on it.
// Non-blocking plus poll() so that one deadline bounds a whole step (connect, TLS handshake,
// a reply), where SO_RCVTIMEO would only bound each recv and a server trickling bytes could
// stall the tool for ever.
#pragma once

#include <chrono>
#include <string>

#include "config/config.h"

namespace corral::doctor {

using Clock = std::chrono::steady_clock;

// Milliseconds left before deadline (0 when past).
int leftMs(Clock::time_point deadline);

// Waits until fd is ready for events (POLLIN / POLLOUT) or the deadline passes (false).
bool waitFor(int fd, short events, Clock::time_point deadline);

// A connected non-blocking socket to a (TCP: each resolved address in turn; a wildcard host,
// 0.0.0.0 or ::, is reached on loopback; or a unix socket), or -1 and *err ("cannot connect to
// host:port: reason"). The caller closes it.
int dial(const config::ListenAddress& a, Clock::time_point deadline, std::string* err);

}  // namespace corral::doctor
