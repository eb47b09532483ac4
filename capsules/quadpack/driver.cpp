// capsules.nquad's compiled driver: every level of an nquad integral, with the GIL released.
//
// Called through ctypes.CDLL, which releases the GIL for the whole call; it
// takes the GIL back only when it must: when the integrand or a bound
// returns NaN (a capsules kernel that raised returns NaN with the exception
// pending), and now and then to let Python run its signal handlers, so that
// Ctrl-C stops a long integral.  A pending exception ends the integral: it
// is fetched here and raised in Python by capsules_nquad_restore, called
// through ctypes.PyDLL (which raises what is pending when it returns).
//
// -DCAPSULES_NQUAD_INTEGRAND=f compiles the integrand f, of the form
// double (int, double *, void *) and defined before this file (-include),
// into the driver in place of the calls through the pointer, so that the
// compiler can inline it: benchmarks/nquad.py measures what that gains.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdint>
#include <cstring>
#include <ctime>
#include <new>

#include "quadpack.hpp"

extern "C" {

// How a bound of a range is given: a constant, or a function of the outer
// variables (and the arguments).  nidx < 0: called with every value
// after the level's own variable, as nquad calls a range function;
// otherwise with the values at idx[0..nidx) (dblquad's and tplquad's orders).
struct capsules_nquad_bound {
  double value;
  void *function;  // null for a constant
  void *user_data;
  int32_t form;    // 0: double (int, double *, void *); 1: double (int, double *)
  int32_t nidx;
  const int32_t *idx;
};

struct capsules_nquad_level {
  capsules_nquad_bound lo, hi;
  double epsabs, epsrel;
  int32_t limit;
};

// One integral: what to integrate, and (outputs) what came of it.
struct capsules_nquad_problem {
  int32_t ndim;         // levels[0] is the innermost (the first variable)
  int32_t nargs;        // values after the variables: nquad's args
  int32_t form;         // the integrand's form: 0 (int, double *, void *), 1 (int, double *), 2 (double, void *), 3 (double)
  int32_t main_thread;  // whether to run Python's signal handlers (only the main thread can)
  int32_t empty_is_zero;  // whether an empty range is 0 without a call, as the installed SciPy's quad does
  void *function;
  void *user_data;
  const capsules_nquad_level *levels;
  const double *args;
  const char *const *messages;  // [ndim * 6]: the warning of each (level, ier), for the inner-levels capsule
  // outputs
  double value, abserr;
  int64_t neval;
  int32_t status;  // 0 done; 1 an exception is held in error_*; 2 out of memory
  int32_t norder;
  int64_t *ier_counts;  // [ndim * 6]: quad calls that ended with each ier, by level
  int32_t *order;       // [ndim * 6]: level * 6 + ier, in the order each first happened
  PyObject *error_type, *error_value, *error_traceback;
};
}

namespace {

using namespace capsules_quadpack;

struct Abort {};  // a Python exception is pending: unwind the levels

// The state of one integral: the values the integrand sees, a workspace per level, the flags.
class Run {
 public:
  Run(const capsules_nquad_problem &p, const double *tail, int ntail)
      : counts_(6 * p.ndim, 0), p_(p), ntail_(ntail), x_(p.ndim + ntail), scratch_(p.ndim + ntail) {
    for (int k = 0; k < p.ndim; ++k) spaces_.emplace_back(p.levels[k].limit);
    std::copy(tail, tail + ntail, x_.begin() + p.ndim);
    clock_gettime(CLOCK_MONOTONIC_COARSE, &checked_);
  }

  template <int Form> double integral() { return level<Form>(p_.ndim - 1); }

  double abserr = 0.0;
  long long neval = 0;
  std::vector<int64_t> counts_;
  std::vector<int32_t> order;
  PyObject *error[3] = {nullptr, nullptr, nullptr};

 private:
  // The integral over variables 0..k, the others fixed in x_.
  template <int Form> double level(int k) {
    const capsules_nquad_level &lv = p_.levels[k];
    double a = bound(lv.lo, k), b = bound(lv.hi, k);
    Result r;
    if (k == 0) {
      auto f = [this](double x) { return integrand<Form>(x); };
      r = quad(f, a, b, lv.epsabs, lv.epsrel, lv.limit, spaces_[0], p_.empty_is_zero != 0);
      neval += r.neval;
    } else {
      auto f = [this, k](double x) {
        x_[k] = x;
        return level<Form>(k - 1);
      };
      r = quad(f, a, b, lv.epsabs, lv.epsrel, lv.limit, spaces_[k], p_.empty_is_zero != 0);
    }
    if (r.abserr > abserr) abserr = r.abserr;  // Python's max(): a NaN never replaces
    if (r.ier != 0) flag(k, r.ier);
    return r.value;
  }

  template <int Form> double integrand(double x) {
    x_[0] = x;
    double v;
    int n = static_cast<int>(x_.size());
#ifdef CAPSULES_NQUAD_INTEGRAND  // a function compiled in, in place of the pointer: see the top of this file
    if constexpr (Form == 0) v = CAPSULES_NQUAD_INTEGRAND(n, x_.data(), p_.user_data);
#else
    if constexpr (Form == 0) v = reinterpret_cast<double (*)(int, double *, void *)>(p_.function)(n, x_.data(), p_.user_data);
#endif
    if constexpr (Form == 1) v = reinterpret_cast<double (*)(int, double *)>(p_.function)(n, x_.data());
    if constexpr (Form == 2) v = reinterpret_cast<double (*)(double, void *)>(p_.function)(x, p_.user_data);
    if constexpr (Form == 3) v = reinterpret_cast<double (*)(double)>(p_.function)(x);
    if (__builtin_expect(std::isnan(v), 0)) check_pending();
    if (__builtin_expect(--countdown_ == 0, 0)) check_signals();
    return v;
  }

