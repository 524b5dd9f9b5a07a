// One spdlog logger per module, all writing to stderr through one shared sink.
//
// Messages are an event then key=value pairs: log->warn("upstream down addr={} err={}", a, e).
// Levels: error = an operator must act; warn = degraded; info = lifecycle; debug/trace = per
// request (compiled out of release builds by SPDLOG_ACTIVE_LEVEL).
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace corral::logging {

// Returns the module's logger, creating it on first use (thread-safe).
std::shared_ptr<spdlog::logger> get(std::string_view module);

// Parses "trace".."off"; std::nullopt for anything else.
std::optional<spdlog::level::level_enum> parseLevel(std::string_view name);

// Sets the level of every module logger, present and future.
void setLevel(spdlog::level::level_enum level);

// How a line is written (log.format). Both put the time in UTC, RFC 3339 with milliseconds:
//   text  2026-12-06T20:31:02.123Z warning [upstream] upstream down addr=10.0.0.5:6379 err=...
//   json  {"time":"2026-12-06T20:31:02.123Z","level":"warning","module":"upstream",
//          "msg":"upstream down addr=10.0.0.5:6379 err=...","event":"upstream down",
//          "addr":"10.0.0.5:6379","err":"..."}
// In json each key=value of the message (STYLE: an event, then key=value pairs) is also a field
// of its own; a key that would overwrite time, level, module, msg or event gets a '_' suffix.
enum class Format : uint8_t { kText, kJson };

// Parses "text" or "json"; std::nullopt for anything else.
std::optional<Format> parseFormat(std::string_view name);

// Sets the format of every line from now on (every logger shares one sink).
void setFormat(Format format);

// A message split as the json format does: the event, then key=value fields in order. A field
// starts at " key=" (key: [a-z_][a-z0-9_.]*) and runs to the next one, so a value may hold spaces;
// a value in double quotes (key="a b=c") is one value, given without its quotes.
struct Fields {
  std::string_view event;
  std::vector<std::pair<std::string_view, std::string_view>> fields;
};
Fields splitFields(std::string_view msg);

// `s` as a JSON string with its quotes, appended to out: ", \ and control bytes escaped, bytes that
// are not UTF-8 written as U+FFFD (keys are binary-safe in Redis; a log line must stay JSON).
void appendJsonString(std::string& out, std::string_view s);

}  // namespace corral::logging
