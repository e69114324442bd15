#!/usr/bin/env python3
"""Generates Sluice's Kafka message codecs from Kafka's JSON message specs.

Usage:
  gen_codecs.py --specs DIR --out DIR            write the generated files
  gen_codecs.py --specs DIR --list               print the files it would write

Reads every *Request.json and *Response.json in DIR (plus RequestHeader.json
and ResponseHeader.json) and writes, under OUT:
  include/sluice/kafka/msg/<api>.h   the request and response structs of one API
  src/<api>.cc                       their encode/decode
  include/sluice/kafka/msg/headers.h, src/headers.cc
  include/sluice/kafka/msg/api_table.h, src/api_table.cc
  include/sluice/kafka/msg/all.h     every header, plus type visitors (tests)
Files whose content did not change are not rewritten, so the build only
recompiles what changed. Standard library only (Debian's python3 suffices).
See docs/KAFKA-CODEC.md.
"""

import argparse
import json
import os
import re
import sys

MAX_VERSION = 32767
NS = "::sluice::kafka"

CPP_KEYWORDS = set("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
co_return co_yield decltype default delete do double dynamic_cast else enum explicit export extern
false float for friend goto if inline int long mutable namespace new noexcept not not_eq nullptr
operator or or_eq private protected public register reinterpret_cast requires return short signed
sizeof static static_assert static_cast struct switch template this thread_local throw true try
typedef typeid typename union unsigned using virtual void volatile wchar_t while xor xor_eq
""".split())
# Member names every generated struct declares itself.
STRUCT_MEMBERS = {"encode", "decode", "visit_fields", "operator",
                  # locals and parameters of the generated functions
                  "version", "flex", "tag", "r", "w", "d", "v", "s"}
# Extra names a message struct declares.
MESSAGE_MEMBERS = {"api_key", "min_version", "max_version", "flexible_min_version"}
# Names the generated .cc files use unqualified inside the message structs.
RESERVED_TYPES = {"reader", "writer", "detail", "uuid", "records_view", "errc", "std",
                  "sluice", "kafka", "msg"}
# Field renames: (message, field) -> C++ name.
RENAMES = {
    ("RequestHeader", "RequestApiKey"): "api_key",
    ("RequestHeader", "RequestApiVersion"): "api_version",
}

FIXED_TYPES = {
    "bool": "bool", "int8": "int8_t", "int16": "int16_t", "int32": "int32_t",
    "int64": "int64_t", "uint16": "uint16_t", "uint32": "uint32_t", "float64": "double",
    "uuid": NS + "::uuid",
}
VARIABLE_TYPES = {"string", "bytes", "records"}


class SpecError(Exception):
    pass


# ---- JSON with // comments -------------------------------------------------------

def strip_comments(text):
    out = []
    i, n = 0, len(text)
    in_str = False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif c == "/" and i + 1 < n and text[i + 1] == "/":
            while i < n and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def load_spec(path):
    with open(path, encoding="utf-8") as f:
        return json.loads(strip_comments(f.read()))


# ---- names -----------------------------------------------------------------------

def snake(name):
    name = name.replace("KRaft", "Kraft")
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


def api_base(name):
    for suffix in ("Request", "Response"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def cpp_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---- versions --------------------------------------------------------------------

def parse_versions(spec, where):
    """A version spec ("3+", "0-2", "5", "none") as a set of ints."""
    if spec is None or spec == "none":
        return set()
    spec = spec.strip()
    m = re.fullmatch(r"(\d+)\+", spec)
    if m:
        return set(range(int(m.group(1)), MAX_VERSION + 1))
    m = re.fullmatch(r"(\d+)-(\d+)", spec)
    if m:
        return set(range(int(m.group(1)), int(m.group(2)) + 1))
    m = re.fullmatch(r"\d+", spec)
    if m:
        return {int(spec)}
    raise SpecError(f"{where}: bad version spec {spec!r}")


def intervals(vs):
    out = []
    for v in sorted(vs):
        if out and out[-1][1] == v - 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return out


def cond(vs, within, var="version"):
    """A C++ condition that is true for the versions in vs, for a version
    known to be in `within`."""
    vs = vs & within
    if vs == within:
        return "true"
    if not vs:
        return "false"
    lo, hi = min(within), max(within)
    parts = []
    for a, b in intervals(vs):
        # Extend the interval over versions outside `within`: the condition
        # is only evaluated for versions in `within`.
        terms = []
        if a > lo:
            terms.append(f"{var} >= {a}")
        if b < hi:
            terms.append(f"{var} <= {b}")
        if a == b and a > lo and b < hi:
            terms = [f"{var} == {a}"]
        parts.append(" && ".join(terms) if terms else "true")
    if len(parts) == 1:
        return parts[0]
    return " || ".join(f"({p})" for p in parts)


def range_text(vs):
    if not vs:
        return "none"
    parts = []
    for a, b in intervals(vs):
        if b == MAX_VERSION:
            parts.append(f"v{a}+")
        elif a == b:
            parts.append(f"v{a}")
        else:
            parts.append(f"v{a}-{b}")
    return ", ".join(parts)


# ---- model -----------------------------------------------------------------------

class Field:
    def __init__(self, msg, spec, where):
        self.msg = msg
        self.name = spec["name"]
        self.where = f"{where}.{self.name}"
        self.cname = RENAMES.get((msg.name, self.name), snake(self.name))
        self.type = spec["type"]
        self.about = " ".join(spec.get("about", "").split())
        self.versions = parse_versions(spec["versions"], self.where) & msg.valid
        self.nullable = parse_versions(spec.get("nullableVersions"), self.where)
        self.tagged = parse_versions(spec.get("taggedVersions"), self.where)
        self.tag = spec.get("tag")
        if (self.tag is None) != (not self.tagged):
            raise SpecError(f"{self.where}: tag and taggedVersions go together")
        self.default = spec.get("default")
        fv = spec.get("flexibleVersions")
        self.never_compact = fv == "none"
        if fv is not None and fv != "none":
            raise SpecError(f"{self.where}: only flexibleVersions \"none\" is supported on fields")
        self.is_array = self.type.startswith("[]")
        self.elem = self.type[2:] if self.is_array else self.type
        self.struct = None  # the Struct of a struct or struct-array field
        self.spec_fields = spec.get("fields")
        if self.elem[0].isupper():
            pass  # resolved by Message
        elif self.elem not in FIXED_TYPES and self.elem not in VARIABLE_TYPES:
            raise SpecError(f"{self.where}: unknown type {self.type}")
        elif self.spec_fields:
            raise SpecError(f"{self.where}: primitive type with fields")
        if self.is_array and self.elem in ("bytes", "records"):
            raise SpecError(f"{self.where}: arrays of {self.elem} are not supported")

    @property
    def is_optional(self):
        # The C++ member is std::optional when the field is nullable in some
        # version; records_view carries its own null flag.
        if not self.nullable:
            return False
        if self.elem in FIXED_TYPES and not self.is_array:
            raise SpecError(f"{self.where}: {self.type} cannot be nullable")
        return self.type != "records"

    def elem_cpp(self):
        if self.struct is not None:
            return self.struct.cname
        if self.elem == "string":
            return "std::string"
        if self.elem == "bytes":
            return "std::vector<uint8_t>"
        if self.elem == "records":
            return NS + "::records_view"
        return FIXED_TYPES[self.elem]

    def cpp_type(self):
        t = self.elem_cpp()
        if self.is_array:
            t = f"std::vector<{t}>"
        if self.is_optional:
            t = f"std::optional<{t}>"
        return t

    def default_init(self):
        """The member initializer (without '=') or None for value-init {}."""
        d = self.default
        if d is None or d == "":
            if self.elem in FIXED_TYPES and not self.is_array and self.elem != "uuid":
                return "false" if self.elem == "bool" else ("0.0" if self.elem == "float64" else "0")
            if self.is_optional and self.type == "string" and d == "":
                return 'std::string()'
            return None
        if isinstance(d, str) and d.lower() == "null":
            if not self.is_optional:
                raise SpecError(f"{self.where}: default null on a non-nullable field")
            if self.nullable & self.versions != self.versions:
                raise SpecError(f"{self.where}: default null but not nullable in every version")
            return "std::nullopt"
        if self.is_array or self.struct is not None:
            raise SpecError(f"{self.where}: only null defaults for {self.type}")
        if self.elem == "bool":
            if str(d).lower() not in ("true", "false"):
                raise SpecError(f"{self.where}: bad bool default {d!r}")
            return str(d).lower()
        if self.elem == "string":
            return f"std::string({cpp_string(d)})"
        if self.elem == "float64":
            return repr(float(d))
        if self.elem in ("int8", "int16", "int32", "int64", "uint16", "uint32"):
            s = str(d).strip()
            if re.fullmatch(r"-?0[0-7]+", s):
                v = int(s, 8)
            else:
                v = int(s, 0)
            bits = int(re.sub(r"\D", "", self.elem))
            signed = self.elem.startswith("int")
            lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
            if not lo <= v <= hi:
                raise SpecError(f"{self.where}: default {d!r} out of range")
            if signed and v == lo:
                return f"({v + 1} - 1)"
            return str(v)
        raise SpecError(f"{self.where}: unsupported default {d!r} for {self.type}")

    def is_default_expr(self, obj=""):
        """A C++ expression that is true when the member still holds its default."""
        m = obj + self.cname
        init = self.default_init()
        if init == "std::nullopt":
            return f"!{m}.has_value()"
        if self.type == "records":
            return f"{m}.is_null"
        if self.is_array or self.type == "bytes":
            return f"{m}.empty()" if not self.is_optional else f"({m}.has_value() && {m}->empty())"
        if self.struct is not None:
            t = self.cpp_type()
            return f"({m} == {t}{{}})"
        if self.type == "string":
            if self.is_optional:
                return f"({m} == std::string({cpp_string(self.default or '')}))"
            return f"{m}.empty()" if not self.default else f"({m} == {cpp_string(self.default)})"
        if self.elem == "uuid":
            return f"({m} == {NS}::uuid{{}})"
        return f"({m} == {init})"


class Struct:
    def __init__(self, msg, name, field_specs, where):
        self.msg = msg
        self.name = name
        self.cname = None  # assigned by Message once all field names are known
        self.where = where
        self.fields = [Field(msg, f, where) for f in field_specs]
        names = [f.cname for f in self.fields]
        if len(set(names)) != len(names):
            raise SpecError(f"{where}: duplicate field names")
        tags = [f.tag for f in self.fields if f.tag is not None]
        if len(set(tags)) != len(tags):
            raise SpecError(f"{where}: duplicate tags")

    def deps(self):
        return [f.struct for f in self.fields if f.struct is not None]


class Message:
    def __init__(self, spec, path):
        self.name = spec["name"]
        self.kind = spec["type"]
        self.path = path
        self.api_key = spec.get("apiKey")
        self.valid = parse_versions(spec["validVersions"], self.name)
        if not self.valid:
            raise SpecError(f"{self.name}: no valid versions")
        self.min_version, self.max_version = min(self.valid), max(self.valid)
        flex = parse_versions(spec.get("flexibleVersions"), self.name)
        self.flexible_min = min(flex) if flex else None
        if flex and flex != set(range(self.flexible_min, MAX_VERSION + 1)):
            raise SpecError(f"{self.name}: flexibleVersions must be open ended")
        self.flex = flex & self.valid
        self.listeners = spec.get("listeners", [])
        self.deprecated = parse_versions(spec.get("deprecatedVersions"), self.name)
        self.unstable = bool(spec.get("latestVersionUnstable", False))
        self.cname = snake(self.name)
        self.root = Struct(self, self.name, spec["fields"], self.name)
        self.root.cname = self.cname
        self.common = {}
        for cs in spec.get("commonStructs", []):
            self.common[cs["name"]] = Struct(self, cs["name"], cs["fields"], f"{self.name}.{cs['name']}")
        self.structs = {}  # name -> Struct (inline and common), excluding root
        self._resolve(self.root)
        for s in self.common.values():
            if s.name not in self.structs:
                # An unreferenced common struct: still generated, for users.
                self.structs[s.name] = s
                self._resolve(s)
        self._name_types()

    def _resolve(self, struct):
        for f in struct.fields:
            if not f.elem[0].isupper():
                continue
            if f.spec_fields is not None:
                if f.elem in self.structs or f.elem in self.common:
                    raise SpecError(f"{f.where}: struct {f.elem} defined twice")
                s = Struct(self, f.elem, f.spec_fields, f"{self.name}.{f.elem}")
                self.structs[f.elem] = s
                f.struct = s
                self._resolve(s)
            elif f.elem in self.common:
                s = self.common[f.elem]
                f.struct = s
                if f.elem not in self.structs:
                    self.structs[f.elem] = s
                    self._resolve(s)
            else:
                raise SpecError(f"{f.where}: unknown struct type {f.elem}")

    def all_structs(self):
        return list(self.structs.values()) + [self.root]

    def _name_types(self):
        field_names = set()
        for s in self.all_structs():
            for f in s.fields:
                if f.cname in CPP_KEYWORDS or f.cname in STRUCT_MEMBERS:
                    f.cname += "_"
                if s is self.root and f.cname in MESSAGE_MEMBERS and self.kind != "header":
                    f.cname += "_"
                field_names.add(f.cname)
        taken = set()
        for s in self.structs.values():
            c = snake(s.name)
            # A type named like a field of the same message would be hidden by
            # (or change the meaning of) that member: suffix it.
            if c in field_names or c in CPP_KEYWORDS or c in RESERVED_TYPES or c == self.cname:
                c += "_t"
            if c in taken or c in field_names:
                raise SpecError(f"{self.name}: cannot name struct {s.name}")
            taken.add(c)
            s.cname = c

    def ordered_structs(self):
        """Nested structs, dependencies first."""
        out, seen = [], set()

        def visit(s):
            if s.name in seen:
                return
            seen.add(s.name)
            for d in s.deps():
                visit(d)
            out.append(s)

        for f in self.root.fields:
            if f.struct is not None:
                visit(f.struct)
        for s in self.structs.values():
            visit(s)
        return out

    def qualified(self, s):
        return self.cname if s is self.root else f"{self.cname}::{s.cname}"


# ---- code generation -------------------------------------------------------------

def flex_cond(msg):
    if msg.flexible_min is None:
        return "false"
    return cond(set(range(msg.flexible_min, MAX_VERSION + 1)), msg.valid)


def regular_versions(f):
    return f.versions - f.tagged


def tagged_versions(f):
    return f.versions & f.tagged


def compact_arg(f, tagged):
    if tagged:
        return "true"
    if f.never_compact:
        return "false"
    return "flex"


def nullable_arg(f, present):
    return cond(f.nullable, present)


def codec_call(f, present, tagged):
    """The helper suffix and the arguments after the member for a field's
    d::rd_* / d::wr_* call (field_codec.h)."""
    c = compact_arg(f, tagged)
    n = [nullable_arg(f, present)] if f.is_optional else []
    if f.is_array:
        return "_array", [c] + n + ["version"]
    if f.struct is not None:
        return "_struct", ["version"] + n
    if f.type == "string":
        return "_str", [c] + n
    if f.type == "bytes":
        return "_bytes", [c] + n
    if f.type == "records":
        return "_records", [c, nullable_arg(f, present)]
    return "", []


def encode_stmt(f, present, w, tagged=False):
    fn, args = codec_call(f, present, tagged)
    return f"d::wr{fn}({', '.join([w, f.cname] + args)});"


def decode_expr(f, present, tagged=False):
    fn, args = codec_call(f, present, tagged)
    at = 'r.at("' + f.cname + '")'
    return f"d::rd{fn}({', '.join([at, f.cname] + args)})"


def guarded(c, stmt, indent="  "):
    if c == "false":
        return []
    if c == "true":
        return [indent + stmt]
    return [f"{indent}if ({c}) {stmt}"]


def gen_encode(msg, s):
    q = msg.qualified(s)
    lines = [f"void {q}::encode(writer& w, [[maybe_unused]] int16_t version) const {{"]
    if s is msg.root:
        lines.append(f'  SLUICE_ASSERT_MSG(version >= min_version && version <= max_version, '
                     f'"{msg.cname}: encoding an unsupported version");')
    lines.append(f"  [[maybe_unused]] const bool flex = {flex_cond(msg)};")
    for f in s.fields:
        rv = regular_versions(f)
        lines += guarded(cond(rv, msg.valid), encode_stmt(f, rv, "w"))
    if msg.flex:
        tagged = sorted((f for f in s.fields if tagged_versions(f)), key=lambda f: f.tag)
        if not tagged:
            lines.append("  if (flex) w.write_unsigned_varint(0);")
        else:
            lines.append("  if (flex) {")
            names = []
            for f in tagged:
                tv = tagged_versions(f)
                c = cond(tv, msg.flex)
                t = f"t{f.tag}"
                names.append(t)
                pre = "" if c == "true" else f"{c} && "
                lines.append(f"    const bool {t} = {pre}!{f.is_default_expr()};")
            lines.append("    w.write_unsigned_varint(" + " + ".join(f"uint32_t({n})" for n in names) + ");")
            for f in tagged:
                tv = tagged_versions(f)
                lines.append(f"    if (t{f.tag}) d::wr_tagged(w, {f.tag}, [&](writer& s) {{ "
                             f"{encode_stmt(f, tv, 's', True)} }});")
            lines.append("  }")
    lines.append("}")
    return lines


def gen_decode(msg, s):
    q = msg.qualified(s)
    lines = [f"bool {q}::decode(reader& r, [[maybe_unused]] int16_t version) {{"]
    if s is msg.root:
        lines.append(f'  r.begin_message("{msg.cname}", version);')
        lines.append("  if (version < min_version || version > max_version) {")
        lines.append('    return r.fail(errc::unsupported_version, "version not supported");')
        lines.append("  }")
        lines.append(f"  *this = {msg.cname}{{}};")
    lines.append(f"  [[maybe_unused]] const bool flex = {flex_cond(msg)};")
    for f in s.fields:
        rv = regular_versions(f)
        c = cond(rv, msg.valid)
        if c == "false":
            continue
        e = decode_expr(f, rv)
        if c == "true":
            lines.append(f"  if (!{e}) return false;")
        else:
            lines.append(f"  if (({c}) && !{e}) return false;")
    if msg.flex:
        tagged = sorted((f for f in s.fields if tagged_versions(f)), key=lambda f: f.tag)
        if not tagged:
            lines.append('  if (flex && !r.at("_tagged_fields").skip_tagged_fields()) return false;')
        else:
            lines.append("  if (flex && !d::rd_tagged_fields(r, [&](uint32_t tag) -> int {")
            lines.append("        switch (tag) {")
            for f in tagged:
                tv = tagged_versions(f)
                c = cond(tv, msg.flex)
                guard = "" if c == "true" else f"if ({c}) "
                lines.append(f"          case {f.tag}: {guard}return {decode_expr(f, tv, True)}; break;"
                             if guard else f"          case {f.tag}: return {decode_expr(f, tv, True)};")
            lines.append("        }")
            lines.append("        return -1;")
            lines.append("      })) {")
            lines.append("    return false;")
            lines.append("  }")
    lines.append("  return true;")
    lines.append("}")
    return lines


def gen_visit(msg, s, indent):
    lines = [f"{indent}// Calls v(name, member, nullable, tagged) for every field present at version.",
             f"{indent}template <class V>",
             f"{indent}void visit_fields([[maybe_unused]] int16_t version, [[maybe_unused]] V&& v) {{"]
    for f in s.fields:
        c = cond(f.versions, msg.valid)
        if c == "false":
            continue
        n = nullable_arg(f, f.versions) if f.nullable else "false"
        t = cond(f.tagged, f.versions)
        call = f'v("{f.cname}", {f.cname}, {n}, {t});'
        lines += guarded(c, call, indent + "  ")
    lines.append(f"{indent}}}")
    return lines


def field_comment(msg, f):
    bits = [range_text(f.versions) if f.versions != msg.valid else "all versions"]
    if f.nullable & f.versions:
        bits.append("nullable " + range_text(f.nullable & f.versions))
    if f.tagged:
        bits.append(f"tag {f.tag} " + range_text(f.tagged & f.versions))
    about = f.about
    if len(about) > 160:
        about = about[:157] + "..."
    return f"// {about} [{'; '.join(bits)}]" if about else f"// [{'; '.join(bits)}]"


def gen_struct_body(msg, s, indent):
    lines = []
    for f in s.fields:
        if not f.versions:
            continue
        lines.append(indent + field_comment(msg, f))
        init = f.default_init()
        if init is None:
            lines.append(f"{indent}{f.cpp_type()} {f.cname}{{}};")
        else:
            lines.append(f"{indent}{f.cpp_type()} {f.cname} = {init};")
    if lines:
        lines.append("")
    lines.append(f"{indent}bool operator==(const {s.cname}&) const = default;")
    lines.append(f"{indent}void encode({NS}::writer& w, int16_t version) const;")
    lines.append(f"{indent}// False on error; the reader then holds the error.")
    lines.append(f"{indent}bool decode({NS}::reader& r, int16_t version);")
    lines += gen_visit(msg, s, indent)
    return lines


def gen_message_decl(msg):
    lines = []
    lines.append(f"// {msg.name}: versions {msg.min_version}-{msg.max_version}"
                 + (f", flexible from v{msg.flexible_min}" if msg.flexible_min is not None else ", never flexible")
                 + (f", deprecated {range_text(msg.deprecated & msg.valid)}" if msg.deprecated & msg.valid else "")
                 + ".")
    lines.append(f"struct {msg.cname} {{")
    if msg.kind != "header":
        lines.append(f"  static constexpr int16_t api_key = {msg.api_key};")
    lines.append(f"  static constexpr int16_t min_version = {msg.min_version};")
    lines.append(f"  static constexpr int16_t max_version = {msg.max_version};")
    fm = msg.flexible_min if msg.flexible_min is not None else MAX_VERSION
    lines.append(f"  static constexpr int16_t flexible_min_version = {fm};" +
                 ("  // never flexible" if msg.flexible_min is None else ""))
    lines.append("")
    for s in msg.ordered_structs():
        lines.append(f"  struct {s.cname} {{")
        lines += gen_struct_body(msg, s, "    ")
        lines.append("  };")
        lines.append("")
    lines += gen_struct_body(msg, msg.root, "  ")
    lines.append("};")
    return lines


def gen_message_impl(msg):
    lines = []
    for s in msg.ordered_structs() + [msg.root]:
        lines += gen_encode(msg, s)
        lines.append("")
        lines += gen_decode(msg, s)
        lines.append("")
    return lines


HEADER_PREAMBLE = """// Generated by plugins/kafka/codec/gen_codecs.py from {sources}.
// Do not edit: change the generator or the spec (see docs/KAFKA-CODEC.md).
#pragma once
"""

CC_PREAMBLE = """// Generated by plugins/kafka/codec/gen_codecs.py from {sources}.
// Do not edit: change the generator or the spec (see docs/KAFKA-CODEC.md).
"""


def gen_api_header(base, msgs):
    out = [HEADER_PREAMBLE.format(sources=", ".join(os.path.basename(m.path) for m in msgs))]
    out.append("#include <cstdint>\n#include <optional>\n#include <string>\n#include <vector>\n")
    out.append('#include "sluice/kafka/wire.h"\n')
    out.append("namespace sluice::kafka::msg {\n")
    for m in msgs:
        out.append("\n".join(gen_message_decl(m)))
        out.append("")
    out.append("}  // namespace sluice::kafka::msg")
    return "\n".join(out) + "\n"


def gen_api_cc(base, msgs):
    out = [CC_PREAMBLE.format(sources=", ".join(os.path.basename(m.path) for m in msgs))]
    out.append(f'#include "sluice/kafka/msg/{base}.h"\n')
    out.append('#include "sluice/kafka/detail/field_codec.h"')
    out.append('#include "sluice/sdk/assert.h"\n')
    out.append("namespace sluice::kafka::msg {\n")
    out.append(f"namespace d = {NS}::detail;")
    out.append(f"using {NS}::errc;")
    out.append(f"using {NS}::reader;")
    out.append(f"using {NS}::writer;\n")
    for m in msgs:
        out.append("\n".join(gen_message_impl(m)))
    out.append("}  // namespace sluice::kafka::msg")
    return "\n".join(out) + "\n"


LISTENERS = {"zkBroker": "listener_zk_broker", "broker": "listener_broker",
             "controller": "listener_controller"}


def gen_api_table_h():
    return HEADER_PREAMBLE.format(sources="every *Request.json") + """
#include <cstdint>
#include <span>

#include "sluice/kafka/wire.h"

namespace sluice::kafka::msg {

// Which listeners an API is served on (the spec's "listeners").
enum listener_mask : uint8_t {
  listener_zk_broker = 1,
  listener_broker = 2,
  listener_controller = 4,
};

struct api_info {
  int16_t api_key;
  const char* name;              // e.g. "Produce"
  int16_t min_version;           // request (and response) versions
  int16_t max_version;
  int16_t flexible_min_version;  // 32767 when never flexible
  int16_t deprecated_max_version;  // -1 when no version is deprecated
  bool latest_version_unstable;
  uint8_t listeners;             // listener_mask bits
};

// Every API, ordered by key.
std::span<const api_info> all_apis() noexcept;
// nullptr for an unknown key.
const api_info* find_api(int16_t api_key) noexcept;

// Header versions, following Kafka's rules: flexible request versions use
// request header v2 (v1 otherwise; ControlledShutdown v0 uses v0); flexible
// response versions use response header v1 (v0 otherwise; ApiVersions
// responses always use v0). A version above the API's maximum is judged
// flexible or not like Kafka does. -1 for an unknown key.
int16_t request_header_version(int16_t api_key, int16_t api_version) noexcept;
int16_t response_header_version(int16_t api_key, int16_t api_version) noexcept;

// Decodes a request or response body of any API into the matching type and
// discards it (fuzzing, diagnostics). False with the reader's error set for an
// unknown key, an unsupported version or a malformed body.
bool decode_request_body(int16_t api_key, int16_t version, reader& r);
bool decode_response_body(int16_t api_key, int16_t version, reader& r);

}  // namespace sluice::kafka::msg
"""


def gen_api_table_cc(apis):
    lines = [CC_PREAMBLE.format(sources="every *Request.json")]
    lines.append('#include "sluice/kafka/msg/api_table.h"\n')
    lines.append("#include <algorithm>\n")
    for base in sorted({a[0] for a in apis}):
        lines.append(f'#include "sluice/kafka/msg/{base}.h"')
    lines.append('#include "sluice/kafka/msg/headers.h"\n')
    lines.append("namespace sluice::kafka::msg {\n")
    lines.append("namespace {")
    lines.append("constexpr api_info apis[] = {")
    for base, req, resp in apis:
        lm = " | ".join(LISTENERS[x] for x in req.listeners) or "0"
        dep = max(req.deprecated & req.valid) if req.deprecated & req.valid else -1
        fm = req.flexible_min if req.flexible_min is not None else MAX_VERSION
        lines.append(f'    {{{req.api_key}, "{api_base(req.name)}", {req.min_version}, {req.max_version}, '
                     f"{fm}, {dep}, {'true' if req.unstable else 'false'}, {lm}}},")
    lines.append("};")
    lines.append("")
    lines.append("template <class T>")
    lines.append("bool decode_as(int16_t version, reader& r) {")
    lines.append("  T m;")
    lines.append("  return m.decode(r, version);")
    lines.append("}")
    lines.append("")
    lines.append("bool unknown_key(reader& r, int16_t api_key) {")
    lines.append('  return r.fail(errc::unknown_api_key, "unknown api key " + std::to_string(api_key));')
    lines.append("}")
    lines.append("}  // namespace")
    lines.append("")
    lines.append("std::span<const api_info> all_apis() noexcept { return apis; }")
    lines.append("")
    lines.append("const api_info* find_api(int16_t api_key) noexcept {")
    lines.append("  const auto* it = std::lower_bound(std::begin(apis), std::end(apis), api_key,")
    lines.append("                                    [](const api_info& a, int16_t k) { return a.api_key < k; });")
    lines.append("  return it != std::end(apis) && it->api_key == api_key ? it : nullptr;")
    lines.append("}")
    lines.append("")
    lines.append("int16_t request_header_version(int16_t api_key, int16_t api_version) noexcept {")
    lines.append("  const api_info* a = find_api(api_key);")
    lines.append("  if (a == nullptr) return -1;")
    lines.append("  if (api_key == 7 && api_version == 0) return 0;  // ControlledShutdown v0")
    lines.append("  return api_version >= a->flexible_min_version ? 2 : 1;")
    lines.append("}")
    lines.append("")
    lines.append("int16_t response_header_version(int16_t api_key, int16_t api_version) noexcept {")
    lines.append("  const api_info* a = find_api(api_key);")
    lines.append("  if (a == nullptr) return -1;")
    lines.append("  if (api_key == 18) return 0;  // ApiVersions: clients parse it before knowing versions")
    lines.append("  return api_version >= a->flexible_min_version ? 1 : 0;")
    lines.append("}")
    lines.append("")
    for kind in ("request", "response"):
        lines.append(f"bool decode_{kind}_body(int16_t api_key, int16_t version, reader& r) {{")
        lines.append("  switch (api_key) {")
        for base, req, resp in apis:
            m = req if kind == "request" else resp
            lines.append(f"    case {m.api_key}: return decode_as<{m.cname}>(version, r);")
        lines.append("  }")
        lines.append("  return unknown_key(r, api_key);")
        lines.append("}")
        lines.append("")
    lines.append("bool decode_request_header(reader& r, request_header& h) {")
    lines.append("  const auto peek = r.remaining_bytes();")
    lines.append("  if (peek.size() < 4) {")
    lines.append("    request_header tmp;")
    lines.append("    return tmp.decode(r, 1);  // fails, naming the field that is cut short")
    lines.append("  }")
    lines.append("  const auto key = static_cast<int16_t>((peek[0] << 8) | peek[1]);")
    lines.append("  const auto version = static_cast<int16_t>((peek[2] << 8) | peek[3]);")
    lines.append("  h = request_header{};")
    lines.append("  h.api_key = key;")
    lines.append("  h.api_version = version;")
    lines.append("  const int16_t hv = request_header_version(key, version);")
    lines.append("  if (hv < 0) {")
    lines.append('    r.begin_message("request_header", -1);')
    lines.append("    return unknown_key(r, key);")
    lines.append("  }")
    lines.append("  return h.decode(r, hv);")
    lines.append("}")
    lines.append("")
    lines.append("}  // namespace sluice::kafka::msg")
    return "\n".join(lines) + "\n"


def gen_headers_h(hdrs):
    out = [HEADER_PREAMBLE.format(sources="RequestHeader.json, ResponseHeader.json")]
    out.append("#include <cstdint>\n#include <optional>\n#include <string>\n")
    out.append('#include "sluice/kafka/msg/api_table.h"')
    out.append('#include "sluice/kafka/wire.h"\n')
    out.append("namespace sluice::kafka::msg {\n")
    for m in hdrs:
        out.append("\n".join(gen_message_decl(m)))
        out.append("")
    out.append("""// Reads a request header, choosing its version from the api key and version
// at its start (request_header_version). On an unknown key it fails with
// errc::unknown_api_key, leaving api_key and api_version filled in.
bool decode_request_header(reader& r, request_header& h);
""")
    out.append("}  // namespace sluice::kafka::msg")
    return "\n".join(out) + "\n"


def gen_all_h(apis):
    lines = [HEADER_PREAMBLE.format(sources="every *Request.json and *Response.json")]
    lines.append("// Every message, for tests, fuzzers and tools. Handlers include only the")
    lines.append("// header of their API.")
    lines.append("#include <type_traits>\n")
    lines.append('#include "sluice/kafka/msg/api_table.h"')
    lines.append('#include "sluice/kafka/msg/headers.h"')
    for base in sorted({a[0] for a in apis}):
        lines.append(f'#include "sluice/kafka/msg/{base}.h"')
    lines.append("\nnamespace sluice::kafka::msg {\n")
    for kind in ("request", "response"):
        lines.append(f"// Calls f(std::type_identity<T>{{}}) with the {kind} type of api_key; false")
        lines.append("// for an unknown key.")
        lines.append("template <class F>")
        lines.append(f"bool visit_{kind}_type(int16_t api_key, F&& f) {{")
        lines.append("  switch (api_key) {")
        for base, req, resp in apis:
            m = req if kind == "request" else resp
            lines.append(f"    case {m.api_key}: f(std::type_identity<{m.cname}>{{}}); return true;")
        lines.append("  }")
        lines.append("  return false;")
        lines.append("}\n")
    lines.append("}  // namespace sluice::kafka::msg")
    return "\n".join(lines) + "\n"


# ---- driver ----------------------------------------------------------------------

def load_all(specs_dir):
    reqs, resps, hdrs = {}, {}, []
    for fn in sorted(os.listdir(specs_dir)):
        if not fn.endswith(".json"):
            continue
        if not (fn.endswith("Request.json") or fn.endswith("Response.json")
                or fn in ("RequestHeader.json", "ResponseHeader.json")):
            continue
        path = os.path.join(specs_dir, fn)
        spec = load_spec(path)
        if fn in ("RequestHeader.json", "ResponseHeader.json"):
            hdrs.append(Message(spec, path))
            continue
        m = Message(spec, path)
        if m.api_key is None:
            raise SpecError(f"{fn}: no apiKey")
        (reqs if m.kind == "request" else resps)[m.api_key] = m
    if set(reqs) != set(resps):
        raise SpecError(f"requests and responses differ: {sorted(set(reqs) ^ set(resps))}")
    apis = []
    for k in sorted(reqs):
        req, resp = reqs[k], resps[k]
        if req.valid != resp.valid or req.flexible_min != resp.flexible_min:
            raise SpecError(f"api {k}: request and response versions differ")
        apis.append((snake(api_base(req.name)), req, resp))
    hdrs.sort(key=lambda m: m.name != "RequestHeader")
    return apis, hdrs


def outputs(apis):
    files = {}
    for base, req, resp in apis:
        files[f"include/sluice/kafka/msg/{base}.h"] = ("api_h", base, [req, resp])
        files[f"src/{base}.cc"] = ("api_cc", base, [req, resp])
    files["include/sluice/kafka/msg/headers.h"] = ("headers_h",)
    files["src/headers.cc"] = ("headers_cc",)
    files["include/sluice/kafka/msg/api_table.h"] = ("api_table_h",)
    files["src/api_table.cc"] = ("api_table_cc",)
    files["include/sluice/kafka/msg/all.h"] = ("all_h",)
    return files


def render(what, apis, hdrs):
    kind = what[0]
    if kind == "api_h":
        return gen_api_header(what[1], what[2])
    if kind == "api_cc":
        return gen_api_cc(what[1], what[2])
    if kind == "headers_h":
        return gen_headers_h(hdrs)
    if kind == "headers_cc":
        return gen_api_cc("headers", hdrs)
    if kind == "api_table_h":
        return gen_api_table_h()
    if kind == "api_table_cc":
        return gen_api_table_cc(apis)
    if kind == "all_h":
        return gen_all_h(apis)
    raise AssertionError(kind)


def write_if_changed(path, text):
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--specs", required=True, help="directory of Kafka JSON message specs")
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--list", action="store_true", help="print the output files (relative) and exit")
    ap.add_argument("--stamp", help="file to touch after a successful run")
    args = ap.parse_args()
    try:
        apis, hdrs = load_all(args.specs)
    except (SpecError, ValueError, KeyError) as e:
        print(f"gen_codecs.py: {e}", file=sys.stderr)
        return 1
    files = outputs(apis)
    if args.list:
        print(";".join(sorted(files)))
        return 0
    if not args.out:
        ap.error("--out is required unless --list")
    changed = 0
    try:
        for rel, what in sorted(files.items()):
            changed += write_if_changed(os.path.join(args.out, rel), render(what, apis, hdrs))
    except SpecError as e:
        print(f"gen_codecs.py: {e}", file=sys.stderr)
        return 1
    if args.stamp:
        with open(args.stamp, "w", encoding="utf-8") as f:
            f.write(f"{len(files)} files, {changed} changed\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
