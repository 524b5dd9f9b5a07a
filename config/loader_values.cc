// The loader's typed leaves: one YAML value -> a checked value, or an error at its position
// that names the key path, the rule and the value as written. The text parsers they call are in
// values.cc and addresses.cc; the keys that use them are in the *_sections.cc files.
#include <limits>
#include <utility>

#include "config/loader.h"

namespace corral::config::detail {

const std::string* Loader::scalar(const YAML::Node& key, const YAML::Node& value,
                                  const std::string& path, const char* rule) {
  if (!value.IsScalar()) {
    failValue(key, value, path, rule);
    return nullptr;
  }
  return &value.Scalar();
}

bool Loader::duration(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                      bool allow_zero, Millis* out) {
  const std::string* s = scalar(key, value, path, kDurationRule);
  if (s == nullptr) return false;
  std::string why;
  auto d = durationWithReason(*s, &why);
  if (!d) {
    failValue(key, value, path, why);
    return false;
  }
  if (!allow_zero && d->count() == 0) {
    failValue(key, value, path, "must be greater than 0");
    return false;
  }
  *out = *d;
  return true;
}

void Loader::integer(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                     int64_t min, int64_t max, const std::function<void(int64_t)>& set) {
  std::string rule =
      "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
  const std::string* s = scalar(key, value, path, rule.c_str());
  if (s == nullptr) return;
  std::string_view digits = *s;
  bool negative = !digits.empty() && digits[0] == '-';
  if (negative) digits.remove_prefix(1);
  bool overflow = false;
  auto v = parseDigits(digits, &overflow);
  if (!v || *v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return failValue(key, value, path, rule);
  }
  int64_t n = negative ? -static_cast<int64_t>(*v) : static_cast<int64_t>(*v);
  if (n < min || n > max) return failValue(key, value, path, rule);
  set(n);
}

void Loader::size(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                  uint64_t min, uint64_t max, const std::function<void(uint64_t)>& set) {
  const std::string* s = scalar(key, value, path, kSizeRule);
  if (s == nullptr) return;
  std::string why;
  auto v = sizeWithReason(*s, &why);
  if (!v) return failValue(key, value, path, why);
  if (*v < min) {
    return failValue(key, value, path,
                     min == kMinByteLimit ? "must be at least 1KiB (is a unit missing?)"
                                          : "must be at least " + std::to_string(min));
  }
  if (*v > max) {
    return failValue(key, value, path, "must be at most " + std::to_string(max) + " bytes");
  }
  set(*v);
}

void Loader::string(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                    std::string* out) {
  const std::string* s = scalar(key, value, path, "must be a string");
  if (s != nullptr) *out = *s;
}

std::optional<Located<ListenAddress>> Loader::listenAddress(const YAML::Node& key,
                                                            const YAML::Node& value,
                                                            const std::string& path) {
  const std::string* s =
      scalar(key, value, path, "must be host:port, [ipv6]:port, tls://host:port or unix:/path");
  if (s == nullptr) return std::nullopt;
  std::string why;
  auto a = listenWithReason(*s, /*allow_port_zero=*/true, &why);
  if (!a) {
    failValue(key, value, path, why);
    return std::nullopt;
  }
  return Located<ListenAddress>{std::move(*a), value.Mark(), path};
}

std::optional<Located<ParsedUpstream>> Loader::upstreamAddress(const YAML::Node& key,
                                                               const YAML::Node& value,
                                                               const std::string& path) {
  if (!value.IsScalar()) {
    failValue(key, value, path,
              "must be host:port, unix:/path or redis[s]://[user[:password]@]host:port[/db]");
    return std::nullopt;
  }
  std::string why;
  auto p = upstreamWithReason(value.Scalar(), &why);
  if (!p) {
    // Never echo a password, even from a malformed URL.
    fail(value.Mark(), path, why, quoteForError(maskPassword(value.Scalar())));
    return std::nullopt;
  }
  return Located<ParsedUpstream>{std::move(*p), value.Mark(), path};
}

bool Loader::boolean(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                     bool* out) {
  // Strict: yaml-cpp would also take yes/no/on/off/y/n, which read as words in this file.
  const std::string* s = scalar(key, value, path, kBoolRule);
  if (s == nullptr) return false;
  if (*s == "true") {
    *out = true;
  } else if (*s == "false") {
    *out = false;
  } else {
    failValue(key, value, path, kBoolRule);
    return false;
  }
  return true;
}

bool Loader::durationOpt(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                         std::optional<Millis>* out) {
  Millis d{0};
  if (!duration(key, value, path, /*allow_zero=*/false, &d)) return false;
  *out = d;
  return true;
}

bool Loader::integerOk(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                       int64_t min, int64_t max, int64_t* out) {
  bool ok = false;
  integer(key, value, path, min, max, [&](int64_t n) {
    *out = n;
    ok = true;
  });
  return ok;
}

bool Loader::sizeOk(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                    uint64_t min, uint64_t max, uint64_t* out) {
  bool ok = false;
  size(key, value, path, min, max, [&](uint64_t n) {
    *out = n;
    ok = true;
  });
  return ok;
}

bool Loader::jitter(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                    double* out) {
  const std::string* s = scalar(key, value, path, kJitterRule);
  if (s == nullptr) return false;
  std::string why;
  auto j = jitterWithReason(*s, &why);
  if (!j) {
    failValue(key, value, path, why);
    return false;
  }
  *out = *j;
  return true;
}

bool Loader::positiveNumber(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                            double* out) {
  static constexpr const char* kRule = "must be a number greater than 0, like 1.0";
  const std::string* s = scalar(key, value, path, kRule);
  if (s == nullptr) return false;
  auto d = parseDecimal(*s);
  if (!d || *d <= 0) {
    failValue(key, value, path, kRule);
    return false;
  }
  *out = *d;
  return true;
}

bool Loader::uniqueName(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                        std::map<std::string, std::string>* seen, std::string* out) {
  const std::string* s = scalar(key, value, path, kNameRule);
  if (s == nullptr) return false;
  if (!isValidName(*s)) {
    failValue(key, value, path, kNameRule);
    return false;
  }
  auto [first, inserted] = seen->emplace(*s, path + " at " + formatWhere(whereOf(value.Mark())));
  if (!inserted) {
    failValue(key, value, path, "duplicate of " + first->second);
    return false;
  }
  *out = *s;
  return true;
}

}  // namespace corral::config::detail
