"""C signatures as the core takes them ("double(double,int32_t)"), as numpy dtypes: the
argument record is the C struct of the arguments in order (natural alignment), which is
numpy's structured dtype with align=True."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_TYPES = {
    "int8_t": "i1", "int16_t": "i2", "int32_t": "i4", "int64_t": "i8",
    "uint8_t": "u1", "uint16_t": "u2", "uint32_t": "u4", "uint64_t": "u8",
    "float": "f4", "double": "f8",
    "i8": "i1", "i16": "i2", "i32": "i4", "i64": "i8",
    "u8": "u1", "u16": "u2", "u32": "u4", "u64": "u8",
    "f32": "f4", "f64": "f8", "int": "i4", "long": "i8", "size_t": "u8",
}


@dataclass(frozen=True)
class Signature:
    text: str
    args: tuple  # numpy dtypes, one per argument
    result: object  # numpy dtype, or None for void

    @property
    def record(self) -> np.dtype:
        """One task's argument record: the C struct of the arguments."""
        return np.dtype([(f"a{i}", t) for i, t in enumerate(self.args)], align=True)


def parse(text: str) -> Signature:
    """Parses a scalar signature; raises ValueError with the reason when it is not one."""
    m = re.fullmatch(r"\s*([A-Za-z0-9_]+)\s*\((.*)\)\s*", text)
    if not m:
        raise ValueError(f"not a C signature: {text!r} (expected e.g. 'double(double)')")
    ret, args = m.group(1), [a.strip() for a in m.group(2).split(",") if a.strip()]
    if args == ["void"]:
        args = []
    if any("*" in a for a in args):
        raise ValueError(f"{text!r}: the bytes form (pointer arguments) is not supported by the Python "
                         f"package; use scalar arguments")
    unknown = [a for a in args + ([] if ret == "void" else [ret]) if a not in _TYPES]
    if unknown:
        raise ValueError(f"{text!r}: unknown type {unknown[0]!r}; known: {', '.join(sorted(set(_TYPES)))}")
    if len(args) > 8:
        raise ValueError(f"{text!r}: at most 8 arguments")
    return Signature(text, tuple(np.dtype(_TYPES[a]) for a in args),
                     None if ret == "void" else np.dtype(_TYPES[ret]))
