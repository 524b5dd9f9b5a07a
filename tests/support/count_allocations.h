// Counts every heap allocation of a unit-test binary, for tests that check a path allocates
// nothing: `g_allocations` before and after. Replaces the global operator new and delete, so it
// is included by exactly one source file of a binary (the test that uses it); other files of the
// same binary declare `extern std::atomic<uint64_t> g_allocations;`.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

// Relaxed: only the test thread reads it.
std::atomic<uint64_t> g_allocations{0};

void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
