// CommandBatch: the RESP bytes of each command, appended batches, reuse after clear().
#include "policies/command_batch.h"

#include <doctest/doctest.h>

namespace corral::policies {
namespace {

TEST_CASE("command batch: commands are RESP arrays of bulk strings, one after the other") {
  CommandBatch b;
  CHECK(b.empty());
  b.add({"PEXPIRE", "k", "100", "NX"});
  b.add({"DEL", ""});
  REQUIRE(b.size() == 2);
  CHECK(b.command(0) == "*4\r\n$7\r\nPEXPIRE\r\n$1\r\nk\r\n$3\r\n100\r\n$2\r\nNX\r\n");
  CHECK(b.command(1) == "*2\r\n$3\r\nDEL\r\n$0\r\n\r\n");

  CommandBatch all;
  all.add({"PING"});
  all.append(b);
  REQUIRE(all.size() == 3);
  CHECK(all.command(0) == "*1\r\n$4\r\nPING\r\n");
  CHECK(all.command(2) == b.command(1));

  b.clear();
  CHECK(b.empty());
  b.add({"DEL", "x"});
  REQUIRE(b.size() == 1);
  CHECK(b.command(0) == "*2\r\n$3\r\nDEL\r\n$1\r\nx\r\n");
}

}  // namespace
}  // namespace corral::policies
