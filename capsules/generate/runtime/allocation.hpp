// capsules runtime: the errors generated code throws, and allocation that throws instead of returning null.
//
// Part of the prologue, which goes before everything pythran includes.
#ifndef CAPSULES_ALLOCATION_HPP
#define CAPSULES_ALLOCATION_HPP
#include <pythonic/core.hpp>
#include <pythonic/python/core.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
// capsules_rt, like pythran's own namespace, is local to each compile: the
// parts of a split build each have their own copy, and the exceptions a
// part throws are caught there, with its own types.
namespace {
namespace capsules_rt {
// What the generated code throws itself; the barrier raises it as `type`.
struct error : std::exception {
  PyObject *type;
  char message[200];
  error(PyObject *type, const char *text) : type(type) { std::snprintf(message, sizeof message, "%s", text); }
  const char *what() const noexcept override { return message; }
};
struct out_of_memory : std::bad_alloc {
  char message[64];
  explicit out_of_memory(std::size_t bytes) {
    std::snprintf(message, sizeof message, "unable to allocate %zu bytes", bytes);
  }
  const char *what() const noexcept override { return message; }
};
[[noreturn]] __attribute__((cold, noinline)) inline void allocation_failed(std::size_t bytes) {
  throw out_of_memory(bytes);
}
}  // namespace capsules_rt
}  // namespace
PYTHONIC_NS_BEGIN
namespace utils {
// pythran's allocator (pythonic/include/utils/allocate.hpp) calls malloc,
// calloc and realloc unqualified from this namespace, and much of pythran
// (numpy.zeros, lists, ...) uses what they return unchecked: a failed
// allocation was a SIGSEGV.  Declared first, these are the functions it
// calls; they throw, and the barrier raises MemoryError.
//
// Small sizes known when compiling are pythran's own bookkeeping (the block
// behind each array's reference count): left untested, the compiler still
// removes those that never escape the kernel, where a test would keep a
// malloc and a free in every call.  Any other size costs one test.
#define CAPSULES_TESTED(bytes) (!__builtin_constant_p(bytes) || (bytes) > 4096)
inline void *malloc(std::size_t bytes) {
  void *memory = std::malloc(bytes);
  if (CAPSULES_TESTED(bytes) && __builtin_expect(memory == nullptr && bytes != 0, 0))
    capsules_rt::allocation_failed(bytes);
  return memory;
}
inline void *calloc(std::size_t count, std::size_t size) {
  void *memory = std::calloc(count, size);
  if (CAPSULES_TESTED(count * size) && __builtin_expect(memory == nullptr && count != 0 && size != 0, 0)) {
    std::size_t bytes;
    capsules_rt::allocation_failed(__builtin_mul_overflow(count, size, &bytes) ? SIZE_MAX : bytes);
  }
  return memory;
}
inline void *realloc(void *old, std::size_t bytes) {
  void *memory = std::realloc(old, bytes);
  if (CAPSULES_TESTED(bytes) && __builtin_expect(memory == nullptr && bytes != 0, 0))
    capsules_rt::allocation_failed(bytes);
  return memory;
}
#undef CAPSULES_TESTED
}  // namespace utils
PYTHONIC_NS_END
#endif  // CAPSULES_ALLOCATION_HPP
