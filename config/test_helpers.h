// Helpers shared by the config tests (test-only; each *_test.cc includes it).
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"

// Lets doctest print error lists when a comparison fails.
namespace doctest {
template <>
struct StringMaker<std::vector<std::string>> {
  static String convert(const std::vector<std::string>& v) {
    std::string out = "{";
    for (const std::string& s : v) out += "\n  \"" + s + "\"";
    out += v.empty() ? "}" : "\n}";
    return String(out.c_str());
  }
};
}  // namespace doctest

namespace corral::config::testing {

// The smallest valid file; appended to snippets that test something else.
inline constexpr const char* kPrimary = "upstream: {primary: 127.0.0.1:6379}\n";

inline std::vector<std::string> errorsOf(const std::string& yaml) {
  LoadResult r = loadConfigText(yaml, "t.yaml");
  std::vector<std::string> out;
  for (const ConfigError& e : r.errors) out.push_back(e.format());
  CHECK(r.config.has_value() == out.empty());
  return out;
}

// All errors on one line, so a failing REQUIRE shows them.
inline std::string joined(const LoadResult& r) {
  std::string out;
  for (const ConfigError& e : r.errors) out += e.format() + "\n";
  return out;
}

inline Config mustLoad(const std::string& yaml) {
  LoadResult r = loadConfigText(yaml, "t.yaml");
  INFO(joined(r));
  REQUIRE(r.errors.empty());
  REQUIRE(r.config.has_value());
  return *r.config;
}

// Sets an environment variable for the lifetime of one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (value == nullptr) {
      ::unsetenv(name);
    } else {
      ::setenv(name, value, 1);
    }
  }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

// One bad snippet -> the exact errors it must produce.
struct ErrorCase {
  std::string yaml;
  std::vector<std::string> errors;
};

inline void checkErrorCases(const std::vector<ErrorCase>& cases) {
  for (const ErrorCase& c : cases) {
    CAPTURE(c.yaml);
    CHECK(errorsOf(c.yaml) == c.errors);
  }
}

// A temporary directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/corral_policy_test_XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    path_ = name;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Writes path()/name (creating directories on the way) and returns its full name.
  std::string write(const std::string& name, const std::string& text) const {
    std::string full = path_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(full).parent_path());
    std::FILE* f = std::fopen(full.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs(text.c_str(), f);
    std::fclose(f);
    return full;
  }

 private:
  std::string path_;
};

inline std::vector<std::string> fileErrorsOf(const std::string& file) {
  LoadResult r = loadConfigFile(file);
  std::vector<std::string> out;
  for (const ConfigError& e : r.errors) out.push_back(e.format());
  CHECK(r.config.has_value() == out.empty());
  return out;
}

}  // namespace corral::config::testing
