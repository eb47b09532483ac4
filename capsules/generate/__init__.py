"""Everything capsules writes: the Python pythran compiles beside the user's, and the C++ around pythran's.

A build asks this package twice: :func:`module.scan` for the module pythran
compiles (the user's source, rewritten where a build needs it, and the
natural kernels' adapters), then :func:`entries.source` and
:func:`runtime.prologue` for the C++ that goes after and before pythran's.

=================  ==============================================================
``roles.py``       the roles of natural kernels, one record each: what SciPy
                   provides, the adapter's types and body, the checks, the targets
``adapters.py``    the adapters SciPy calls, written from the role records
``rewrite.py``     pointer twins; division and subscripts that raise
``straight.py``    which kernels are straight (no loop, nothing called but math)
``module.py``      the module a build compiles, from all of the above
``names.py``       the names of what is generated
``entries.py``     the C++ entry points, planned as data
``entry.cpp.in``   the template they are rendered from
``runtime.py``     reads the static C++ of ``runtime/``:
``runtime/*.hpp``  real headers, each compiled and tested on its own
=================  ==============================================================

The package imports nothing from here at import time, so that the grammar
(capsules.natural) can read the role records without a cycle.  Its files,
and the modules of capsules they import, make the generator digest that is
part of every cache key (capsules.key.generator_files).
"""
