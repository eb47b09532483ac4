// capsules runtime: the header in front of a checked build's user_data.
//
// Part of a checked build's prologue.  Kernel.lowlevel() copies user_data
// into an array that starts CAPSULES_USER_DATA_HEADER bytes after two
// int64: this magic number ("capsules" in ASCII) and the number of items.
// The entry point reads the number from there to bounds-check the kernel's
// subscripts of user_data.  capsules.userdata reads both values from this
// file, and writes the header.
#ifndef CAPSULES_USER_DATA_HPP
#define CAPSULES_USER_DATA_HPP
#define CAPSULES_USER_DATA_MAGIC 0x63617073756c6573LL
#define CAPSULES_USER_DATA_HEADER 16
#endif  // CAPSULES_USER_DATA_HPP
