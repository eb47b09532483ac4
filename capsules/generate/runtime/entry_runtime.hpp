// capsules runtime: what the entry points with SciPy's C signatures share.
//
// Goes after pythran's C++ (which includes what it needs of pythran: see
// NEEDS in capsules/generate/runtime.py) and part.hpp, before the entry
// points (capsules/generate/entry.cpp.in).  It turns a kernel's C++ exception into
// a located Python KernelError, converts its result to what SciPy reads,
// and stops SciPy's loops on Ctrl-C or a failure.
#ifndef CAPSULES_ENTRY_RUNTIME_HPP
#define CAPSULES_ENTRY_RUNTIME_HPP
#include <atomic>
#include <complex>
#include <cstdint>
#include <new>
#include <limits>
#include <type_traits>
PYTHONIC_NS_BEGIN
namespace types { class str; }  // declared here for kind(), whether or not the kernel uses strings
PYTHONIC_NS_END
// A generic_filter kernel sees one footprint per call, typically 9 to 49
// values: its loops are short, and 256-bit vectors suit them better than
// the 512-bit ones gcc would pick on some CPUs; lines (generic_filter1d) are
// long, and do not.  So the choice is made per entry point, which the kernel
// is inlined into (measured in benchmarks/RESULTS.md).  The order of every
// operation is kept, so no result changes.
// -DCAPSULES_NO_SHORT_LOOPS leaves the choice to gcc.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(CAPSULES_NO_SHORT_LOOPS)
#define CAPSULES_SHORT_LOOPS _Pragma("GCC push_options") _Pragma("GCC target(\"prefer-vector-width=256\")")
#define CAPSULES_END_SHORT_LOOPS _Pragma("GCC pop_options")
#else
#define CAPSULES_SHORT_LOOPS
#define CAPSULES_END_SHORT_LOOPS
#endif
// An integrand of many variables reads x, into which its caller (SciPy's
// nquad, or capsules.nquad's driver) has just stored a value with an
// 8-byte store.  A vector load of x[0..1] or x[0..3] cannot take that value
// from the store, and waits for it to reach the cache: for a small integrand
// that wait cost as much as the rest of the call, in hand-written C as much
// as here (benchmarks/NQUAD.md).  So an entry point that reads x is compiled
// without the vectorizer, which the kernel is inlined into: x is read a
// value at a time, as it was stored.  No result changes (no operation is
// reordered either way).  -DCAPSULES_VECTOR_INTEGRANDS leaves it to gcc.
#if defined(__GNUC__) && !defined(__clang__) && !defined(CAPSULES_VECTOR_INTEGRANDS)
#define CAPSULES_SCALAR_LOADS _Pragma("GCC push_options") _Pragma("GCC optimize(\"no-tree-vectorize\")")
#define CAPSULES_END_SCALAR_LOADS _Pragma("GCC pop_options")
#else
#define CAPSULES_SCALAR_LOADS
#define CAPSULES_END_SCALAR_LOADS
#endif
// SciPy's quad calls an integrand from a thunk that restores five saved
// registers and jumps to it: the integrand's frame lies on the slots the
// thunk saved them in, and a small frame there ran much slower than a
// larger one (benchmarks/RESULTS.md, benchmarks/w1_frames.py).  A straight
// integrand's entry point (no loop, so no vector code for which the stack
// would be realigned) reserves 40 unused bytes, which no instruction
// touches: its frame is then 0 where it calls nothing, and 56 bytes or more
// where it does.
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
// (no locked instruction) that a failure marks to ask at every call.  A
// straight integrand (no loop, nothing called but math) never asks: its
// calls are short, and quad soon returns to Python (see capsules/generate/entries.py).
//
// SciPy's ndimage functions hold the GIL while they call, so their kernels
// share one counter.  Integrands are also called by capsules.nquad, which
// releases the GIL and so runs in several threads at once: one counter that
// every call writes would move its cache line from core to core at each call
// (a two-thread sweep then ran slower than one thread: benchmarks/NQUAD.md).
// Theirs is one of 64, each on a cache line of its own, picked by the thread
// pointer, which the ABI keeps in a register: a thread_local would cost a
// call to __tls_get_addr in a module loaded by dlopen (and the initial-exec
// model can exhaust the static TLS of a process that loads many modules).
// Two threads that land on the same counter only share its cache line.
inline std::atomic<int> countdown{256};
struct alignas(64) Countdown {
  std::atomic<int> left{256};
};
inline Countdown countdowns[64];
inline std::atomic<int> &thread_countdown() {
  std::uintptr_t thread = 0;  // elsewhere: one counter for every thread, as ndimage's kernels share
#if defined(__linux__) && defined(__x86_64__)
  asm("mov %%fs:0, %0" : "=r"(thread));  // the TCB's first word points to itself
#elif defined(__linux__) && defined(__aarch64__)
  asm("mrs %0, tpidr_el0" : "=r"(thread));
#endif
  return countdowns[((thread >> 12) * 0x9E3779B97F4A7C15ull) >> 58].left;
}
// Python runs signal handlers in its main thread only, so elsewhere the
// periodic look finds nothing a failure has not marked: another thread
// skips it, and takes no GIL (capsules.nquad's threads, which run with the
// GIL released, would otherwise queue for it at every 256th call).  A
// failure marks the counter below zero (fail()), and is looked at in any
// thread.  The main thread is learnt when capsules reads the module's
// exports; until then, every thread looks.
inline unsigned long main_thread = 0;
inline void remember_main_thread() {
  if (main_thread != 0) return;
  PyObject *threading = PyImport_ImportModule("threading");
  PyObject *main = threading ? PyObject_CallMethod(threading, "main_thread", nullptr) : nullptr;
  PyObject *ident = main ? PyObject_GetAttrString(main, "ident") : nullptr;
  unsigned long value = ident ? PyLong_AsUnsignedLong(ident) : 0;
  Py_XDECREF(ident);
  Py_XDECREF(main);
  Py_XDECREF(threading);
  if (PyErr_Occurred()) PyErr_Clear();  // not learnt: every thread keeps looking
  else main_thread = value;
}
inline bool stop_now(std::atomic<int> &count) {
  bool marked = count.load(std::memory_order_relaxed) < 0;
  if (!marked && main_thread != 0 && PyThread_get_thread_ident() != main_thread) {
    count.store(256, std::memory_order_relaxed);
    return false;
  }
  PyGILState_STATE gil = PyGILState_Ensure();
  bool stop = PyErr_Occurred() != nullptr || PyErr_CheckSignals() != 0;
  PyGILState_Release(gil);
  count.store(stop ? -1 : 256, std::memory_order_relaxed);  // while one is pending, look at every call
  return stop;
}
// Whether it is time to ask: the test on the hot path.  The asking itself
// happens in a separate cold function, so that the hot path stays a leaf
// (no registers to save for a call that almost never happens).
inline bool due(std::atomic<int> &count) {
  int left = count.load(std::memory_order_relaxed) - 1;
  count.store(left, std::memory_order_relaxed);
  return left <= 0;
}
inline bool due_at_row(const npy_intp *out_coords, int rank) {
  return rank > 0 && out_coords[rank - 1] == 0;
}
template <class T> T fail(T value) {
  countdown.store(-1, std::memory_order_relaxed);
  thread_countdown().store(-1, std::memory_order_relaxed);
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
// Pythran's handler gives an exception its arguments as its tuple prints,
// "(x too big)": the exception Python would raise has "x too big".  Called
// with the GIL held; steals `value`, returns the exception to raise.
inline PyObject *unwrapped(PyObject *type, PyObject *value) {
  PyObject *args = PyObject_GetAttrString(value, "args");
  PyObject *text = args && PyTuple_Check(args) && PyTuple_GET_SIZE(args) == 1 ? PyTuple_GET_ITEM(args, 0) : nullptr;
  Py_ssize_t n = text && PyUnicode_Check(text) ? PyUnicode_GetLength(text) : 0;
  PyObject *plain = nullptr;
  if (n >= 2 && PyUnicode_ReadChar(text, 0) == '(' && PyUnicode_ReadChar(text, n - 1) == ')') {
    PyObject *inner = PyUnicode_Substring(text, 1, n - 1);
    plain = inner ? PyObject_CallOneArg(type, inner) : nullptr;
    Py_XDECREF(inner);
  }
  Py_XDECREF(args);
  PyErr_Clear();  // whatever failed above, the exception pythran gave still stands
  if (!plain) return value;
  Py_DECREF(value);
  return plain;
}

inline void raise_from_kernel(const char *where) {
  PyGILState_STATE gil = PyGILState_Ensure();
  if (!PyErr_Occurred()) {
    bool from_pythran = false;
    pythonic::handle_python_exception([&from_pythran]() -> PyObject * {
      try {
        throw;
#ifdef PYTHONIC_INCLUDE_TYPES_EXCEPTIONS_HPP
      // pythran's own exceptions: its handler maps them to Python's.  Only a
      // module whose code included their header can throw them; the others
      // are spared parsing it.
      } catch (pythonic::types::BaseException const &) {
        from_pythran = true;
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
    if (from_pythran && value) value = unwrapped(type, value);
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
#endif  // CAPSULES_ENTRY_RUNTIME_HPP
