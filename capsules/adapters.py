"""Stage 3: C++ entry points with the exact C signatures SciPy calls.

Pythran's own capsule is named with pythran's spec and returns whatever C++
type pythran inferred.  For each capsule export we append to pythran's C++ a
plain ``extern "C"`` function with the SciPy signature, which converts the
raw C arguments to pythran's argument types, calls the kernel, and converts
the result to the C return type when that conversion is honest.

One exported function, ``capsules_exports_v1``, returns a tuple of
``(name, PyCapsule, inferred_return_kind)``: the capsule is named with the
SciPy signature string (a literal in the binary, so it lives as long as the
binary) and the kind is what pythran inferred, for the build to check.

A :func:`prologue` goes before pythran's C++: in every build it includes
only the scalar part of xsimd (pythran's vector code is not compiled, and
the rest of xsimd took a quarter of kernels/filters.py's compile), it makes a
failed allocation throw instead of handing pythran a null pointer, and in a
checked build it replaces pythran's raw pointer type with one that knows how
many items SciPy passed behind it, so that every subscript of a raw pointer
is bounds-checked, wherever the kernel makes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from .signatures import Signature
from .spec import ExportSpec

EXPORTS_SYMBOL = "capsules_exports_v1"
# A checked build's user_data copy starts right after two int64: this magic
# number ("capsules" in ASCII) and the number of items (see capsules.load).
USER_DATA_MAGIC = 0x63617073756C6573

# Before everything pythran includes: xsimd's scalar part alone.
_SCALAR_XSIMD = r"""
// ---- capsules: xsimd's scalar functions, without its vector types ----
// pythran's numpy functions call xsimd's (xsimd::floor of a double is
// std::floor), so their headers include all of xsimd, with the registers
// and CPU detection of every instruction set it knows; its vector code is
// compiled only with -DUSE_XSIMD, which a build does not pass.  That
// include took 0.8 s of the 2.85 s compile of kernels/filters.py, which has
// one `//` (pythran's floor_divide).  Here is what xsimd includes for a CPU
// it has no vectors for (xsimd.hpp's own macros, its config, its scalar
// functions) but its aligned allocator, which pythran uses only with
// -DUSE_XSIMD and which includes the registers of every instruction set;
// xsimd.hpp is then skipped.  The object code is the same byte for byte.
// -DCAPSULES_FULL_XSIMD includes it all.
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
"""

_ALLOCATION = r"""
// ---- capsules: before pythran's headers ----
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
"""

# A checked build's raw pointers, in place of pythran's own (whose include
# guards are defined here, so that pythonic/include/types/pointer.hpp and
# pythonic/types/pointer.hpp are skipped): the same interface, plus how many
# items SciPy passed behind the pointer, which the entry point fills in.
# Every subscript is checked, wherever the kernel makes it: in the exported
# function, in helpers it passes the pointer to, in pythran's fast loops.
_CHECKED_POINTER = r"""
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
  const std::int64_t *header = static_cast<const std::int64_t *>(user_data) - 2;
  if (header[0] != @MAGIC@)
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
""".replace("@MAGIC@", f"{USER_DATA_MAGIC:#x}LL")


def prologue(checked: bool = False) -> str:
    """C++ to put before pythran's: allocation that throws; in a checked build, bounds-checked pointers.

    It is guarded like a header: a build may include it precompiled, with
    the headers that follow it, before the C++ that starts with it.
    """
    body = _SCALAR_XSIMD + _ALLOCATION + (_CHECKED_POINTER if checked else "")
    return f"#ifndef CAPSULES_PROLOGUE\n#define CAPSULES_PROLOGUE{body}#endif  // CAPSULES_PROLOGUE\n"

_PRELUDE = r"""
// ---- capsules: entry points with SciPy's C signatures ----
#include <atomic>
#include <complex>
#include <new>
#include <limits>
#include <type_traits>
PYTHONIC_NS_BEGIN
namespace types { class str; }  // declared here for kind(), whether or not the kernel uses strings
PYTHONIC_NS_END
// A build split across cores compiles this source once per part, with
// -DCAPSULES_PART=k: an entry point defined in one part is then named by the
// exports function of part 0, so it cannot be static there.
#ifdef CAPSULES_PART
#define CAPSULES_ENTRY __attribute__((visibility("hidden")))
#else
#define CAPSULES_ENTRY static
#endif
// A generic_filter kernel sees one footprint per call, typically 9 to 49
// values: its loops are short.  Where gcc would vectorize them 512 bits at
// a time (-march=native on AMD Zen 4), 256-bit vectors ran a two-pass
// variance 4% faster; a moving average over whole lines (generic_filter1d)
// ran 3.5% slower with them, so the choice is made per entry point, which
// the kernel is inlined into.  Intel's AVX-512 CPUs get 256 bits already.
// The order of every operation is kept, so no result changes.
// -DCAPSULES_NO_SHORT_LOOPS leaves the choice to gcc.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(CAPSULES_NO_SHORT_LOOPS)
#define CAPSULES_SHORT_LOOPS _Pragma("GCC push_options") _Pragma("GCC target(\"prefer-vector-width=256\")")
#define CAPSULES_END_SHORT_LOOPS _Pragma("GCC pop_options")
#else
#define CAPSULES_SHORT_LOOPS
#define CAPSULES_END_SHORT_LOOPS
#endif
// SciPy's quad calls an integrand from a thunk that restores five saved
// registers and jumps to it: the integrand's frame lies on the slots the
// thunk saved them in.  With a 24-byte frame, gcc's for an integrand that
// keeps two values across its libm calls, such an integrand ran twice as
// slowly on AMD Zen 3 as with 40 bytes or more, the instructions otherwise
// the same (benchmarks/w1_frames.py; why that layout is slow is not known).
// A straight integrand's entry point (no loop, so no vector code for which
// the stack would be realigned) reserves 40 unused bytes, which no
// instruction touches: its frame is then 0 where it calls nothing, and 56
// bytes or more where it does.
// -DCAPSULES_NO_FRAME_PAD leaves the frame to the compiler.
#if defined(__x86_64__) && !defined(CAPSULES_NO_FRAME_PAD)
#define CAPSULES_FRAME_PAD char capsules_pad_[40]; __asm__ volatile("" : : "m"(capsules_pad_));
#else
#define CAPSULES_FRAME_PAD
#endif
namespace {
namespace capsules_rt {
template <class T> struct is_complex : std::false_type {};
template <class T> struct is_complex<std::complex<T>> : std::true_type {};
template <class F> struct result;
template <class R, class... A> struct result<R (*)(A...)> { using type = std::decay_t<R>; };
template <class F> using result_t = typename result<F>::type;

// The inferred return type, in numpy's dtype names, for the build to check.
template <class T> constexpr const char *kind() {
  if constexpr (std::is_same_v<T, bool>) return "bool";
  else if constexpr (std::is_floating_point_v<T>)
    return sizeof(T) == 8 ? "float64" : sizeof(T) == 4 ? "float32" : "longdouble";
  else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>)
    return sizeof(T) == 8 ? "int64" : sizeof(T) == 4 ? "int32" : sizeof(T) == 2 ? "int16" : "int8";
  else if constexpr (std::is_integral_v<T>) return "unsigned";
  else if constexpr (std::is_same_v<T, pythonic::types::none_type>) return "None";
  else if constexpr (is_complex<T>::value) return "complex";
  else if constexpr (std::is_same_v<T, pythonic::types::str>) return "str";
  else return "a non-scalar (array, list or tuple)";
}

// SciPy reads a double from integrands and an int success flag from ndimage
// callbacks; only these conversions are compiled, the build refuses the rest
// (in templates, so that a refused type never reaches the compiler).
template <class T> constexpr bool to_double = std::is_floating_point_v<T>;
template <class T> constexpr bool to_int = std::is_integral_v<T>;

template <class R, class F> double call_double(F &&call) {
  if constexpr (to_double<R>) return static_cast<double>(call());
  else return std::numeric_limits<double>::quiet_NaN();
}

inline void failed_without_error(const char *where);

// Stopping SciPy's loop.  Python runs signal handlers (Ctrl-C) only between
// bytecodes, and SciPy's ndimage loops go on calling after a failure until
// the end of the image (they stop only when no exception is set).  So now
// and then an entry point asks Python whether a signal or a failure is
// pending, and while one is, it returns at once.  A mapping asks at the
// start of each output row (its coordinates say where it is: nothing extra
// to count); the other roles every 256 calls, through a relaxed countdown
// (no locked instruction) that a failure sets to ask at every call.  A
// straight integrand (no loop, nothing called but math) never asks: its
// calls are short, and quad soon returns to Python (see _asks).
inline std::atomic<int> countdown{256};
inline bool stop_now() {
  PyGILState_STATE gil = PyGILState_Ensure();
  bool stop = PyErr_Occurred() != nullptr || PyErr_CheckSignals() != 0;
  PyGILState_Release(gil);
  countdown.store(stop ? 1 : 256, std::memory_order_relaxed);
  return stop;
}
// Whether it is time to ask: the test on the hot path.  The asking itself
// happens in a separate cold function, so that the hot path stays a leaf
// (no registers to save for a call that almost never happens).
inline bool due() {
  int left = countdown.load(std::memory_order_relaxed) - 1;
  countdown.store(left, std::memory_order_relaxed);
  return left <= 0;
}
inline bool due_at_row(const npy_intp *out_coords, int rank) {
  return rank > 0 && out_coords[rank - 1] == 0;
}
template <class T> T fail(T value) {
  countdown.store(1, std::memory_order_relaxed);
  return value;
}
// Whether n items at p and m items at q share no byte (compared as
// integers: pointers into different arrays have no order in C++).
template <class P, class Q> inline bool apart(const P *p, long n, const Q *q, long m) {
  auto a = reinterpret_cast<std::uintptr_t>(p), b = reinterpret_cast<std::uintptr_t>(q);
  return a + static_cast<std::uintptr_t>(n) * sizeof(P) <= b || b + static_cast<std::uintptr_t>(m) * sizeof(Q) <= a;
}

template <class R, class F> int call_flag(F &&call, const char *where) {
  if constexpr (to_int<R>) {
    if (call()) return 1;
    failed_without_error(where);  // SciPy would only say "unknown error"
  }
  return fail(0);
}

// Set capsules.errors.KernelError(message), caused by the exception in
// `cause` (stolen, may be null).  Called with the GIL held.
inline void set_kernel_error(PyObject *message, PyObject *cause) {
  PyObject *module = PyImport_ImportModule("capsules.errors");
  PyObject *cls = module ? PyObject_GetAttrString(module, "KernelError") : nullptr;
  PyObject *exc = (cls && message) ? PyObject_CallOneArg(cls, message) : nullptr;
  if (exc) {
    if (cause) PyException_SetCause(exc, cause);  // steals cause
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
  } else {
    Py_XDECREF(cause);
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "capsules: cannot create KernelError");
  }
  Py_XDECREF(cls);
  Py_XDECREF(module);
}

