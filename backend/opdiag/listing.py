"""The operations list: every operation of a time range judged, filtered and counted.

A listing diagnoses in two passes. First every operation's verdict before any baseline (at
once; finished ones cached; a file's listing with ``fork`` has a forked child make half of
them), then, one operation at a time as the result is read, each finished run judged against
the good runs of its type found in the same listing, so a long listing is written out as it
is judged and never holds every final diagnosis. A caller that shows rows only gets what a
row shows, made without the comparison's phase rows and not cached. The verdict counts and
Grafana's template variables are read from the same range.

``OperationsListing`` is the half of ``DiagnosisService`` that lists: the service inherits it,
and it judges with the service's per-operation steps and fills the service's caches (the
members it declares for the type checker), holding nothing of its own.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from opdiag.diagnosis import slow
from opdiag.diagnosis.baseline import (
    compared_with_runs,
    enough_runs,
    has_other_good_run,
    is_healthy_run,
    judged_by_runs,
    select_baseline,
)
from opdiag.diagnosis.comparison import (
    baseline_totals,
    change_phrase,
    compare_with_baseline,
    slow_reference,
)
from opdiag.diagnosis.result import VERDICTS, Diagnosis, copied
from opdiag.diagnosis.run_profile import RunProfile
from opdiag.errors import InputError
from opdiag.globs import wildcard_match
from opdiag.moment import At, final_answer
from opdiag.operations import UNKNOWN_TYPE, OperationTraces, group_operations, type_of
from opdiag.render.links import row_links
from opdiag.search_window import ALL_LIMIT
from opdiag.timeutil import US_PER_MS

if TYPE_CHECKING:
    from opdiag.api.schemas import VariableRow, VerdictCountRow

VARIABLE_NAMES: tuple[str, ...] = ("operation_types", "verdicts", "services", "operation_ids")

P = ParamSpec("P")
T = TypeVar("T")


def listed(
    each: Callable[P, Iterator[T]], name: str, returns: str, doc: str
) -> Callable[P, list[T]]:
    """``each``'s results as a list, with ``each``'s parameters (one signature to keep)."""

    @functools.wraps(each)
    def listed(*args: P.args, **kwargs: P.kwargs) -> list[T]:
        return list(each(*args, **kwargs))

    listed.__name__ = name
    listed.__qualname__ = f"DiagnosisService.{name}"
    listed.__doc__ = doc
    listed.__signature__ = inspect.signature(each).replace(  # type: ignore[attr-defined]
        return_annotation=returns
    )
    return listed


class OperationsListing:
    """The listing half of ``DiagnosisService``, which inherits it: ``operations``,
    ``each_operation``, ``verdict_counts`` and ``variable_values``, judged with the
    service's per-operation steps and caches (the attributes declared below)."""

    if TYPE_CHECKING:  # what the service provides
        _final: Any
        _base: Any
        _profiles: Any
        _fork: Any
        source: Any
        settings: Any
        rules: Any

        def _is_file_source(self) -> bool: ...
        def _at(self, now_us: int | None) -> At: ...
        def _verdict(self, group: OperationTraces, at: At, ident: str) -> Diagnosis: ...
        def _profile(self, *args: Any, **kwargs: Any) -> RunProfile: ...
        def _good(self, healthy: Sequence[RunProfile]) -> list[RunProfile]: ...
        def _judged(self, *args: Any, **kwargs: Any) -> Diagnosis: ...
        def _finish(self, *args: Any, **kwargs: Any) -> Diagnosis: ...

    def each_operation(
        self,
        start_us: int,
        end_us: int,
        now_us: int | None = None,
        *,
        operation_types: Iterable[str] | None = None,
        verdicts: Iterable[str] | None = None,
        services: Iterable[str] | None = None,
        limit: int | None = None,
        rows: bool = False,
    ) -> Iterator[Diagnosis]:
        """``operations()`` one diagnosis at a time (bad arguments and an unavailable source
        raise here, before the first): a long listing is written out as it is judged.
        ``rows``: the caller shows only what a row of the list shows (``opdiag operations``):
        those fields are the same, but the diagnoses lack the comparison and every link but
        the row's two, and are not cached (a 200k-operation listing makes fewer objects)."""
        if end_us < start_us:
            raise InputError("'to' is before 'from'", field="to")
        if limit is not None and limit < 0:
            raise InputError("limit must not be negative", field="limit")
        at = self._at(now_us)
        types, wanted_verdicts, wanted_services = (
            _wanted(operation_types),
            _wanted(verdicts),
            _wanted(services),
        )
        everything = self._all(start_us, end_us, at, limit, rows=rows)
        # a service value may be a pattern: worker names carry a suffix per process start
        service_match = wildcard_match(wanted_services).fullmatch if wanted_services else None

        def wanted(d: Diagnosis) -> bool:
            if d.verdict == "not_found":
                return False
            if types is not None and (d.operation_type or UNKNOWN_TYPE) not in types:
                return False
            if wanted_verdicts is not None and d.verdict not in wanted_verdicts:
                return False
            return service_match is None or any(service_match(s) for s in d.services)

        kept = filter(wanted, everything)
        return kept if limit is None else islice(kept, limit)

    operations = listed(
        each_operation,
        "operations",
        "list[Diagnosis]",
        """Operations (and failed dispatches without an id) in the range, newest first.""",
    )

    def verdict_counts(
        self,
        start_us: int,
        end_us: int,
        bucket_us: int,
        now_us: int | None = None,
        *,
        operation_types: Iterable[str] | None = None,
        verdicts: Iterable[str] | None = None,
        services: Iterable[str] | None = None,
    ) -> list[VerdictCountRow]:
        """Operations started per epoch-aligned bucket and verdict; every verdict seen in
        the range gets a row in every bucket (zeros included) so time series stay aligned."""
        from opdiag.buckets import bucket_of, check_buckets, count_rows

        check_buckets(start_us, end_us, bucket_us)
        diagnoses = self.operations(
            start_us,
            end_us,
            now_us,
            operation_types=operation_types,
            verdicts=verdicts,
            services=services,
        )
        counts: dict[tuple[int, str], int] = {}
        for d in diagnoses:
            started_us = (d.started_at_ms or 0) * US_PER_MS
            if start_us <= started_us < end_us:
                key = (bucket_of(started_us, bucket_us), d.verdict)
                counts[key] = counts.get(key, 0) + 1
        return count_rows(counts, start_us, end_us, bucket_us)

    def variable_values(self, name: str, start_us: int, end_us: int) -> list[VariableRow]:
        """Values of a Grafana template variable (sorted; ids newest first)."""
        from opdiag.render.rows import variable_row

        if name not in VARIABLE_NAMES:
            raise InputError(
                f"unknown variable {name!r}; expected one of {', '.join(VARIABLE_NAMES)}",
                field="name",
            )
        if name == "verdicts":
            return [variable_row(v) for v in VERDICTS]
        traces = self.source.recent_traces(start_us, end_us, self._trace_limit())
        groups = group_operations(
            traces, self.settings.diagnosis.noise_span_patterns, whole=True
        )
        if name == "operation_types":
            return [variable_row(v) for v in sorted({g.operation_type for g in groups})]
        if name == "services":
            found = {s for g in groups for t in g.traces for s in t.services()}
            return [variable_row(v) for v in sorted(found)]
        return [variable_row(g.key) for g in groups]

    def _trace_limit(self, rows: int | None = None) -> int:
        """How many traces a listing reads: all of a file source; from Jaeger its search
        limit, or more when more rows are asked for."""
        if self._is_file_source():
            return ALL_LIMIT
        return max(self.settings.jaeger.search_limit, rows or 0)

    def _all(
        self, start_us: int, end_us: int, at: At, limit: int | None, *, rows: bool = False
    ) -> Iterator[Diagnosis]:
        """Every operation in the range, newest first, diagnosed in two passes: verdicts
        (here, at once), then baselines, one operation at a time as the result is read.
        ``rows``: see ``each_operation``."""
        traces = at.visible(self.source.recent_traces(start_us, end_us, self._trace_limit(limit)))
        groups = group_operations(
            traces, self.settings.diagnosis.noise_span_patterns, whole=True
        )
        finals: dict[str, Diagnosis] = {}
        todo: list[OperationTraces] = []
        for group in groups:
            cached = self._final.get(at.key(group.key))
            if cached is not None:
                finals[group.key] = cached
            else:
                todo.append(group)
        made = iter(self._first_pass(todo, at))
        bases: list[tuple[OperationTraces, Diagnosis] | None] = [
            (group, finals[group.key] if group.key in finals else next(made)) for group in groups
        ]
        healthy: dict[str, list[RunProfile]] = {}
        # profiles made here are used again below (the LRU may not hold a long listing's)
        profiles: dict[str, RunProfile] = {}
        kept = self._profiles.later()
        for group, diagnosis in filter(None, bases):
            if group.key not in finals and is_healthy_run(diagnosis):
                profile = self._profile(group, diagnosis, at, kept, lazy=rows)
                profiles[group.key] = profile
                healthy.setdefault(type_of(diagnosis, group), []).append(profile)
        # the cache keeps whole profiles (a lazy one would hold its spans)
        self._profiles.put_all((key, _whole(profile)) for key, profile in kept)
        good = {op_type: self._good(runs) for op_type, runs in healthy.items()}
        # newest first (a stable sort: equal keys keep the grouping's order)
        order = sorted(range(len(bases)), key=lambda i: _newest(bases[i]), reverse=True)
        return self._second_pass(bases, order, finals, good, profiles, at=at, rows=rows)

    def _first_pass(self, groups: list[OperationTraces], at: At) -> list[Diagnosis]:
        """The verdicts before any baseline, in ``groups``' order, finished ones put in the
        base cache at the end (a file's listing with ``fork``: half of them made by a forked
        child, which cannot put them there itself)."""

        def base(group: OperationTraces) -> Diagnosis:
            cached = self._base.get(at.key(group.key))
            return cached if cached is not None else self._verdict(group, at, group.key)

        if self._fork and self._is_file_source():
            from opdiag.forked import split_map

            made = split_map(base, groups)
        else:
            made = [base(g) for g in groups]
        later = self._base.later()  # only the last ``capacity`` would stay in the LRU
        later.extend(
            (at.key(g.key), d) for g, d in zip(groups, made, strict=True) if final_answer(d, at)
        )
        self._base.put_all(later)
        return made

    def _second_pass(
        self,
        bases: list[tuple[OperationTraces, Diagnosis] | None],
        order: Sequence[int],
        finals: dict[str, Diagnosis],
        good: dict[str, list[RunProfile]],
        profiles: dict[str, RunProfile],
        *,
        at: At,
        rows: bool,
    ) -> Iterator[Diagnosis]:
        """The second pass, in ``order``: each verdict is let go once judged, so a listing
        read row by row holds the first pass's verdicts, never every final diagnosis.
        ``rows``: a caller that shows rows only, for whom what a row shows is made the same
        way and nothing else is made or cached (``_for_row``)."""
        for group, diagnosis in _taken(bases, order):
            final = finals.get(group.key)
            if final is None:
                same = good.get(type_of(diagnosis, group), [])
                profile = profiles.get(group.key)
                if rows:
                    final = self._for_row(diagnosis, group, same, at, profile)
                else:
                    final = self._final_of(diagnosis, group, same, at, profile)
            yield final

    def _final_of(
        self,
        diagnosis: Diagnosis,
        group: OperationTraces,
        good: Sequence[RunProfile],
        at: At,
        profile: RunProfile | None,
    ) -> Diagnosis:
        """The listing's final diagnosis of one operation, as ``diagnose`` makes it (judged
        against the listing's good runs when finished), cached when it can no longer change."""
        final = diagnosis
        if compared_with_runs(diagnosis):
            final = self._judged(diagnosis, group, good, at, profile)
        final = self._finish(final, at, group.traces, own=final is not diagnosis)
        if final_answer(final, at):
            self._final.put(at.key(group.key), final)
        return final

    def _for_row(
        self,
        base: Diagnosis,
        group: OperationTraces,
        good: Sequence[RunProfile],
        at: At,
        profile: RunProfile | None,
    ) -> Diagnosis:
        """``_finish(_judged(base, …))`` as far as a row of the operations list shows it:
        the same verdict and summary (``slow`` decided against the same baseline median,
        only when that changes a finding) and the row's two links, without the comparison's
        phase rows (made only when a slow finding's text names the phase that changed most)
        or the other links."""
        op_type = type_of(base, group)
        # only a run that may be slow has its verdict decided again against the baseline
        if judged_by_runs(base) and has_other_good_run(good, group.key, op_type):
            d, c = self.settings.diagnosis, self.settings.comparison
            this = profile or self._profile(group, base, at)
            chosen, matched = select_baseline(
                this, good, runs=c.baseline_runs, min_runs=d.min_baseline_runs,
                order=list(c.alike), min_own=d.min_strategy_runs, paced=c.strategy_paced,
            )
            totals = baseline_totals(this, chosen, matched, c)
            reference, basis = slow_reference(totals)
            if (
                enough_runs(
                    chosen, matched, min_runs=d.min_baseline_runs, order=list(c.alike),
                    min_own=d.min_strategy_runs,
                )
                and totals.baseline_ms
                and slow.reassess_changes(base, reference, self.rules, d)
            ):

                def change() -> str | None:
                    if not totals.judges_speed:
                        return None
                    comparison, _ = compare_with_baseline(
                        this, good, c, min_runs=d.min_baseline_runs,
                        min_own=d.min_strategy_runs,
                    )
                    return change_phrase(comparison)

                out = slow.reassess_slow(
                    base, reference, self.rules, d, change, basis=basis
                )
                now_ms = at.link_now_ms(out, group.traces)
                # a copy of its own
                out.links = row_links(out, self.settings.links, now_ms)
                return out
        now_ms = at.link_now_ms(base, group.traces)
        return copied(base, links=row_links(base, self.settings.links, now_ms))


def _taken(
    bases: list[tuple[OperationTraces, Diagnosis] | None], order: Sequence[int]
) -> Iterator[tuple[OperationTraces, Diagnosis]]:
    """The first pass's entries in ``order``, each let go as it is handed out (a long
    listing never holds every final diagnosis)."""
    for i in order:
        entry = bases[i]
        bases[i] = None
        assert entry is not None
        yield entry


def _wanted(values: Iterable[str] | None) -> set[str] | None:
    """The values a filter keeps; None (no filter) for none given or only empty ones."""
    if values is None:
        return None
    wanted = {v for v in values if v}
    return wanted or None


def _whole(profile: RunProfile) -> RunProfile:
    """``profile`` with its phases made (a lazy one makes them when first read)."""
    _ = profile.phases
    return profile


def _newest(entry: tuple[OperationTraces, Diagnosis] | None) -> tuple[int, str]:
    """The listing's order key (newest first when reversed)."""
    assert entry is not None
    diagnosis = entry[1]
    return (diagnosis.started_at_ms or 0, diagnosis.key)