  double bound(const capsules_nquad_bound &b, int k) {
    if (b.function == nullptr) return b.value;
    double *values = x_.data() + k + 1;
    int n = static_cast<int>(x_.size()) - k - 1;
    if (b.nidx >= 0) {
      for (int j = 0; j < b.nidx; ++j) scratch_[j] = x_[b.idx[j]];
      values = scratch_.data();
      n = b.nidx;
    }
    double v = b.form == 0 ? reinterpret_cast<double (*)(int, double *, void *)>(b.function)(n, values, b.user_data)
                           : reinterpret_cast<double (*)(int, double *)>(b.function)(n, values);
    if (std::isnan(v)) check_pending();
    return v;
  }

  void flag(int k, int ier) {
    int code = 6 * k + ier;
    if (counts_[code]++ == 0) order.push_back(code);
  }

  // A NaN: a capsules kernel that raised says so with NaN and a pending exception.
  void check_pending() {
    PyGILState_STATE gil = PyGILState_Ensure();
    bool pending = PyErr_Occurred() != nullptr;
    if (pending) PyErr_Fetch(&error[0], &error[1], &error[2]);
    PyGILState_Release(gil);
    if (pending) throw Abort{};
  }

  // Every 1024 evaluations, a look at a coarse clock (a few nanoseconds); at
  // most every 20 ms, Python's signal handlers run (Ctrl-C raises there).
  void check_signals() {
    countdown_ = 1024;
    if (!p_.main_thread) return;
    timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    long long ms = (now.tv_sec - checked_.tv_sec) * 1000LL + (now.tv_nsec - checked_.tv_nsec) / 1000000;
    if (ms < 20) return;
    checked_ = now;
    PyGILState_STATE gil = PyGILState_Ensure();
    bool raised = PyErr_CheckSignals() != 0;
    if (raised) PyErr_Fetch(&error[0], &error[1], &error[2]);
    PyGILState_Release(gil);
    if (raised) throw Abort{};
  }

  const capsules_nquad_problem &p_;
  int ntail_;
  std::vector<double> x_, scratch_;
  std::vector<Workspace> spaces_;
  int countdown_ = 1024;
  timespec checked_;
};

double integrate(Run &run, int form) {
  switch (form) {
    case 0: return run.integral<0>();
    case 1: return run.integral<1>();
    case 2: return run.integral<2>();
    default: return run.integral<3>();
  }
}

}  // namespace

extern "C" {

// capsules.nquad: the whole integral, results and flags into *p.  Returns p->status.
int32_t capsules_nquad(capsules_nquad_problem *p) {
  p->status = 0;
  try {
    Run run(*p, p->args, p->nargs);
    try {
      p->value = integrate(run, p->form);
    } catch (Abort &) {
      p->error_type = run.error[0];
      p->error_value = run.error[1];
      p->error_traceback = run.error[2];
      p->status = 1;
    }
    p->abserr = run.abserr;
    p->neval = run.neval;
    std::copy(run.counts_.begin(), run.counts_.end(), p->ier_counts);
    p->norder = static_cast<int32_t>(run.order.size());
    std::copy(run.order.begin(), run.order.end(), p->order);
  } catch (std::bad_alloc &) {
    p->status = 2;
  }
  return p->status;
}

// Raise the exception capsules_nquad held (call through ctypes.PyDLL, with the GIL).
int32_t capsules_nquad_restore(capsules_nquad_problem *p) {
  if (p->error_type == nullptr) return 0;
  PyErr_Restore(p->error_type, p->error_value, p->error_traceback);
  p->error_type = p->error_value = p->error_traceback = nullptr;
  return -1;
}

// The inner levels as an integrand: a scipy LowLevelCallable
// double (int, double *, void *) whose user_data is the problem of the inner
// levels (nargs 0); the values SciPy passes (the outer variables, then
// quad's args) follow the inner variables.  Warnings are issued here, one per
// message and call; an exception is left pending, with NaN returned, as a
// capsules kernel does.
double capsules_nquad_inner(int n, double *xx, void *user_data) {
  const capsules_nquad_problem &p = *static_cast<const capsules_nquad_problem *>(user_data);
  try {
    Run run(p, xx, n);
    double value;
    try {
      value = integrate(run, p.form);
    } catch (Abort &) {
      PyGILState_STATE gil = PyGILState_Ensure();
      PyErr_Restore(run.error[0], run.error[1], run.error[2]);
      PyGILState_Release(gil);
      return std::numeric_limits<double>::quiet_NaN();
    }
    if (run.order.empty()) return value;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *module = PyImport_ImportModule("scipy.integrate");
    PyObject *category = module ? PyObject_GetAttrString(module, "IntegrationWarning") : nullptr;
    bool failed = category == nullptr;
    for (size_t i = 0; i < run.order.size() && !failed; ++i) {
      const char *message = p.messages[run.order[i]];
      bool repeated = false;
      for (size_t j = 0; j < i; ++j) repeated = repeated || std::strcmp(p.messages[run.order[j]], message) == 0;
      if (!repeated) failed = PyErr_WarnEx(category, message, 1) < 0;
    }
    Py_XDECREF(category);
    Py_XDECREF(module);
    PyGILState_Release(gil);
    return failed ? std::numeric_limits<double>::quiet_NaN() : value;
  } catch (std::bad_alloc &) {
    PyGILState_STATE gil = PyGILState_Ensure();
    PyErr_NoMemory();
    PyGILState_Release(gil);
    return std::numeric_limits<double>::quiet_NaN();
  }
}
}
