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

import math
import os
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


def _plain_dtype(spec, align=False, copy=False):
    """``numpy.dtype`` for a type code only ('<f4', 'O8', 'S17', ...): no fields, no subarray."""
    if not isinstance(spec, (str, bytes)):
        raise pickle.UnpicklingError(f"a dtype built from {type(spec).__name__} (refused: only plain type codes)")
    return np.dtype(spec.decode("latin1") if isinstance(spec, bytes) else spec, align=bool(align))


# what a pickle may call (numpy.ndarray may be named, as _reconstruct's first argument, but not called)
_CALLABLE = (_plain_dtype, _latin1_encode, _multiarray._reconstruct, _multiarray.scalar, _numeric._frombuffer)


class _ArrayUnpickler(pickle._Unpickler):
    """Builds arrays, plain dtypes, scalars and plain Python values; refuses every other global.

    The pure-Python unpickler, so that each step can be checked. NumPy itself trusts a pickle's
    arguments: ``ndarray(shape, object, buffer)`` or an array state of object dtype with raw bytes
    turns the bytes into object pointers, and a dtype state may place object fields anywhere; any
    of these would crash the process or worse. So: only the allowed functions are called (never
    ``ndarray`` itself, never ``cls.__new__``), an array's state must match its dtype (a list for
    object arrays, bytes otherwise), and a dtype's state may add no fields and no subarray.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def load_reduce(self):
        func, args = self.stack[-2], self.stack[-1]
        if func not in _CALLABLE or not isinstance(args, tuple):
            raise pickle.UnpicklingError(f"calls {getattr(func, '__name__', type(func).__name__)} (refused)")
        if func is _multiarray._reconstruct and (not args or args[0] is not np.ndarray):
            raise pickle.UnpicklingError("reconstructs something other than a plain ndarray (refused)")
        super().load_reduce()

    def load_build(self):
        state, target = self.stack[-1], self.stack[-2]
        if isinstance(target, np.dtype):
            if not (isinstance(state, tuple) and len(state) >= 5 and state[2] is None and state[3] is None and state[4] is None):
                raise pickle.UnpicklingError("a dtype with fields or a subarray (refused)")
        elif type(target) is np.ndarray:
            if not (isinstance(state, tuple) and len(state) in (4, 5) and isinstance(state[-3], np.dtype)):
                raise pickle.UnpicklingError("an array state of an unknown form (refused)")
            dtype, data = state[-3], state[-1]
            if dtype.hasobject != isinstance(data, list) or not isinstance(data, (list, bytes, bytearray)):
                raise pickle.UnpicklingError("an array whose data does not match its dtype (refused)")
        else:
            raise pickle.UnpicklingError(f"sets the state of a {type(target).__name__} (refused)")
        super().load_build()

    def _refuse(self):
        raise pickle.UnpicklingError("creates an instance of a class (refused)")

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.BUILD[0]] = load_build
    for _opcode in (pickle.NEWOBJ, pickle.NEWOBJ_EX, pickle.OBJ, pickle.INST):
        dispatch[_opcode[0]] = _refuse
    del _opcode

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if (module, name) == ("numpy", "dtype"):
            return _plain_dtype
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
        handle = open(path, "rb")  # read as a stream: a W-TALC feature file is gigabytes, held once
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", file=path) from None
    with handle:
        try:
            shape, fortran_order, dtype = _read_header(handle, path)
        except InputError:
            raise
        except Exception as exc:  # ValueError for a bad magic string or header, EOFError, SyntaxError in the header
            raise InputError(f"not a .npy array file ({_first_line(exc)})", file=path) from None
        body_bytes = os.fstat(handle.fileno()).st_size - handle.tell()
        if not dtype.hasobject:
            expected = math.prod(shape) * dtype.itemsize
            if body_bytes != expected:
                raise InputError(f"the header announces {shape} {dtype} ({expected} bytes) but the file holds {body_bytes}", file=path)
            try:
                handle.seek(0)
                return np.load(handle, allow_pickle=False)
            except Exception as exc:
                raise InputError(f"not a readable .npy array file ({_first_line(exc)})", file=path) from None
        try:
            # encoding="bytes": the W-TALC files were written by Python 2, whose str arrives as bytes
            array = _ArrayUnpickler(handle, encoding="bytes").load()
        except Exception as exc:  # a damaged or hostile pickle can raise nearly anything
            raise InputError(f"cannot read the object array ({type(exc).__name__}: {_first_line(exc)})", file=path) from None
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        got = array.shape if isinstance(array, np.ndarray) else type(array).__name__
        raise InputError(f"the header announces an array of shape {shape}, the file holds {got}", file=path)
    return array


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
