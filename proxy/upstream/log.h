// The "upstream" logger and its rate, shared by the files of Connection.
#pragma once

#include <cstdint>
#include <memory>

#include "config/logging.h"

namespace corral::upstream {

// While a connection keeps failing for the same reason (or keeps dropping replies too large), a
// reminder is logged at most this often.
inline constexpr int64_t kFailureLogEveryMs = 30000;

inline const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = logging::get("upstream");
  return logger;
}

}  // namespace corral::upstream
