# Shared paths for scripts/setup, the Makefile and the kernelspec. Source it.
# Everything expensive lives in a cache outside the clone, so a second clone or a CI
# rerun reuses it.
LAB_CACHE="${LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dl-lab}"
LAB_VENV="$LAB_CACHE/venv"
EVCXR_VERSION="0.22.0"
EVCXR_ROOT="$LAB_CACHE/evcxr-$EVCXR_VERSION"
EVCXR_BIN="$EVCXR_ROOT/bin/evcxr_jupyter"
# evcxr's build folder for notebook cells; kept so cells after the first compile in seconds.
LAB_EVCXR_TMPDIR="$LAB_CACHE/evcxr-tmp"
LIBTORCH="$LAB_VENV/lib/python3.11/site-packages/torch"
KERNEL_NAME="rust-helpers"
export LAB_CACHE LAB_VENV EVCXR_VERSION EVCXR_ROOT EVCXR_BIN LAB_EVCXR_TMPDIR LIBTORCH KERNEL_NAME
