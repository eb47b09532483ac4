// capsules runtime: a natural kernel's typed parameters, read from its user_data block.
//
// Goes after the entry runtime, in a build with a kernel whose parameters
// are not all float64 scalars.  Kernel.lowlevel() packs every parameter
// into one block of 8-byte words (capsules/userdata.py writes it,
// capsules/generate/parameters.py says which parameter is where):
//   word k          the k-th parameter: a float64 or int64 scalar's value, or
//                   for an array, the word at which its record starts;
//   a record        one word per axis (the array's shape), then its items in
//                   C order, padded to whole words.
// The entry point passes each parameter that is not a float64 scalar to the
// adapter as arguments of their own: the value, or a pointer to the items
// and the length along each axis.
#ifndef CAPSULES_PARAMETERS_HPP
#define CAPSULES_PARAMETERS_HPP
#include <cstdint>
namespace {
namespace capsules_rt {
inline const std::int64_t *parameter_words(const void *user_data) {
  return static_cast<const std::int64_t *>(user_data);
}
inline std::int64_t parameter_word(const void *user_data, long k) { return parameter_words(user_data)[k]; }
inline long parameter_extent(const void *user_data, long k, long axis) {
  const std::int64_t *words = parameter_words(user_data);
  return static_cast<long>(words[words[k] + axis]);
}
inline void *parameter_items(const void *user_data, long k, long rank) {
  const std::int64_t *words = parameter_words(user_data);
  return const_cast<std::int64_t *>(words + words[k] + rank);
}
}  // namespace capsules_rt
}  // namespace
#endif  // CAPSULES_PARAMETERS_HPP
