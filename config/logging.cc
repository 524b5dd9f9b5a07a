#include "config/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>
#include <string>

namespace corral::logging {
namespace {

std::mutex g_mu;
spdlog::level::level_enum g_level = spdlog::level::info;

spdlog::sink_ptr sharedSink() {
  static spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  return sink;
}

}  // namespace

std::shared_ptr<spdlog::logger> get(std::string_view module) {
  std::lock_guard<std::mutex> lock(g_mu);
  std::string name(module);
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = std::make_shared<spdlog::logger>(name, sharedSink());
  logger->set_level(g_level);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  spdlog::register_logger(logger);
  return logger;
}

std::optional<spdlog::level::level_enum> parseLevel(std::string_view name) {
  static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"critical", spdlog::level::critical},
      {"off", spdlog::level::off},
  };
  for (const auto& [n, l] : kLevels) {
    if (n == name) return l;
  }
  return std::nullopt;
}

void setLevel(spdlog::level::level_enum level) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_level = level;
  spdlog::apply_all([level](const std::shared_ptr<spdlog::logger>& l) { l->set_level(level); });
}

}  // namespace corral::logging
