"""JSON Schema as polyhost runs it, for every schema a user or node author writes.

One way to build validators, so that each schema (a workflow's ``inputs``, a node type's input
schema, a ``core.approval`` resume schema) gets the same guarantees:

- ``pattern`` and ``patternProperties`` are ECMA-262, as JSON Schema says, and run on a
  linear-time engine (the extension's, through ``_bridge``): no pattern can take exponential
  time, and one the engine cannot run (backreferences, lookaround) is refused when the schema
  is checked;
- ``$ref`` resolves within the document only: nothing is ever fetched;
- ``format`` asserts a fixed set of formats (:data:`CHECKED_FORMATS`), whatever else is
  installed; other formats are annotations;
- every ``default`` must match its own subschema;
- validation is bounded: ``uniqueItems`` hashes instead of comparing every pair, and one
  validation may take at most ``Limits.max_schema_steps`` keyword evaluations.
"""

from __future__ import annotations

import calendar
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import idna
import jsonschema
import referencing
import referencing.exceptions
import referencing.jsonschema
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from .._errors import LimitExceededError, PatternError, PolyhostError
from .._limits import Limits, default_limits
from ..plan._bridge import Pattern

__all__ = [
    "CHECKED_FORMATS",
    "InvalidSchemaError",
    "SchemaProblem",
    "compile_pattern",
    "error_path",
    "parameter_problem",
    "schema_errors",
    "schema_parameter_problems",
    "schema_problems",
    "short",
    "validator_for",
]

Keyword = Callable[[Any, Any, Any, dict[str, Any]], Iterator[ValidationError]]


@dataclass(frozen=True)
class SchemaProblem:
    """Something wrong with a schema; ``path`` leads from the schema's root to it."""

    path: tuple[str | int, ...]
    message: str
    limit: str | None = None  # the Limits field, when a limit is what the schema went past

    def where(self, prefix: str) -> str:
        """``prefix`` and the path, dotted: ``inputs.properties.name.pattern``."""
        return ".".join([prefix, *(str(p) for p in self.path)])


class InvalidSchemaError(PolyhostError):
    """A schema that cannot be used; ``problems`` says where and why."""

    code = "invalid_schema"

    def __init__(self, problems: list[SchemaProblem]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"{p.where('schema')}: {p.message}" for p in problems[:5])
            + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        )


# patterns ----------------------------------------------------------------------------------


_CACHED_SOURCE_CHARS = 4096  # longer sources are compiled each time, never kept


@lru_cache(maxsize=4096)
def _compiled(source: str, size_limit: int) -> Pattern | str:
    try:
        return Pattern(source, size_limit)
    except PatternError as exc:
        return str(exc)


def compile_pattern(source: str, limits: Limits | None = None) -> Pattern:
    """``source`` compiled once per process (cached); ``PatternError`` when it cannot run."""
    size_limit = (limits or default_limits()).max_schema_pattern_bytes
    if len(source) > _CACHED_SOURCE_CHARS:
        return Pattern(source, size_limit)
    compiled = _compiled(source, size_limit)
    if isinstance(compiled, str):
        raise PatternError(compiled)
    return compiled


def _search(validator: Any, source: str, text: str) -> bool:
    try:
        return compile_pattern(source, _limits_of(validator)).search(text)
    except PatternError as exc:
        raise InvalidSchemaError([SchemaProblem((), f"pattern {source!r}: {exc}")]) from None


# keywords that differ from jsonschema's own ----------------------------------------------


