#include "doctor/info.h"

#include <charconv>

namespace corral::doctor {

std::optional<double> parseNumber(std::string_view s) {
  if (s.empty()) return std::nullopt;
  double v = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return v;
}

Info Info::parse(std::string_view text) {
  Info info;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    info.fields_.insert_or_assign(std::string(line.substr(0, colon)),
                                  std::string(line.substr(colon + 1)));
  }
  return info;
}

std::optional<std::string> Info::text(std::string_view name) const {
  auto it = fields_.find(name);
  if (it == fields_.end()) return std::nullopt;
  return it->second;
}

std::optional<double> Info::number(std::string_view name) const {
  auto it = fields_.find(name);
  if (it == fields_.end()) return std::nullopt;
  return parseNumber(it->second);
}

std::optional<double> Info::sub(std::string_view name, std::string_view field) const {
  auto it = fields_.find(name);
  if (it == fields_.end()) return std::nullopt;
  std::string_view v = it->second;
  while (!v.empty()) {
    size_t comma = v.find(',');
    std::string_view part = v.substr(0, comma);
    v.remove_prefix(comma == std::string_view::npos ? v.size() : comma + 1);
    const size_t eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == field) {
      return parseNumber(part.substr(eq + 1));
    }
  }
  return std::nullopt;
}

}  // namespace corral::doctor
