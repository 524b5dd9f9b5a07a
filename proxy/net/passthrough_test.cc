// Passthrough's pure parts: which credentials a HELLO tries (as Redis 7.0 reads its options), and
// the AUTH request that logs a connection in with them.
#include "proxy/net/passthrough.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/net/command_kind.h"

namespace corral::net {
namespace {

using Args = std::vector<std::string_view>;
using Creds = std::vector<std::pair<std::string_view, std::string_view>>;

TEST_CASE("helloCredentials: every AUTH option in order, none past a bad option or version") {
  CHECK(helloCredentials(Args{"HELLO"}).empty());
  CHECK(helloCredentials(Args{"HELLO", "3"}).empty());
  CHECK(helloCredentials(Args{"HELLO", "3", "AUTH", "u", "p"}) == Creds{{"u", "p"}});
  CHECK(helloCredentials(Args{"hello", "2", "auth", "u", "p", "SETNAME", "n"}) ==
        Creds{{"u", "p"}});
  CHECK(helloCredentials(Args{"HELLO", "3", "SETNAME", "n", "AUTH", "u", "p", "AUTH", "v", "q"}) ==
        Creds{{"u", "p"}, {"v", "q"}});
  // SETNAME's value is not an option: `SETNAME AUTH` names the client "AUTH".
  CHECK(helloCredentials(Args{"HELLO", "3", "SETNAME", "AUTH", "SETNAME", "x"}).empty());
  // AUTH without both values, or an unknown option: Redis's syntax error, nothing is tried.
  CHECK(helloCredentials(Args{"HELLO", "3", "AUTH", "u"}).empty());
  CHECK(helloCredentials(Args{"HELLO", "3", "NOPE", "AUTH", "u", "p"}).empty());
  CHECK(helloCredentials(Args{"HELLO", "3", "AUTH", "u", "p", "NOPE"}) == Creds{{"u", "p"}});
  // A version Redis refuses stops HELLO before its options.
  CHECK(helloCredentials(Args{"HELLO", "4", "AUTH", "u", "p"}).empty());
  CHECK(helloCredentials(Args{"HELLO", "x", "AUTH", "u", "p"}).empty());
  CHECK(helloLogsIn(Args{"HELLO", "2", "AUTH", "u", "p"}));
  CHECK_FALSE(helloLogsIn(Args{"HELLO", "2"}));
}

TEST_CASE("helloOption: the kind of option at a position") {
  const Args a{"HELLO", "3", "AUTH", "u", "p", "SETNAME", "n", "X"};
  CHECK(helloOption(a, 2) == HelloOption::kAuth);
  CHECK(helloOption(a, 5) == HelloOption::kSetname);
  CHECK(helloOption(a, 7) == HelloOption::kBad);
  CHECK(helloOption(Args{"HELLO", "3", "SETNAME"}, 2) == HelloOption::kBad);
}

TEST_CASE("authRequest: the one- and two-argument forms, binary-safe") {
  CHECK(authRequest(true, "ignored", "pw") == "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n");
  CHECK(authRequest(false, "app", "pw") == "*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$2\r\npw\r\n");
  CHECK(authRequest(false, "app", "") == "*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$0\r\n\r\n");
  CHECK(authRequest(false, "a b", std::string_view("p\r\n\0", 4)) ==
        std::string("*3\r\n$4\r\nAUTH\r\n$3\r\na b\r\n$4\r\np\r\n\0\r\n", 33));
}

}  // namespace
}  // namespace corral::net
