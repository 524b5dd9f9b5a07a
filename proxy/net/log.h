// The net module's logger (one spdlog logger per module; see config/logging.h).
#pragma once

#include <memory>

#include "config/logging.h"

namespace corral::net {

inline const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = logging::get("net");
  return logger;
}

}  // namespace corral::net
