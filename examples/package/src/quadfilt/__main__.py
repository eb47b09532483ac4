"""python -m quadfilt: run the self-check and say which CPU variant of the kernels runs."""

import quadfilt

for name, error in quadfilt.selfcheck().items():
    print(f"{name:<16} error {error:.1e}")
entry = quadfilt.KERNELS.entry
print(f"ok: prebuilt {entry.level} variant from {entry.directory}")
inline = quadfilt.inline.gauss_cos.module.entry
print(f"ok: inline kernel prebuilt {inline.level} variant from {inline.directory}")