def _pattern(validator: Any, pattern: Any, instance: Any, schema: dict[str, Any]) -> Any:
    if validator.is_type(instance, "string") and not _search(validator, pattern, instance):
        yield ValidationError(f"{short(instance)} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(validator, pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(validator: Any, instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    properties = schema.get("properties") or {}
    patterns = list(schema.get("patternProperties") or {})
    return [
        key
        for key in instance
        if key not in properties and not any(_search(validator, p, key) for p in patterns)
    ]


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    extras = _additional(validator, instance, schema)
    if validator.is_type(extra, "object"):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif extra is False and extras:
        names = ", ".join(repr(k) for k in sorted(extras)[:20])
        yield ValidationError(f"additional properties are not allowed ({names} unexpected)")


def _valid(validator: Any, instance: Any, schema: Any) -> bool:
    return next(validator.descend(instance, schema), None) is None


def _evaluated_keys(validator: Any, instance: dict[str, Any], schema: Any) -> set[str]:
    """The keys of ``instance`` that ``schema`` evaluates successfully (2020-12, 11.3)."""
    if not isinstance(schema, dict):
        return set()
    keys: set[str] = set()
    for keyword in ("$ref", "$dynamicRef"):
        ref = schema.get(keyword)
        if isinstance(ref, str):
            resolved = validator._resolver.lookup(ref)
            inner = validator.evolve(schema=resolved.contents, _resolver=resolved.resolver)
            keys |= _evaluated_keys(inner, instance, resolved.contents)
    properties = schema.get("properties")
    if isinstance(properties, dict):
        keys |= properties.keys() & instance.keys()
    for pattern in schema.get("patternProperties") or {}:
        keys |= {k for k in instance if _search(validator, pattern, k)}
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        if keyword in schema:
            sub = schema[keyword]
            keys |= {k for k, v in instance.items() if _valid(validator, v, sub)}
    for name, sub in (schema.get("dependentSchemas") or {}).items():
        if name in instance:
            keys |= _evaluated_keys(validator, instance, sub)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for sub in schema.get(keyword) or []:
            if _valid(validator, instance, sub):
                keys |= _evaluated_keys(validator, instance, sub)
    if "if" in schema:
        if _valid(validator, instance, schema["if"]):
            keys |= _evaluated_keys(validator, instance, schema["if"])
            keys |= _evaluated_keys(validator, instance, schema.get("then"))
        else:
            keys |= _evaluated_keys(validator, instance, schema.get("else"))
    return keys


def _unevaluated_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    evaluated = _evaluated_keys(validator, instance, schema)
    bad = [
        key
        for key, value in instance.items()
        if key not in evaluated and not _valid(validator, value, extra)
    ]
    if bad:
        names = ", ".join(repr(k) for k in sorted(bad)[:20])
        yield ValidationError(f"unevaluated properties are not allowed ({names} unexpected)")


def _canonical(value: Any) -> Any:
    """A hashable form that is equal exactly when JSON Schema calls two values equal."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)  # 1 == 1.0 and hash(1) == hash(1.0), as JSON Schema wants
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z",)
    if isinstance(value, list | tuple):
        return ("l", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("d", frozenset((k, _canonical(v)) for k, v in value.items()))
    return ("o", repr(value))


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Any:
    # jsonschema compares unhashable items pairwise: quadratic. Hashing is linear.
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: dict[Any, int] = {}
    for index, item in enumerate(instance):
        key = _canonical(item)
        first = seen.setdefault(key, index)
        if first != index:
            yield ValidationError(f"items {first} and {index} are equal, but must be unique")
            return


_OVERRIDES: dict[str, Keyword] = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "unevaluatedProperties": _unevaluated_properties,
    "uniqueItems": _unique_items,
}


# bounded validation ------------------------------------------------------------------------


class _Budget:
    __slots__ = ("left", "limits")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.left = limits.max_schema_steps


_BUDGET: ContextVar[_Budget | None] = ContextVar("polyhost_schema_budget", default=None)


def _limits_of(validator: Any) -> Limits:
    budget = _BUDGET.get()
    return budget.limits if budget is not None else default_limits()


def _counted(keyword: Keyword) -> Keyword:
    def counted(validator: Any, value: Any, instance: Any, schema: dict[str, Any]) -> Any:
        budget = _BUDGET.get()
        if budget is not None:
            budget.left -= 1
            if budget.left < 0:
                limit = budget.limits.max_schema_steps
                raise LimitExceededError(
                    "max_schema_steps",
                    limit,
                    f"validating against the schema took more than {limit} steps",
                )
        return keyword(validator, value, instance, schema)

    return counted


# formats -------------------------------------------------------------------------------------

_FORMATS = jsonschema.FormatChecker(formats=())
_META_FORMATS = jsonschema.FormatChecker(formats=())  # for checking schemas: no "regex"

_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIME = re.compile(
    r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
_DUR_TIME = r"T(?:[0-9]+H(?:[0-9]+M(?:[0-9]+S)?)?|[0-9]+M(?:[0-9]+S)?|[0-9]+S)"
_DURATION = re.compile(
    rf"P(?:(?:[0-9]+D|[0-9]+M(?:[0-9]+D)?|[0-9]+Y(?:[0-9]+M(?:[0-9]+D)?)?)(?:{_DUR_TIME})?"
    rf"|{_DUR_TIME}|[0-9]+W)"
)
_UUID = re.compile(r"[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}")
_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?:\.|$)){4}")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf'{_ATOM}(?:\.{_ATOM})*|"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"')
_JSON_POINTER = re.compile(r"(?:/(?:[^~/]|~[01])*)*")

# RFC 3986, appendix A. Each repetition is over disjoint alternatives: linear in Python's re.
_PCT = r"%[0-9A-Fa-f]{2}"
_UNRESERVED_SUB = r"A-Za-z0-9\-._~!$&'()*+,;="
_PCHAR = rf"(?:[{_UNRESERVED_SUB}:@]|{_PCT})"
_QUERY = rf"(?:[{_UNRESERVED_SUB}:@/?]|{_PCT})*"
_AUTHORITY = re.compile(
    rf"(?:(?:[{_UNRESERVED_SUB}:]|{_PCT})*@)?"  # userinfo
    rf"(\[[^\]]*\]|(?:[{_UNRESERVED_SUB}]|{_PCT})*)"  # host
    r"(?::[0-9]*)?"  # port
)
_SEGMENTS = rf"(?:/{_PCHAR}*)*"
_PATH_ROOTLESS = rf"{_PCHAR}+{_SEGMENTS}"
_PATH_NOSCHEME = rf"(?:[{_UNRESERVED_SUB}@]|{_PCT})+{_SEGMENTS}"
_URI = re.compile(
    rf"([A-Za-z][A-Za-z0-9+.-]*):(?://([^/?#]*){_SEGMENTS}|/(?:{_PATH_ROOTLESS})?|{_PATH_ROOTLESS}|)"
    rf"(?:\?{_QUERY})?(?:#{_QUERY})?"
)
_RELATIVE = re.compile(
    rf"(?://([^/?#]*){_SEGMENTS}|/(?:{_PATH_ROOTLESS})?|{_PATH_NOSCHEME}|)"
    rf"(?:\?{_QUERY})?(?:#{_QUERY})?"
)
_IPV_FUTURE = re.compile(rf"v[0-9A-Fa-f]+\.[{_UNRESERVED_SUB}:]+")


def _valid_date(text: str) -> bool:
    match = _DATE.fullmatch(text)
    if match is None:
        return False
    year, month, day = (int(g) for g in match.groups())
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def _valid_time(text: str) -> bool:
    match = _TIME.fullmatch(text)
    if match is None:
        return False
    hour, minute, second = int(match[1]), int(match[2]), int(match[3])
    if hour > 23 or minute > 59 or second > 60:
        return False
    offset = 0
    if not match[4]:
        off_hour, off_minute = int(match[6]), int(match[7])
        if off_hour > 23 or off_minute > 59:
            return False
        offset = (off_hour * 60 + off_minute) * (1 if match[5] == "+" else -1)
    # A leap second is 23:59:60 in UTC only.
    return second < 60 or (hour * 60 + minute - offset) % 1440 == 23 * 60 + 59


def _valid_hostname(text: str) -> bool:
    if not text or len(text) > 253 or not text.isascii():
        return False
    return all(_valid_label(label) for label in text.split("."))


def _valid_label(label: str) -> bool:
    if not _LABEL.fullmatch(label):
        return False
    if label[2:4] != "--":
        return True
    # "??--" is reserved for A-labels (RFC 5891, 4.2.3.1): "xn--" holding valid IDNA2008.
    if label[:2].lower() != "xn":
        return False
    try:
        idna.decode(label.lower())
    except (idna.IDNAError, UnicodeError):
        return False
    return True


def _valid_ipv6(text: str) -> bool:
    # ipaddress takes a zone ("%eth0") and non-ASCII digits; RFC 4291 text form has neither.
    if not text.isascii() or "%" in text or not text:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _valid_host(host: str | None) -> bool:
    if host is None:
        return True
    match = _AUTHORITY.fullmatch(host)
    if match is None:
        return False
    literal = match[1]
    if literal.startswith("["):
        inner = literal[1:-1]
        return _valid_ipv6(inner) or _IPV_FUTURE.fullmatch(inner) is not None
    return True


def _valid_uri(text: str) -> bool:
    match = _URI.fullmatch(text)
    return match is not None and _valid_host(match[2])


def _valid_uri_reference(text: str) -> bool:
    if _valid_uri(text):
        return True
    match = _RELATIVE.fullmatch(text)
    return match is not None and _valid_host(match[1])


def _valid_email(text: str) -> bool:
    local, at, domain = text.rpartition("@")
    if not at or not _LOCAL.fullmatch(local):
        return False
    if domain.startswith("[") and domain.endswith("]"):
        inner = domain[1:-1]
        if inner[:5].lower() == "ipv6:":
            return _valid_ipv6(inner[5:])
        return _IPV4.fullmatch(inner) is not None and not inner.endswith(".")
    return _valid_hostname(domain) and not domain.endswith(".")


def _valid_regex(text: str) -> bool:
    try:
        compile_pattern(text)
    except PatternError:
        return False
    return True


_CHECKERS: dict[str, Callable[[str], bool]] = {
    "date-time": lambda t: (
        len(t) > 11 and t[10] in "Tt" and _valid_date(t[:10]) and _valid_time(t[11:])
    ),
    "date": _valid_date,
    "time": _valid_time,
    "duration": lambda t: _DURATION.fullmatch(t) is not None,
    "email": _valid_email,
    "hostname": _valid_hostname,
    "ipv4": lambda t: _IPV4.fullmatch(t) is not None and not t.endswith("."),
    "ipv6": _valid_ipv6,
    "uri": _valid_uri,
    "uri-reference": _valid_uri_reference,
    "uuid": lambda t: _UUID.fullmatch(t) is not None,
    "json-pointer": lambda t: _JSON_POINTER.fullmatch(t) is not None,
    "regex": _valid_regex,
}

#: The formats polyhost checks; any other ``format`` is an annotation only.
CHECKED_FORMATS: tuple[str, ...] = tuple(sorted(_CHECKERS))


def _string_check(check: Callable[[str], bool]) -> Callable[[object], bool]:
    return lambda value: not isinstance(value, str) or check(value)


for _name, _check in _CHECKERS.items():
    _FORMATS.checks(_name)(_string_check(_check))
    if _name != "regex":
        _META_FORMATS.checks(_name)(_string_check(_check))


# validators ----------------------------------------------------------------------------------

_NO_RETRIEVAL: referencing.Registry[Any] = referencing.Registry()  # retrieving raises


@cache
def _extended(base: type[Validator]) -> type[Validator]:
    keywords: dict[str, Keyword] = {
        name: _counted(_OVERRIDES.get(name) or keyword)
        for name, keyword in base.VALIDATORS.items()
        if keyword is not None
    }
    extended: type[Validator] = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        base, validators=keywords, format_checker=_FORMATS
    )
    return extended


def _base_class(schema: Any) -> type[Validator]:
    base: type[Validator] = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    return base


_VALIDATORS: dict[int, tuple[Any, Validator]] = {}
# The same schemas by content: a schema read back from the store (a paused approval's, checked
# on every resume) is a new object each time, and checking it against its meta-schema costs
# a millisecond.
_BY_CONTENT: dict[str, Validator] = {}


def validator_for(schema: Mapping[str, Any] | bool, limits: Limits | None = None) -> Validator:
    """A validator for ``schema``, built once per schema object (and, under the default limits,
    once per content).

    Raises :class:`InvalidSchemaError` when :func:`schema_problems` finds any.
    """
    cached = _VALIDATORS.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    key: str | None = None
    if limits is None:  # with the default limits only: a key of other limits would cost more
        try:
            key = json.dumps(schema, sort_keys=True)
        except (TypeError, ValueError, RecursionError):
            key = None  # not JSON: checked below, never cached by content
    validator = _BY_CONTENT.get(key) if key is not None else None
    if validator is None:
        problems = schema_problems(schema, limits)
        if problems:
            raise InvalidSchemaError(problems)
        validator = _new_validator(schema)
        if key is not None:
            if len(_BY_CONTENT) > 1024:
                _BY_CONTENT.clear()
            _BY_CONTENT[key] = validator
    if len(_VALIDATORS) > 4096:
        _VALIDATORS.clear()
    _VALIDATORS[id(schema)] = (schema, validator)
    return validator


def _new_validator(schema: Any) -> Validator:
    cls = _extended(_base_class(schema))
    return cls(schema, format_checker=_FORMATS, registry=_NO_RETRIEVAL)


def schema_errors(
    validator: Validator, instance: Any, limits: Limits | None = None
) -> list[ValidationError]:
    """Every error of ``instance``, ordered by path; bounded by ``max_schema_steps``.

    Raises ``LimitExceededError`` past the bound and :class:`InvalidSchemaError` for a schema
    that refers to itself without end.
    """
    token = _BUDGET.set(_Budget(limits or default_limits()))
    try:
        errors = list(validator.iter_errors(instance))
    except RecursionError:
        raise InvalidSchemaError(
            [
                SchemaProblem(
                    (),
                    "validation recursed too deep: a $ref loop in the schema, or a value "
                    "nested too deep",
                )
            ]
        ) from None
    except referencing.exceptions.Unresolvable as exc:
        raise InvalidSchemaError(
            [SchemaProblem((), f"$ref {exc.ref!r} does not resolve within the schema")]
        ) from None
    finally:
        _BUDGET.reset(token)
    return sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])


def error_path(error: ValidationError) -> str:
    """The dotted instance path of ``error`` (empty at the root)."""
    return ".".join(str(p) for p in error.absolute_path)


def short(value: Any, width: int = 80) -> str:
    """``repr(value)`` cut to ``width`` characters: messages stay small for large values."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


# checking a schema ---------------------------------------------------------------------------

_SCHEMA_MAPS = ("$defs", "definitions", "properties", "patternProperties", "dependentSchemas")
_SCHEMA_ONE = (
    "additionalProperties",
    "additionalItems",
    "contains",
    "contentSchema",
    "else",
    "if",
    "items",
    "not",
    "propertyNames",
    "then",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")

_Path = tuple[str | int, ...]


_Scopes = tuple[dict[str, Any], ...]


def _subschemas(schema: Any) -> Iterator[tuple[_Path, dict[str, Any], _Scopes]]:
    """Every subschema that is an object, with its path and the enclosing ``$id`` resources.

    Iterative, so depth costs no stack.
    """
    stack: list[tuple[_Path, Any, _Scopes]] = [((), schema, ())]
    while stack:
        path, node, scopes = stack.pop()
        if not isinstance(node, dict):
            continue
        if path and isinstance(node.get("$id"), str):
            scopes = (*scopes, node)
        yield path, node, scopes
        children: list[tuple[_Path, Any]] = []
        for key in _SCHEMA_MAPS:
            value = node.get(key)
            if isinstance(value, dict):
                children += [((*path, key, name), sub) for name, sub in value.items()]
        for key in _SCHEMA_ONE:
            if isinstance(node.get(key), dict):
                children.append(((*path, key), node[key]))
        for key in _SCHEMA_LISTS:
            value = node.get(key)
            if isinstance(value, list):
                children += [((*path, key, i), sub) for i, sub in enumerate(value)]
        dependencies = node.get("dependencies")
        if isinstance(dependencies, dict):
            children += [((*path, "dependencies", k), v) for k, v in dependencies.items()]
        stack.extend((p, c, scopes) for p, c in reversed(children))


def schema_problems(
    schema: Mapping[str, Any] | bool, limits: Limits | None = None
) -> list[SchemaProblem]:
    """What is wrong with ``schema``, each with its path; empty when it can be used.

    Checks it against its meta-schema, compiles every ``pattern`` and ``patternProperties``
    key, resolves every ``$ref`` within the document (nothing is fetched), and validates
    every ``default`` against the subschema it sits in.
    """
    limits = limits or default_limits()
    if isinstance(schema, bool):
        return []
    base = _base_class(schema)
    meta_cls = jsonschema.validators.validator_for(base.META_SCHEMA, default=base)
    meta = meta_cls(base.META_SCHEMA, format_checker=_META_FORMATS)
    problems = [
        SchemaProblem(tuple(e.absolute_path), f"not valid JSON Schema: {e.message}")
        for e in sorted(meta.iter_errors(schema), key=lambda e: [str(p) for p in e.path])
    ]
    if problems:
        return problems[:20]
    spec = referencing.jsonschema.specification_with(
        str(schema.get("$schema", "")), default=referencing.jsonschema.DRAFT202012
    )
    root = _NO_RETRIEVAL.resolver_with_root(spec.create_resource(schema))
    defaults: list[tuple[_Path, dict[str, Any]]] = []
    for path, sub, scopes in _subschemas(schema):
        problems += _pattern_problems(path, sub, limits)
        problems += _ref_problems(path, sub, root, scopes, spec)
        if "default" in sub:
            defaults.append((path, sub))
    if problems:
        return problems
    validator = _new_validator(schema)
    for path, sub in defaults:
        try:
            errors = schema_errors(validator.evolve(schema=sub), sub["default"], limits)
        except PolyhostError as exc:
            problems.append(SchemaProblem((*path, "default"), exc.message))
            continue
        if errors:
            first = errors[0]
            where = error_path(first)
            problems.append(
                SchemaProblem(
                    (*path, "default"),
                    f"the default {short(sub['default'])} does not match its own schema: "
                    + (f"at '{where}': " if where else "")
                    + first.message,
                )
            )
    return problems


def _pattern_problems(path: _Path, sub: dict[str, Any], limits: Limits) -> list[SchemaProblem]:
    sources: list[tuple[_Path, Any]] = [((*path, "pattern"), sub.get("pattern"))]
    properties = sub.get("patternProperties")
    if isinstance(properties, dict):
        sources += [((*path, "patternProperties", key), key) for key in properties]
    problems = []
    for where, source in sources:
        if not isinstance(source, str):
            continue
        try:
            compile_pattern(source, limits)
        except PatternError as exc:
            message = str(exc)
            limit = "max_schema_pattern_bytes" if "compiles to more than" in message else None
            if limit:
                message += f" (limit {limit} = {limits.max_schema_pattern_bytes})"
            problems.append(SchemaProblem(where, f"pattern {short(source)}: {message}", limit))
    return problems


def _ref_problems(
    path: _Path, sub: dict[str, Any], root: Any, scopes: _Scopes, spec: Any
) -> Iterable[SchemaProblem]:
    # Resolve against the enclosing $ids: embedded resources are in the document too.
    resolver = root
    for scope in scopes:
        resolver = resolver.in_subresource(spec.create_resource(scope))
    for keyword in ("$ref", "$dynamicRef"):
        ref = sub.get(keyword)
        if not isinstance(ref, str):
            continue
        try:
            resolver.lookup(ref)
        except referencing.exceptions.Unresolvable:
            yield SchemaProblem(
                (*path, keyword),
                f"{keyword} {ref!r} does not point inside this schema: references resolve "
                "within the document only, and nothing is ever fetched",
            )


#: Node parameters that are themselves JSON Schemas, checked like any other schema.
SCHEMA_PARAMETERS: dict[str, tuple[str, ...]] = {
    "core.approval": ("schema",),
    "llm.chat": ("response_format",),
}


def schema_parameter_problems(
    node_type: str, params: Mapping[str, Any], limits: Limits | None = None
) -> list[ValidationError]:
    """The problems of a node's parameters that are schemas, as errors at their paths."""
    errors = []
    for key in SCHEMA_PARAMETERS.get(node_type, ()):
        value = params.get(key)
        if isinstance(value, dict):
            errors += [
                ValidationError(f"{key}: {p.message}", path=(key, *p.path))
                for p in _parameter_schema_problems(value, limits)
            ]
    return errors


# A schema parameter's problems by its JSON text and the limits they were found under: the same
# approval schema comes back in every run and every resume of a workflow, and checking a schema
# (its meta-schema, patterns and references) costs far more than writing it out.
_PARAMETER_SCHEMAS: dict[tuple[str, int], tuple[Limits | None, list[SchemaProblem]]] = {}


def _parameter_schema_problems(
    schema: dict[str, Any], limits: Limits | None
) -> list[SchemaProblem]:
    try:
        text = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        return schema_problems(schema, limits)
    key = (text, id(limits))
    cached = _PARAMETER_SCHEMAS.get(key)
    if cached is not None and cached[0] is limits:
        return cached[1]
    problems = schema_problems(schema, limits)
    if len(_PARAMETER_SCHEMAS) >= 1024:
        _PARAMETER_SCHEMAS.clear()
    _PARAMETER_SCHEMAS[key] = (limits, problems)
    return problems


def parameter_problem(
    type_name: str, schema: Mapping[str, Any] | None, params: Mapping[str, Any], limits: Limits
) -> tuple[str, str] | None:
    """The first problem of a node's resolved parameters: its message (naming the type) and its
    path within ``with`` (``""`` for the whole); None when they are fine."""
    if not schema:
        return None
    try:
        errors = schema_errors(validator_for(schema), params, limits)
        errors += schema_parameter_problems(type_name, params, limits)
    except PolyhostError as exc:
        return f"{type_name}: {exc.message}", ""
    error = jsonschema.exceptions.best_match(errors)
    if error is None:
        return None
    return f"{type_name}: {error.message}", ".".join(str(p) for p in error.absolute_path)
