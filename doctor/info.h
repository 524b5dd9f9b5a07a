// INFO text -> fields, pure. Redis answers INFO as "# Section" headers and "name:value" lines
// separated by CRLF; the keyspace section's values are "keys=1,expires=0,avg_ttl=0".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace corral::doctor {

// Every "name:value" line of an INFO reply (all sections in one map; names are unique across
// Redis's sections). Headers, blank lines and lines without ':' are skipped; CR is dropped.
class Info {
 public:
  static Info parse(std::string_view text);

  // The value as written, or nullopt when the field is absent.
  std::optional<std::string> text(std::string_view name) const;
  // The value as a number (integer or decimal), or nullopt when absent or not a number.
  std::optional<double> number(std::string_view name) const;
  // Sub-field of a "k=v,k=v" value: sub("db0", "keys") -> 12.
  std::optional<double> sub(std::string_view name, std::string_view field) const;
  bool empty() const { return fields_.empty(); }

 private:
  std::map<std::string, std::string, std::less<>> fields_;
};

// A number written the way INFO writes them ("123", "1.25", "-1"); nullopt otherwise.
std::optional<double> parseNumber(std::string_view s);

}  // namespace corral::doctor
