"""Parse libsae's public headers into plain Python data for the binding generators.

The umbrella header include/sae/sae.h is run through the C preprocessor with the
attribute macros defined away (SAE_API, SAE_NODISCARD, ...) and with stand-in
<stdint.h>/<stddef.h>, exactly as an FFI would see it, and parsed with pycparser (the
parser cffi itself uses). Used by bindings/python/tools/gen_capi.py,
bindings/julia/gen_julia.py and the Python tests.
"""
import os
import re
import shutil
import subprocess
import tempfile

from pycparser import c_ast, c_parser

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
INCLUDE = os.path.join(ROOT, "include")

# Macros the header keeps overridable so that FFI parsers see plain C.
ATTRIBUTE_MACROS = ["SAE_API", "SAE_NODISCARD", "SAE_DEPRECATED(x)"]

FIXED_WIDTH = {
    "int8_t": "signed char", "uint8_t": "unsigned char",
    "int16_t": "short", "uint16_t": "unsigned short",
    "int32_t": "int", "uint32_t": "unsigned int",
    "int64_t": "long long", "uint64_t": "unsigned long long",
    "size_t": "unsigned long", "uintptr_t": "unsigned long", "intptr_t": "long",
}


def preprocess(include_dir=INCLUDE, cc=None):
    """The public header as an FFI sees it: preprocessed, attributes removed, no system
    headers (fixed-width types are left as names, which cffi knows natively)."""
    cc = cc or os.environ.get("CC") or shutil.which("cc") or "gcc"
    with tempfile.TemporaryDirectory() as stub:
        for name in ("stdint.h", "stddef.h", "stdbool.h"):
            open(os.path.join(stub, name), "w").close()
        cmd = [cc, "-E", "-P", "-nostdinc", "-I", stub, "-I", include_dir,
               "-U__GNUC__"]
        cmd += ["-D%s=" % m for m in ATTRIBUTE_MACROS]
        cmd += [os.path.join(include_dir, "sae", "sae.h")]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout
    return "\n".join(line for line in out.splitlines() if line.strip()) + "\n"


class Param:
    def __init__(self, name, ctype):
        self.name = name   # may be None
        self.ctype = ctype  # e.g. "int64_t", "float *", "const char *", "sae_toy **"

    def __repr__(self):
        return "%s %s" % (self.ctype, self.name)


class Function:
    def __init__(self, name, restype, params, header):
        self.name = name
        self.restype = restype
        self.params = params
        self.header = header

    def __repr__(self):
        return "%s %s(%s)" % (self.restype, self.name, ", ".join(map(repr, self.params)))


def _type_string(node):
    """A normalised C spelling of a pycparser type node ("const float *")."""
    if isinstance(node, c_ast.PtrDecl):
        inner = _type_string(node.type)
        quals = " const" if "const" in node.quals else ""
        return inner + " *" + quals if not inner.endswith("*") else inner + "*" + quals
    if isinstance(node, c_ast.TypeDecl):
        quals = "const " if "const" in node.quals else ""
        t = node.type
        if isinstance(t, c_ast.IdentifierType):
            return quals + " ".join(t.names)
        if isinstance(t, c_ast.Struct):
            return quals + "struct " + t.name
        if isinstance(t, c_ast.Enum):
            return quals + "enum " + t.name
    if isinstance(node, c_ast.FuncDecl):
        return "function"
    raise ValueError("unsupported type node %r" % node)


def _which_header(name, sources):
    for header, text in sources.items():
        if re.search(r"\b%s\s*\(" % re.escape(name), text):
            return header
    return None


def parse(include_dir=INCLUDE, cc=None):
    """Returns (functions, enums, callbacks): functions in header order; enums as
    {enum type name: [(constant, value), ...]}; callbacks as {typedef: Function}."""
    text = preprocess(include_dir, cc)
    prelude = "".join("typedef %s %s;\n" % (c, n) for n, c in FIXED_WIDTH.items())
    ast = c_parser.CParser().parse(prelude + text, filename="sae.h")
    sources = {}
    hdir = os.path.join(include_dir, "sae")
    for fn in sorted(os.listdir(hdir)):
        if fn.endswith(".h"):
            with open(os.path.join(hdir, fn)) as fh:
                sources[fn] = fh.read()

    functions, enums, callbacks = [], {}, {}
    for decl in ast.ext:
        if isinstance(decl, c_ast.Typedef):
            if decl.name in FIXED_WIDTH:
                continue
            t = decl.type
            if isinstance(t, c_ast.TypeDecl) and isinstance(t.type, c_ast.Enum) and t.type.values:
                enums[decl.name] = _enum_values(t.type)
            elif isinstance(t, c_ast.PtrDecl) and isinstance(t.type, c_ast.FuncDecl):
                callbacks[decl.name] = _function(decl.name, t.type, None)
        elif isinstance(decl, c_ast.Decl) and isinstance(decl.type, c_ast.FuncDecl):
            functions.append(_function(decl.name, decl.type, _which_header(decl.name, sources)))
        elif isinstance(decl, c_ast.Decl) and isinstance(decl.type, c_ast.Enum) and decl.type.values:
            enums[decl.type.name] = _enum_values(decl.type)
    return functions, enums, callbacks


def _function(name, fdecl, header):
    params = []
    if fdecl.args is not None:
        for p in fdecl.args.params:
            if isinstance(p, c_ast.EllipsisParam):
                raise ValueError("%s: varargs are not FFI-friendly" % name)
            ctype = _type_string(p.type)
            if ctype == "void":
                continue
            params.append(Param(p.name, ctype))
    return Function(name, _type_string(fdecl.type), params, header)


def _enum_values(enum):
    values, nxt = [], 0
    for e in enum.values.enumerators:
        if e.value is not None:
            nxt = _const_int(e.value)
        values.append((e.name, nxt))
        nxt += 1
    return values


def _const_int(node):
    if isinstance(node, c_ast.Constant):
        return int(node.value.rstrip("uUlL"), 0)
    if isinstance(node, c_ast.UnaryOp) and node.op == "-":
        return -_const_int(node.expr)
    if isinstance(node, c_ast.UnaryOp) and node.op == "+":
        return _const_int(node.expr)
    if isinstance(node, c_ast.BinaryOp):
        a, b = _const_int(node.left), _const_int(node.right)
        return {"+": a + b, "-": a - b, "*": a * b, "<<": a << b, "|": a | b}[node.op]
    raise ValueError("enum value not a constant expression: %r" % node)


def version_macros(include_dir=INCLUDE):
    with open(os.path.join(include_dir, "sae", "core.h")) as fh:
        text = fh.read()
    return tuple(int(re.search(r"#define SAE_VERSION_%s (\d+)" % part, text).group(1))
                 for part in ("MAJOR", "MINOR", "PATCH"))


def write_generated(path, text, argv):
    """Write a generated file, or with --check in argv exit 1 when `path` differs."""
    import sys
    if "--check" in argv:
        with open(path) as fh:
            sys.exit(0 if fh.read() == text else 1)
    with open(path, "w") as fh:
        fh.write(text)
    print("wrote", os.path.relpath(path))
