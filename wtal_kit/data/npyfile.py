"""Reading ``.npy`` files from untrusted sources.

A plain numeric or string ``.npy`` is read with ``allow_pickle=False``. The W-TALC
release also holds *object* arrays (lists of segments, of labels; the pickled
feature file), which NumPy stores as a pickle. Those are unpickled here with an
allow-list: the pickle may build NumPy arrays, dtypes and scalars and Python's
lists, tuples, dicts, strings, bytes and numbers, nothing else. A pickle that
names any other callable (``os.system``, ``builtins.eval``, a class of some
package, ...) is refused before anything is called, so loading one never runs code.

Every failure is one :class:`~wtal_kit.errors.InputError` naming the file.
"""

from __future__ import annotations

import io
import math
import pickle
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from wtal_kit.errors import InputError

try:
    from numpy._core import multiarray as _multiarray, numeric as _numeric  # NumPy 2
except ImportError:  # NumPy 1
    from numpy.core import multiarray as _multiarray, numeric as _numeric

_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")  # how NumPy 1 and NumPy 2 pickles name it
_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(module, "_reconstruct"): _multiarray._reconstruct for module in _NUMPY_MODULES},
    **{(module, "scalar"): _multiarray.scalar for module in _NUMPY_MODULES},
    # pickle protocol 5: an array from its bytes, a dtype and a shape
    **{(module.replace("multiarray", "numeric"), "_frombuffer"): _numeric._frombuffer for module in _NUMPY_MODULES},
}


def _latin1_encode(text, encoding="latin1"):
    """``_codecs.encode`` as Python 3 pickles ``bytes`` at protocol 2: latin-1 only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed for latin-1 text only")
    return text.encode("latin1")


class _ArrayUnpickler(pickle.Unpickler):
    """Builds arrays, dtypes, scalars and plain Python values; refuses every other global."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        raise pickle.UnpicklingError(f"refers to {module}.{name}, which a data array never holds (refused: it could run code)")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("holds a persistent reference (refused)")


def _read_header(handle, path: Path):
    version = npy_format.read_magic(handle)
    if version == (1, 0):
        return npy_format.read_array_header_1_0(handle)
    if version in ((2, 0), (3, 0)):
        return npy_format.read_array_header_2_0(handle)
    raise InputError(f"unsupported .npy format version {version}", file=path)


def load_npy(path) -> np.ndarray:
    """The array of a ``.npy`` file; an object array is unpickled with the allow-list above.

    Raises InputError for anything that is not a well-formed ``.npy`` array file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", file=path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", file=path) from None
    handle = io.BytesIO(data)
    try:
        shape, fortran_order, dtype = _read_header(handle, path)
    except InputError:
        raise
    except Exception as exc:  # ValueError for a bad magic string or header, EOFError, SyntaxError in the header
        raise InputError(f"not a .npy array file ({_first_line(exc)})", file=path) from None
    body = data[handle.tell():]
    if not dtype.hasobject:
        expected = math.prod(shape) * dtype.itemsize
        if len(body) != expected:
            raise InputError(f"the header announces {shape} {dtype} ({expected} bytes) but the file holds {len(body)}", file=path)
        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except Exception as exc:
            raise InputError(f"not a readable .npy array file ({_first_line(exc)})", file=path) from None
    try:
        # encoding="bytes": the W-TALC files were written by Python 2, whose str arrives as bytes
        array = _ArrayUnpickler(io.BytesIO(body), encoding="bytes").load()
    except Exception as exc:  # a damaged or hostile pickle can raise nearly anything
        raise InputError(f"cannot read the object array ({type(exc).__name__}: {_first_line(exc)})", file=path) from None
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        got = array.shape if isinstance(array, np.ndarray) else type(array).__name__
        raise InputError(f"the header announces an array of shape {shape}, the file holds {got}", file=path)
    return array


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
