__version__ = "0.1.0"

# Bump whenever the generated C++ changes, so that cached binaries rebuild.
GENERATOR = "2"
