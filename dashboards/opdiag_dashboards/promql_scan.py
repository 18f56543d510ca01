"""Small PromQL scanners for the lint (no PromQL parser is packaged for Python; promtool
parses the real thing in the tests). They work on the expressions this package writes:
strings in double quotes, selectors in braces, ranges in brackets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

FUNCTIONS = frozenset(
    {
        "abs",
        "absent",
        "absent_over_time",
        "avg",
        "avg_over_time",
        "bottomk",
        "ceil",
        "changes",
        "clamp",
        "clamp_max",
        "clamp_min",
        "count",
        "count_over_time",
        "count_values",
        "delta",
        "deriv",
        "floor",
        "group",
        "histogram_quantile",
        "idelta",
        "increase",
        "irate",
        "label_join",
        "label_replace",
        "last_over_time",
        "max",
        "max_over_time",
        "min",
        "min_over_time",
        "quantile",
        "quantile_over_time",
        "rate",
        "resets",
        "round",
        "scalar",
        "sort",
        "sort_desc",
        "stddev",
        "stdvar",
        "sum",
        "sum_over_time",
        "time",
        "timestamp",
        "topk",
        "vector",
    }
)
KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_BRACES = re.compile(r"\{[^}]*\}")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_IDENT = re.compile(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
# queries.promql.increase_in_range, with the same selector S in all four places:
# (increase(S[$__range]) and S offset $__range) or (last_over_time(S[$__range]) unless S offset
# $__range)
_IN_RANGE = re.compile(
    r"\(increase\((?P<s>[a-zA-Z_:][a-zA-Z0-9_:]*\{[^}]*\})\[\$__range\]\) "
    r"and (?P=s) offset \$__range\) "
    r"or \(last_over_time\((?P=s)\[\$__range\]\) unless (?P=s) offset \$__range\)"
)

# queries.promql.increase_in_interval, with the same selector S in all three places:
# ((S - last_over_time(S[$__range] offset $__interval)) >= 0) or S
_IN_INTERVAL = re.compile(
    r"\(\((?P<s>[a-zA-Z_:][a-zA-Z0-9_:]*\{[^}]*\}) - "
    r"last_over_time\((?P=s)\[\$__range\] offset \$__interval\)\) >= 0\) "
    r"or (?P=s)(?!\s*(?:\[|offset\b|@))"
)


def metric_names(expr: str) -> set[str]:
    """Metric names an expression reads."""
    text = _GROUPING.sub(" ", _STRING.sub('""', expr))
    text = _BRACKETS.sub(" ", _BRACES.sub(" ", text))
    names = set()
    for match in _IDENT.finditer(text):
        word = match.group(1)
        rest = text[match.end() :].lstrip()
        if word in KEYWORDS or (word in FUNCTIONS and rest.startswith("(")):
            continue
        names.add(word)
    return names


def matchers(expr: str) -> Iterator[tuple[str, str, str]]:
    """(label, operator, value) of every label matcher."""
    for selector in _SELECTOR.finditer(expr):
        yield from _MATCHER.findall(selector.group(2))


def calls(expr: str, function: str) -> Iterator[str]:
    """The argument text of every call of ``function``."""
    for match in re.finditer(rf"\b{function}\s*\(", expr):
        depth, start = 1, match.end()
        i = start
        while i < len(expr) and depth:
            depth += {"(": 1, ")": -1}.get(expr[i], 0)
            i += 1
        yield expr[start : i - 1]


def ranges(expr: str) -> list[str]:
    """Every range selector's duration text."""
    return [m.group(0)[1:-1] for m in _BRACKETS.finditer(_STRING.sub('""', expr))]


def selector_names_outside(expr: str, functions: tuple[str, ...]) -> set[str]:
    """Metric names used outside every call of ``functions``."""
    text = expr
    for function in functions:
        for arg in set(calls(text, function)):
            text = text.replace(f"{function}({arg})", f"{function}()")
    return metric_names(text)


def fold_increase_in_range(expr: str) -> str:
    """``expr`` with each exact ``increase_in_range(S)`` reduced to ``increase(S[$__range])``.

    That helper reads the raw counter twice (an ``offset`` guard and the last value of a series
    born in the range) on purpose; only this exact shape, with one selector throughout, is
    folded, so a bare counter anywhere else still counts as outside rate/increase.
    """
    expr = _IN_RANGE.sub(lambda m: f"increase({m['s']}[$__range])", expr)
    return fold_increase_in_interval(expr)


def fold_increase_in_interval(expr: str) -> str:
    """``expr`` with each exact ``increase_in_interval(S)`` reduced to
    ``increase(S[$__range])`` (only for the counter check: the step-wise count reads the raw
    counter, its last value before the step and its value at the step's end, on purpose)."""
    return _IN_INTERVAL.sub(lambda m: f"increase({m['s']}[$__range])", expr)