inline void failed_without_error(const char *where) {
  PyGILState_STATE gil = PyGILState_Ensure();
  if (!PyErr_Occurred()) {
    PyObject *msg = PyUnicode_FromFormat("%s returned 0 (failure) without raising an exception", where);
    set_kernel_error(msg, nullptr);
    Py_XDECREF(msg);
  }
  PyGILState_Release(gil);
}

// The exception barrier.  Called from a catch block: turns the C++ exception
// pythran threw into a Python exception (capsules.errors.KernelError, whose
// cause is the kernel's own exception), unless one is already pending: the
// first error wins.  The GIL is taken, as SciPy may have released it.
inline void raise_from_kernel(const char *where) {
  PyGILState_STATE gil = PyGILState_Ensure();
  if (!PyErr_Occurred()) {
    pythonic::handle_python_exception([]() -> PyObject * {
      try {
        throw;
#ifdef PYTHONIC_INCLUDE_TYPES_EXCEPTIONS_HPP
      // pythran's own exceptions: its handler maps them to Python's.  Only a
      // module whose code included their header can throw them; the others
      // are spared parsing it (a twelfth of a small module's compile).
      } catch (pythonic::types::BaseException const &) {
        throw;
#endif
      } catch (error const &e) {  // thrown by the prologue's code
        PyErr_SetString(e.type, e.what());
      } catch (out_of_memory const &e) {
        PyErr_SetString(PyExc_MemoryError, e.what());
      } catch (std::bad_alloc const &) {
        PyErr_NoMemory();
      } catch (std::exception const &e) {  // the C++ library's (Boost's special functions): keep its message
        PyErr_SetString(PyExc_RuntimeError, e.what());
      }
      return nullptr;
    });
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb) PyException_SetTraceback(value, tb);
    PyObject *msg = PyUnicode_FromFormat("%s raised %s: %S", where, reinterpret_cast<PyTypeObject *>(type)->tp_name, value);
    set_kernel_error(msg, value);  // steals value
    Py_XDECREF(msg);
    Py_XDECREF(type);
    Py_XDECREF(tb);
  }
  PyGILState_Release(gil);
}
}  // namespace capsules_rt
}  // namespace
"""


def entry_name(name: str) -> str:
    return f"capsules_entry_{name}"


def generate(
    exports: list[tuple[ExportSpec, Signature]],
    filename: str,
    *,
    checked: bool = False,
    parts: Sequence[int] | None = None,
) -> str:
    """C++ source to append to pythran's output for these capsule exports.

    ``filename`` (the kernel file's name) and each export's line locate the
    errors a kernel raises at run time.  ``checked``: the source starts with
    ``prologue(checked=True)``, and the entry points give each pointer its length.
    ``parts``: the part of a split build (see :func:`partition`) each
    export's entry point is compiled in; compiled without ``CAPSULES_PART``,
    the source is whole.
    """
    body = [_PRELUDE]
    for i, (spec, sig) in enumerate(exports):
        entry = _entry(spec, sig, f"{filename}:{spec.line}: '{spec.name}'", checked)
        body.append(entry if parts is None else _in_part(parts[i], entry, _declaration(spec, sig)))
    exported = _exports_function(exports)
    body.append(exported if parts is None else _in_part(0, exported))
    return "\n".join(body)


def partition(weights: Sequence[int], count: int) -> list[int]:
    """The part of a split build each kernel goes to, for ``count`` parts of about equal weight.

    A build split into parts compiles its C++ once per part, each compile on
    a core of its own and generating the code of its part's kernels only;
    the parts are then linked into one binary.  Each compile still parses
    the prologue and pythran's core headers, so the split pays where code
    generation is a large share of the compile: a module of several
    kernels.  The heaviest kernel goes to the lightest part first.  Which
    part a kernel is compiled in changes where its code lies in the binary,
    never what it computes.
    """
    loads = [0] * max(1, min(count, len(weights)))
    parts = [0] * len(weights)
    for i in sorted(range(len(weights)), key=lambda i: -weights[i]):
        parts[i] = loads.index(min(loads))
        loads[parts[i]] += max(1, weights[i])
    return parts


def _in_part(part: int, text: str, otherwise: str = "") -> str:
    """``text`` compiled in part ``part`` of a split build (and in a whole build); ``otherwise`` in the others."""
    test = f"#if !defined(CAPSULES_PART) || CAPSULES_PART == {part}\n"
    return f"{test}{text}#else\n{otherwise}#endif\n" if otherwise else f"{test}{text}#endif\n"


def _declaration(spec: ExportSpec, sig: Signature) -> str:
    """The entry point and its kind defined in another part, for the exports function (in part 0)."""
    name = entry_name(spec.name)
    return f"CAPSULES_ENTRY {sig.form.ret} {name}({_params(sig)});\nCAPSULES_ENTRY const char *{name}_kind();\n"


def _kind(spec: ExportSpec) -> str:
    """The kernel's inferred return type, named where the kernel is compiled.

    A part of a split build may have only its own kernels' C++ (generated
    part by part): the exports function, in part 0, asks each part.
    """
    function = f"capsules_rt::result_t<decltype(&{spec.entry or spec.name})>"
    return f"CAPSULES_ENTRY const char *{entry_name(spec.name)}_kind() {{ return capsules_rt::kind<{function}>(); }}\n"


def _entry(spec: ExportSpec, sig: Signature, where: str, checked: bool) -> str:
    params = _params(sig)
    lengths = _lengths(sig) if checked else {}
    call_args = ", ".join(_convert(cxx, i, lengths.get(i), spec.params[i]) for i, cxx in enumerate(spec.cxx_types))
    function = spec.entry or spec.name
    call = f"[&]() {{ return {function}({call_args}); }}"
    if sig.form.ret == "double":
        # quad has no error channel: NaN ends the integration, the pending
        # Python exception surfaces when SciPy returns
        fail = "std::numeric_limits<double>::quiet_NaN()"
        convert = f"capsules_rt::call_double<R>({call})"
    else:  # ndimage: 0 with an exception set makes SciPy raise it
        fail, convert = "0", f"capsules_rt::call_flag<R>({call}, {_c_string(where)})"
    failed = f"capsules_rt::fail<{sig.form.ret}>({fail})"
    name, ret = entry_name(spec.name), sig.form.ret
    args = ", ".join(f"a{i}" for i in range(len(sig.form.args)))
    short, end_short = ("CAPSULES_SHORT_LOOPS\n", "CAPSULES_END_SHORT_LOOPS\n") if _short_loops(sig) else ("", "")
    asking, test = "", ""
    if _asks(spec, sig):
        asking = _asking(name, ret, params, args, failed)
        test = f"  if (__builtin_expect({_due(sig)}, 0)) return {name}_asking({args});\n"
    body = (
        f"  using R = capsules_rt::result_t<decltype(&{function})>;\n"
        f"  try {{\n"
        f"    return {convert};\n"
        f"  }} catch (...) {{\n"
        f"    capsules_rt::raise_from_kernel({_c_string(where)});\n"
        f"    return {failed};\n"
        f"  }}\n}}\n"
    )
    pad = "  CAPSULES_FRAME_PAD\n" if _padded(spec, sig) else ""
    kept, fast = _kept_promises(sig)
    # where SciPy's promises have a path of their own, the plain one is for other callers: out of the hot code
    plain = "__attribute__((noinline, cold)) static" if kept else "static inline"
    call = f"{plain} {ret} {name}_call({params}) {{\n{body}"
    if kept:
        call += f"__attribute__((noinline)) static {ret} {name}_kept({fast}) {{\n"
        call += f"  if (!({kept})) __builtin_unreachable();  // only called where it holds\n{body}"
        test += f"  if (__builtin_expect({kept}{_apart(sig)}, 1)) return {name}_kept({args});\n"
    return (
        f"// {spec.pythran} -> {sig.text}\n"
        f"{call}"
        f"{asking}{short}CAPSULES_ENTRY {ret} {name}({params}) {{\n"
        f"{test}{pad}"
        f"  return {name}_call({args});\n}}\n{end_short}"
        f"{_kind(spec)}"
    )


def _kept_promises(sig: Signature) -> tuple[str, str]:
    """SciPy's promises on the arguments as a C condition, and the parameters of the path where they hold.

    On that path (a function of its own, called when the promises hold
    and SciPy's buffers share no byte) the compiler reads the kernel
    knowing, for example, that a generic_filter1d window holds at least
    one point and that the output line is not the input line: a loop
    over a window then runs at least once, and the loop over the line
    computes several windows at a time in vector registers, each summed
    in the kernel's own order (bit for bit the same results,
    benchmarks/RESULTS.md, W4).  A call that breaks them (from C code
    other than SciPy's) takes the plain path: nothing is assumed where it
    does not hold.  ``("", "")`` for a form without promises.
    """
    if not sig.form.ranges:
        return "", ""
    args = [f"a{i}" for i in range(len(sig.form.args))]
    kept = " && ".join(f"({condition.format(*args)})" for condition in sig.form.ranges)
    buffers = _buffers(sig)
    fast = ", ".join(
        f"{_c_param(c)}{' __restrict' if i in buffers else ''} a{i}" for i, c in enumerate(sig.form.args)
    )
    return kept, fast


def _buffers(sig: Signature) -> dict[int, str]:
    """SciPy's own buffers (the pointers it passes, but user_data) and their lengths, when there are two or more.

    Each is SciPy's memory, which nothing else the kernel reaches shares:
    once the entry point has checked that they do not overlap, each is
    ``__restrict`` on the path where SciPy's promises hold.  (user_data is
    capsules' copy when it comes through ``lowlevel()``; a direct call
    with user_data inside a buffer is outside the contract, docs/errors.md.)
    """
    lengths = {i: length for i, length in _lengths(sig).items() if i != sig.form.user_data}
    return lengths if len(lengths) > 1 else {}


def _apart(sig: Signature) -> str:
    """`` && `` the C test that SciPy's buffers share no byte, or nothing for fewer than two."""
    buffers = sorted(_buffers(sig).items())
    return "".join(
        f" && capsules_rt::apart(a{i}, {n}, a{j}, {m})"
        for k, (i, n) in enumerate(buffers)
        for j, m in buffers[k + 1 :]
    )


