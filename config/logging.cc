#include "config/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <ctime>
#include <mutex>
#include <string>

namespace corral::logging {
namespace {

std::mutex g_mu;
spdlog::level::level_enum g_level = spdlog::level::info;

// Every line: time (UTC, RFC 3339, milliseconds), level, module, message.
constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ [%n] %v";

spdlog::sink_ptr sharedSink() {
  static spdlog::sink_ptr sink = [] {
    auto s = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    s->set_formatter(
        std::make_unique<spdlog::pattern_formatter>(kTextPattern, spdlog::pattern_time_type::utc));
    return s;
  }();
  return sink;
}

void appendUtcTime(std::string& out, spdlog::log_clock::time_point tp) {
  const auto since = tp.time_since_epoch();
  const std::time_t secs = std::chrono::duration_cast<std::chrono::seconds>(since).count();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  out.append(buf, n);
  std::snprintf(buf, sizeof(buf), ".%03dZ", static_cast<int>(ms));
  out += buf;
}

bool reservedKey(std::string_view k) {
  return k == "time" || k == "level" || k == "module" || k == "msg" || k == "event";
}

// One JSON object per line (log.format: json).
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line;
    line.reserve(128 + msg.payload.size() * 2);
    line += "{\"time\":\"";
    appendUtcTime(line, msg.time);
    line += "\",\"level\":";
    const auto level = spdlog::level::to_string_view(msg.level);
    appendJsonString(line, std::string_view(level.data(), level.size()));
    line += ",\"module\":";
    appendJsonString(line, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    const std::string_view text(msg.payload.data(), msg.payload.size());
    line += ",\"msg\":";
    appendJsonString(line, text);
    const Fields f = splitFields(text);
    line += ",\"event\":";
    appendJsonString(line, f.event);
    for (const auto& [k, v] : f.fields) {
      line += ',';
      appendJsonString(line, reservedKey(k) ? std::string(k) + "_" : std::string(k));
      line += ':';
      appendJsonString(line, v);
    }
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

bool keyStart(char c) { return (c >= 'a' && c <= 'z') || c == '_'; }
bool keyChar(char c) { return keyStart(c) || (c >= '0' && c <= '9') || c == '.'; }

// Length of the UTF-8 sequence at s[i], or 0 when the bytes there are not one.
size_t utf8Length(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t n = 0;
  uint32_t cp = 0;
  if (b >= 0xC2 && b <= 0xDF) {
    n = 2;
    cp = b & 0x1F;
  } else if (b >= 0xE0 && b <= 0xEF) {
    n = 3;
    cp = b & 0x0F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    n = 4;
    cp = b & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (c & 0x3F);
  }
  // overlong forms, surrogates and past U+10FFFF are not UTF-8
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

}  // namespace

std::shared_ptr<spdlog::logger> get(std::string_view module) {
  std::lock_guard<std::mutex> lock(g_mu);
  std::string name(module);
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = std::make_shared<spdlog::logger>(name, sharedSink());
  logger->set_level(g_level);
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

std::optional<Format> parseFormat(std::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "json") return Format::kJson;
  return std::nullopt;
}

void setFormat(Format format) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (format == Format::kJson) {
    sharedSink()->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    sharedSink()->set_formatter(
        std::make_unique<spdlog::pattern_formatter>(kTextPattern, spdlog::pattern_time_type::utc));
  }
}

Fields splitFields(std::string_view msg) {
  Fields out;
  // starts of " key=" in order: (position of the space, key length)
  std::vector<std::pair<size_t, size_t>> starts;
  for (size_t i = 0; i + 2 < msg.size(); ++i) {
    if (msg[i] != ' ' || !keyStart(msg[i + 1])) continue;
    size_t j = i + 1;
    while (j < msg.size() && keyChar(msg[j])) ++j;
    if (j < msg.size() && msg[j] == '=') {
      starts.emplace_back(i, j - i - 1);
      i = j;
      // key="quoted value": no key starts inside the quotes
      if (j + 1 < msg.size() && msg[j + 1] == '"') {
        size_t close = j + 2;
        while (close < msg.size() &&
               !(msg[close] == '"' && (close + 1 == msg.size() || msg[close + 1] == ' '))) {
          ++close;
        }
        if (close < msg.size()) i = close;
      }
    }
  }
  out.event = msg.substr(0, starts.empty() ? msg.size() : starts.front().first);
  for (size_t n = 0; n < starts.size(); ++n) {
    const auto [at, klen] = starts[n];
    const size_t vstart = at + 1 + klen + 1;
    const size_t vend = n + 1 < starts.size() ? starts[n + 1].first : msg.size();
    std::string_view v = msg.substr(vstart, vend - vstart);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    out.fields.emplace_back(msg.substr(at + 1, klen), v);
  }
  return out;
}

void appendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else if (c >= 0x80) {
      const size_t n = utf8Length(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
        continue;
      }
      out.append(s.substr(i, n));
      i += n;
      continue;
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
  out += '"';
}

}  // namespace corral::logging
