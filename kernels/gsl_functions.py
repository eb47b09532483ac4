"""Functions of one variable for C libraries that take ``double f(double x, void *params)``.

The GNU Scientific Library's ``gsl_function`` is exactly this pair: a function
pointer and a ``params`` pointer handed back on every call.  SciPy's ``quad``
accepts the same signature (``double (double, void *)``), so each kernel here
serves both.  ``capsules.gsl.gsl_function(kernel, user_data)`` wraps one for
GSL; the user_data layout each kernel reads is in its docstring (its
``user_data:`` line), as everywhere in kernels/.
"""

import math


#pythran export capsule quadratic(float64, float64*)
def quadratic(x, user_data):
    """Quadratic: f(x) = c_0 + c_1 x + c_2 x^2.

    user_data: [c_0, c_1, c_2].

    The derivative is c_1 + 2 c_2 x; the
    integral over [a, b] is c_0 (b - a) + c_1 (b^2 - a^2) / 2 + c_2 (b^3 - a^3) / 3.
    """
    return user_data[0] + x * (user_data[1] + x * user_data[2])


# x > 0 and alpha > 0, their product a normal float (at 0 Python's log raises, C's gives -inf)
#capsules verify x=1e-150:1e150 user_data=1e-150:1e150
#pythran export capsule log_over_sqrt(float64, float64*)
def log_over_sqrt(x, user_data):
    """Log over square root: f(x) = log(alpha x) / sqrt(x), for x > 0.

    user_data: [alpha], alpha > 0.

    Singular at x = 0, yet integrable: the
    integral over [0, 1] is 2 log(alpha) - 4 (GSL's own qags example).
    """
    return math.log(user_data[0] * x) / math.sqrt(x)


# x >= 0 and k >= 0, w x finite: sin of an infinite argument raises in Python
#capsules verify x=0:1e6 user_data=0:100
#pythran export capsule damped_sine(float64, float64*)
def damped_sine(x, user_data):
    """Damped sine: f(x) = exp(-k x) sin(w x).

    user_data: [k, w].

    The derivative is exp(-k x) (w cos(w x) - k sin(w x));
    the integral over [0, inf) is w / (k^2 + w^2) for k > 0.
    """
    return math.exp(-user_data[0] * x) * math.sin(user_data[1] * x)
