// corral doctor and corral health: the subcommands an operator (or a probe) runs beside the
// proxy. cmd/corral/main.cc hands them argv past the subcommand's name.
//
//   corral doctor [--config FILE | redis[s]://...] [--json] [...]
//     config/URL --> target (primary, Sentinel's primary, first cluster seed) --Connection-->
//     INFO -> server checks -> keyspace sample (on a replica when configured) -> INFO -> rates
//     --> Report --> text or JSON on stdout; exit 0 healthy, 1 warnings, 2 errors
//
//   corral health [--config FILE] [--ready] [--timeout 2s]
//     admin.listen --> GET /health (or /ready) --> exit 0 on HTTP 200, else 1 and one line
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "doctor/keyspace.h"

namespace corral::doctor {

struct DoctorOptions {
  std::string config_path;  // the proxy's config (default: the proxy's --config default)
  std::string url;          // redis://... or rediss://... instead of a config
  bool json = false;
  bool scan = true;  // --no-scan: server checks only
  SampleLimits limits;
  std::chrono::milliseconds timeout{2000};  // connect, TLS handshake and each command
};

// Parses doctor's flags (args: after "doctor"). False and *err on a bad flag or value.
bool parseDoctorArgs(const std::vector<std::string>& args, DoctorOptions* o, std::string* err);

// corral doctor: prints the report on stdout; returns the exit code (0, 1, 2; 2 also for bad
// flags, a config that does not load and an upstream that cannot be reached).
int runDoctor(const std::vector<std::string>& args, const std::string& default_config);

struct HealthOptions {
  std::string config_path;
  bool ready = false;
  std::chrono::milliseconds timeout{2000};
};
bool parseHealthArgs(const std::vector<std::string>& args, HealthOptions* o, std::string* err);

// corral health: 0 when the admin endpoint answers 200, else 1 with one line on stderr
// (2 for bad flags).
int runHealth(const std::vector<std::string>& args, const std::string& default_config);

// Usage lines of both subcommands, and what they do, for corral's --help.
extern const char* const kSubcommandUsage;
extern const char* const kSubcommandHelp;

}  // namespace corral::doctor