def _asking(name: str, ret: str, params: str, args: str, failed: str) -> str:
    """The cold function an entry point calls when it is time to ask Python for a pending signal or failure."""
    return (
        f"__attribute__((noinline, cold)) static {ret} {name}_asking({params}) {{\n"
        f"  if (capsules_rt::stop_now()) return {failed};\n"
        f"  return {name}_call({args});\n}}\n"
    )


def _asks(spec: ExportSpec, sig: Signature) -> bool:
    """Whether the entry point asks Python, now and then, for a pending Ctrl-C or failure.

    Not for a straight integrand (no loop, nothing called but math, see
    ExportSpec.straight): each of its calls is short, and quad returns to
    Python, which sees a Ctrl-C, after at most a few times 21 x ``limit``
    calls; a failure's NaN ends the integration.  The countdown would cost
    it 1% (a one-line integrand, benchmarks/RESULTS.md).
    """
    return not _straight_integrand(spec, sig)


def _padded(spec: ExportSpec, sig: Signature) -> bool:
    """Whether the entry point reserves unused stack (see CAPSULES_FRAME_PAD): a straight integrand's.

    Not one with a loop: gcc realigned the stack of a vectorized integrand
    whose frame held the pad (nine more instructions on every call).
    """
    return _straight_integrand(spec, sig)


