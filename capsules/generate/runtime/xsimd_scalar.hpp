// capsules runtime: xsimd's scalar functions, without its vector types.
//
// Part of the prologue, which goes before everything pythran includes.
// pythran's numpy functions call xsimd's (xsimd::floor of a double is
// std::floor), so their headers include all of xsimd, with the registers and
// CPU detection of every instruction set it knows; its vector code is
// compiled only with -DUSE_XSIMD, which a build does not pass.  Parsing all
// of it was a large share of a small module's compile
// (benchmarks/RESULTS.md).  Here is what xsimd includes for a CPU it has no
// vectors for (xsimd.hpp's own macros, its config, its scalar functions),
// but its aligned allocator, which pythran uses only with -DUSE_XSIMD and
// which includes the registers of every instruction set; xsimd.hpp is then
// skipped.  The object code is the same byte for byte.
// -DCAPSULES_FULL_XSIMD includes it all.
#ifndef CAPSULES_XSIMD_SCALAR_HPP
#define CAPSULES_XSIMD_SCALAR_HPP
#if !defined(USE_XSIMD) && !defined(CAPSULES_FULL_XSIMD) && !defined(XSIMD_HPP) \
    && __has_include(<xsimd/config/xsimd_config.hpp>) && __has_include(<xsimd/config/xsimd_inline.hpp>) \
    && __has_include(<xsimd/arch/xsimd_scalar.hpp>)
#define XSIMD_HPP
#if defined(__FAST_MATH__)
#define XSIMD_NO_DENORMALS
#define XSIMD_NO_INFINITIES
#define XSIMD_NO_NANS
#endif
#define XSIMD_NO_DISCARD [[nodiscard]]
#define XSIMD_IF_CONSTEXPR if constexpr
#include <xsimd/config/xsimd_config.hpp>
#include <xsimd/config/xsimd_inline.hpp>
#include <xsimd/arch/xsimd_scalar.hpp>
#endif
#endif  // CAPSULES_XSIMD_SCALAR_HPP
