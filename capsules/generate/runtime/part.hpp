// capsules runtime: the part guard of a build split across cores.
//
// Goes before the entry runtime.  A split build compiles its C++ once per
// part, with -DCAPSULES_PART=k, and each part generates the code of its own
// kernels only: what belongs to part k alone is guarded by a test of
// CAPSULES_PART (capsules/child/protocol.py, in_part).  An entry point defined in one part
// is then named by the exports function of part 0, so it cannot be static
// there.
#ifndef CAPSULES_PART_HPP
#define CAPSULES_PART_HPP
#ifdef CAPSULES_PART
#define CAPSULES_ENTRY __attribute__((visibility("hidden")))
#else
#define CAPSULES_ENTRY static
#endif
#endif  // CAPSULES_PART_HPP
