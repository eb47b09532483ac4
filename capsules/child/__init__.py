"""The compiler process a build runs in: pythran's C++ generation and the compiler calls.

Run as ``python -I .../capsules/child/__main__.py --serve [PYTHRAN_DIR]``
(what ``capsules.workers`` starts), it imports pythran at once, so that the
import overlaps the parent's work, and then forks a process for each build
request it reads from stdin (:mod:`server`); without ``--serve``, it runs
the one build its stdin describes (:mod:`job`).  A build split into parts
forks again, a process per part, to generate each part's C++ side by side
(:mod:`cxx`).  :mod:`commands` calls the compiler, :mod:`early` starts a
compile before the C++ is whole, :mod:`pch` keeps precompiled headers.
:mod:`protocol` is what the build and this process agree on.

The process depends on nothing but the request: isolated mode (``-I``)
keeps the current directory, ``PYTHON*`` variables and user site-packages
off ``sys.path``.  This folder imports nothing from capsules: ``__main__.py``
loads it as a package of its own, by its path, so a ``capsules/`` folder in
the current directory cannot shadow it.
"""
