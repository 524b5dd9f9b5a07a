// admin: the admin HTTP endpoint (proxy/admin/admin.h serves it).
//   listen      host:port; unset = no admin endpoint
//   token_env   the environment variable holding the bearer token /policies requires. Read here,
//               at load: a missing or empty variable is a config error, so a sidecar never starts
//               with /policies open by accident. The value is a secret: no error quotes it.
//   ready_when  upstream (default) | serving: what /ready's 200 means
#include <cstdlib>
#include <string>
#include <vector>

#include "config/loader.h"
#include "config/values.h"

namespace corral::config::detail {

void Loader::walkAdmin(const YAML::Node& value, const std::string& path) {
  std::vector<Key> keys = {
      {"listen", [&](const YAML::Node& k, const YAML::Node& v,
                     const std::string& p) { admin_listen_ = listenAddress(k, v, p); }},
      {"token_env",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         static constexpr const char* kRule =
             "must be the name of an environment variable, like CORRAL_ADMIN_TOKEN";
         const std::string* name = scalar(k, v, p, kRule);
         if (name == nullptr) return;
         if (!isValidEnvName(*name)) return failValue(k, v, p, kRule);
         const char* token = std::getenv(name->c_str());
         if (token == nullptr)
           return fail(v.Mark(), p, "environment variable " + *name + " is not set");
         if (*token == '\0')
           return fail(v.Mark(), p, "environment variable " + *name + " is empty");
         cfg_.admin.token_env = *name;
         cfg_.admin.token = token;
       }},
      {"ready_when",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         choice(k, v, p,
                {std::pair{std::string_view("upstream"), ReadyWhen::kUpstream},
                 std::pair{std::string_view("serving"), ReadyWhen::kServing}},
                &cfg_.admin.ready_when);
       }},
  };
  walkMap(value, path, keys);
}

}  // namespace corral::config::detail
