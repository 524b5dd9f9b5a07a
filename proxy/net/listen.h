// Binding the client listeners before the workers start.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/net/worker.h"

namespace corral::net {

// Binds every address once per worker: TCP with SO_REUSEPORT, so the kernel spreads
// connections over the workers' own sockets (port 0 is resolved on the first bind and reused);
// a unix socket is bound once and each worker gets a dup of it. Returns sockets[worker][i];
// on failure returns {} with err set, having closed what it opened.
std::vector<std::vector<ListenSocket>> bindListeners(
    const std::vector<config::ListenAddress>& addrs, int workers, std::string& err);

}  // namespace corral::net
