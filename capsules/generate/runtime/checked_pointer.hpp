// capsules runtime: a checked build's raw pointers, which know how many items SciPy passed behind them.
//
// Part of a checked build's prologue, after allocation.hpp and user_data.hpp.
// This replaces pythran's own pointer type (whose include guards are defined
// here, so that pythonic/include/types/pointer.hpp and
// pythonic/types/pointer.hpp are skipped): the same interface, plus how many
// items SciPy passed behind the pointer, which the entry point fills in.
// Every subscript is checked, wherever the kernel makes it: in the exported
// function, in helpers it passes the pointer to, in pythran's fast loops.
#ifndef CAPSULES_CHECKED_POINTER_HPP
#define CAPSULES_CHECKED_POINTER_HPP
#define PYTHONIC_INCLUDE_TYPES_POINTER_HPP
#define PYTHONIC_TYPES_POINTER_HPP
#include <tuple>
namespace {
namespace capsules_rt {
[[noreturn]] __attribute__((cold, noinline)) inline void out_of_bounds(long index, long size, const char *name) {
  char text[200];
  std::snprintf(text, sizeof text, "%s[%ld] is out of range (%s has %ld item%s)", name, index, name, size,
                size == 1 ? "" : "s");
  throw error(PyExc_IndexError, text);
}
inline long user_data_items(const void *user_data) {
  if (user_data == nullptr) return 0;
  const std::int64_t *header = static_cast<const std::int64_t *>(user_data) - CAPSULES_USER_DATA_HEADER / 8;
  if (header[0] != CAPSULES_USER_DATA_MAGIC)
    throw error(PyExc_ValueError, "a checked build reads the length of user_data from the copy that "
                                  "Kernel.lowlevel() makes: pass user_data through lowlevel()");
  return static_cast<long>(header[1]);
}
}  // namespace capsules_rt
}  // namespace
PYTHONIC_NS_BEGIN
namespace types {
template <class T> struct pointer {
  T *data;
  long size = -1;  // not known (a pointer pythran made from an array): not checked
  const char *name = "";
  using reference = T &;
  using const_reference = T const &;
  using value_type = T;
  long at(long i) const {
    if (size >= 0 && (i < 0 || i >= size)) capsules_rt::out_of_bounds(i, size, name);
    return i;
  }
  reference operator[](long i) { return data[at(i)]; }
  value_type operator[](long i) const { return data[at(i)]; }
  reference fast(long i) { return data[at(i)]; }
  value_type fast(long i) const { return data[at(i)]; }
};
}  // namespace types
PYTHONIC_NS_END
namespace std {
template <size_t I, class T> typename pythonic::types::pointer<T>::reference get(pythonic::types::pointer<T> &t) {
  return t[I];
}
template <size_t I, class T>
typename pythonic::types::pointer<T>::value_type get(pythonic::types::pointer<T> const &t) {
  return t[I];
}
template <size_t I, class T> typename pythonic::types::pointer<T>::value_type get(pythonic::types::pointer<T> &&t) {
  return t[I];
}
template <size_t I, class T> struct tuple_element<I, pythonic::types::pointer<T>> {
  using type = typename pythonic::types::pointer<T>::value_type;
};
}  // namespace std
PYTHONIC_NS_BEGIN
template <class T> struct to_python<types::pointer<T>> {
  static PyObject *convert(types::pointer<T> const &) { return nullptr; }
};
template <class T> struct from_python<types::pointer<T>> {
  static bool is_convertible(PyObject *) { return false; }
  static types::pointer<T> convert(PyObject *) { return {nullptr}; }
};
PYTHONIC_NS_END
#endif  // CAPSULES_CHECKED_POINTER_HPP