def _straight_integrand(spec: ExportSpec, sig: Signature) -> bool:
    """Whether the kernel is an integrand (quad's forms) with no loop that calls only math (ExportSpec.straight)."""
    return sig.form.ret == "double" and spec.straight


def _short_loops(sig: Signature) -> bool:
    """Whether the kernel's loops are short: a generic_filter footprint (see CAPSULES_SHORT_LOOPS)."""
    return "generic_filter" in sig.form.targets


def _due(sig: Signature) -> str:
    if "geometric_transform" in sig.form.targets:  # a0: the output coordinates, a2: their rank
        return "capsules_rt::due_at_row(a0, a2)"
    return "capsules_rt::due()"


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _params(sig: Signature) -> str:
    """The entry point's parameter list: SciPy's C types, named a0, a1, ..."""
    return ", ".join(f"{_c_param(c)} a{i}" for i, c in enumerate(sig.form.args))


def _c_param(c: str) -> str:
    return c.replace(" *", "*")


def _lengths(sig: Signature) -> dict[int, str]:
    """How many items each pointer argument holds, as C++ expressions of the entry point's arguments."""
    args = [f"static_cast<long>(a{i})" for i in range(len(sig.form.args))]
    lengths = {i: length.format(*args) for i, length in enumerate(sig.form.lengths) if length is not None}
    if sig.form.user_data is not None:
        lengths[sig.form.user_data] = f"capsules_rt::user_data_items(a{sig.form.user_data})"
    return lengths


def _convert(cxx: str, i: int, length: str | None = None, name: str = "") -> str:
    if cxx.startswith("pythonic::types::pointer<"):
        inner = cxx[len("pythonic::types::pointer<") : -1]
        if length is None:
            return f"{cxx}{{reinterpret_cast<{inner}*>(a{i})}}"
        return f"{cxx}{{reinterpret_cast<{inner}*>(a{i}), {length}, {_c_string(name)}}}"
    return f"static_cast<{cxx}>(a{i})"


def _exports_function(exports: list[tuple[ExportSpec, Signature]]) -> str:
    items = "".join("(sNs)" for _ in exports)
    args = "".join(
        f',\n      "{spec.name}", PyCapsule_New(reinterpret_cast<void*>(&{entry_name(spec.name)}), '
        f'"{sig.text}", nullptr), {entry_name(spec.name)}_kind()'
        for spec, sig in exports
    )
    return (
        f'extern "C" __attribute__((visibility("default"))) PyObject *{EXPORTS_SYMBOL}(void) {{\n'
        f'  return Py_BuildValue("({items})"{args});\n}}\n'
    )
