// Shared by proxy/cluster's tests: the captured replies under testdata/ (testdata/capture.py).
#pragma once

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <string>

namespace corral::cluster::test {

// The bytes of testdata/<name>; fails the test when the file cannot be read.
inline std::string fixture(const std::string& name) {
  std::ifstream f(std::string(CORRAL_CLUSTER_TESTDATA) + "/" + name, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "cannot read testdata/" << name);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace corral::cluster::test
