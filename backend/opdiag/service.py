"""The use cases: diagnose one id, list recent operations, count verdicts, fill variables.

This is where sources, grouping, the engine, baselines and links meet; the CLI and the Flask
app only parse input and render output around it. Every finished operation is compared with
the last good runs of its type (``diagnosis.comparison``; the runs: ``diagnosis.baseline``):
the finished, completed runs the engine called healthy, found in the same source (all of a
file source, Jaeger's recent ``lookback_s`` window), minus those slow against the others;
``slow`` is judged against the median of exactly those runs. With too few runs the engine's
configured budget decides instead.

Diagnoses of finished operations never change, so they are kept in a bounded LRU cache
(the server asks for the same operation from several panels at once); unfinished ones are
always recomputed because ``stuck`` depends on ``now``. The service is shared by the
server's threads, so the cache is guarded by a lock; computing happens outside it.

A ``now`` in the source's past (more than a minute, the clock margin, before a recording's
last span or Jaeger's clock) judges what had happened by then: every trace read is cut to the spans
that had ended (``opdiag.asof``), for the operation, its neighbours, the listing and the
baselines alike, and those answers are cached under that moment (``opdiag.moment``).

The listing (the operations list, the verdict counts, Grafana's variables) lives in
``opdiag.listing``; its methods here delegate to it.

Jaeger calls: a source that offers ``recent_traces_for`` (``JaegerSource``) answers a cold
diagnosis from the live window it recently searched for the operations list or a baseline
(the baseline population itself is that same shared window: ``recent_traces`` of the
lookback). That answer may be up to ``jaeger.search_ttl_s`` old, which is only acceptable for an
operation that is finished — its traces no longer change. So an operation whose reused
traces show no terminal transition, or whose diagnosis says unfinished, is looked up again
with ``traces_for`` (Jaeger's current answer) and diagnosed from that.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from opdiag.diagnosis import engine, slow
from opdiag.diagnosis.baseline import (
    compared_with_runs,
    enough_runs,
    good_runs,
    has_other_good_run,
    is_healthy_run,
    judged_by_runs,
)
from opdiag.diagnosis.comparison import (
    change_phrase,
    compare,
    compare_with_baseline,
    never_ran,
    no_baseline,
    not_comparable,
    slow_reference,
)
from opdiag.diagnosis.facts import TERMINAL
from opdiag.diagnosis.result import Comparison, Diagnosis, copied
from opdiag.diagnosis.run_profile import RunProfile, run_profile
from opdiag.diagnosis.rushed import rushed
from opdiag.durations import human_ms
from opdiag.errors import InputError, NotFoundError, SourceUnavailableError
from opdiag.listing import OperationsListing
from opdiag.lru import LRUCache
from opdiag.model import SpanQuery, Trace, normalise_trace_id
from opdiag.moment import At, Lookup, final_answer, may_be_finished, not_yet, overlaps
from opdiag.operations import (
    UNKNOWN_TYPE,
    OperationTraces,
    find_operation,
    group_operations,
    last_status,
    type_of,
)
from opdiag.render.links import build_links
from opdiag.search_window import ALL_LIMIT, ALL_START_US, lookup_window
from opdiag.settings import Settings
from opdiag.sources.base import TraceSource
from opdiag.sources.budget import BudgetSpentError
from opdiag.timeutil import (
    ALL_END_US,
    US_PER_MS,
    US_PER_S,
    TimeRange,
    format_rfc3339,
    wall_clock_us,
)

if TYPE_CHECKING:
    from opdiag.diagnosis.rules import RuleSet

# A completed operation needed nothing from other traces; a cancelled one may have been
# cancelled because its worker had died (the neighbours say whether it had, before the cancel).
_SETTLED = frozenset({"completed"})


class DiagnosisService(OperationsListing):
    """Diagnoses from one trace source with one rule set; shared by all server threads."""

    def __init__(
        self,
        source: TraceSource,
        settings: Settings,
        rules: RuleSet | None = None,
        *,
        fork: bool = False,
        recording_clock: bool = False,
    ) -> None:
        """``fork``: a listing of a file source may compute half of its verdicts in a forked
        child (only for a process without threads: the CLI's one-shot commands).
        ``recording_clock``: without a given ``now``, trace files are judged at their end,
        not at the wall clock (the CLI's and the assistant's answers about a recording;
        ``opdiag serve`` judges at its clock, as it judges Jaeger)."""
        self._fork = fork
        self._recording_clock = recording_clock
        if rules is None:
            from opdiag.diagnosis.rules import load_rules

            rules = load_rules(list(settings.rule_packs))
        self.source = source
        self.settings = settings
        self.rules = rules
        self._final: LRUCache[Diagnosis] = LRUCache(settings.server.cache_size)  # links filled
        self._base: LRUCache[Diagnosis] = LRUCache(settings.server.cache_size)  # no baseline
        self._profiles: LRUCache[RunProfile] = LRUCache(settings.server.cache_size)

    # -- cache statistics -------------------------------------------------------------

    @property
    def cache_hits(self) -> int:
        return self._final.hits

    @property
    def cache_misses(self) -> int:
        return self._final.misses

    def cache_stats(self) -> dict[str, int]:
        """Counters for opdiag's own ``/metrics``."""
        return {
            "hits": self._final.hits,
            "misses": self._final.misses,
            "size": len(self._final),
            "capacity": self._final.capacity,
        }

    def default_now_us(self) -> int:
        """The moment judged at when none is given: the wall clock, or with
        ``recording_clock`` the end of trace files (their last span: they hold what was
        exported up to then, and the wall clock would call everything in flight in them
        stuck for as long as they have lain there)."""
        if self._recording_clock and self._is_file_source():
            return self.source.latest_us()  # type: ignore[attr-defined]
        return wall_clock_us()

    def clock_note(self, now_us: int | None) -> str | None:
        """What an answer says of its clock when that matters: judged by default at the end
        of trace files that ended longer ago than the stuck threshold. None for a given
        clock, the wall clock, files still being written."""
        if now_us is not None or not (self._recording_clock and self._is_file_source()):
            return None
        latest = self.default_now_us()
        behind_us = wall_clock_us() - latest
        if behind_us <= self.settings.diagnosis.stuck_after_s * US_PER_S:
            return None
        return (
            f"judged at {format_rfc3339(latest)}, when the traces end "
            f"({human_ms(behind_us / US_PER_MS)} before this machine's clock): what was in "
            "flight then is judged as it was then; give now (--now) to judge at another moment"
        )

    def _at(self, now_us: int | None) -> At:
        """The moment to judge at (None: ``default_now_us``) and whether it lies in the
        source's past: more than the clock margin before the latest moment it holds spans
        of (hosts' clocks, and the moments people give, a file name's second or a rounded
        ``--now``, are that far apart). A source that cannot say is judged as of its
        present."""
        now = self.default_now_us() if now_us is None else now_us
        latest = getattr(self.source, "latest_us", None)
        return At.judged(now, latest() if callable(latest) else None, wall_clock_us())

    # -- one operation ----------------------------------------------------------------

    def diagnose(
        self, ident: str, now_us: int | None = None, window: TimeRange | None = None
    ) -> Diagnosis:
        """Diagnose an operation id or a trace id; ``NotFoundError`` when no trace holds it.
        A live source is searched over ``window`` when given, else around the time in the id
        or before ``now_us`` (``opdiag.search_window``); files hold all of their time."""
        ident = (ident or "").strip()
        if not ident:
            raise InputError("empty operation or trace id", field="id")
        at = self._at(now_us)
        cached = self._final.get(at.key(ident))
        if cached is not None and overlaps(cached, window):
            return cached
        look = Lookup(at, window)
        group, reused = self._lookup(ident, look)
        if reused and not may_be_finished(group, self.rules.requested_status):
            group, reused = self._lookup(ident, look, fresh=True)
        base = self._base_diagnosis(group, at, ident=ident)
        if reused and not final_answer(base, at):  # reused traces: only for finished work
            group, reused = self._lookup(ident, look, fresh=True)
            base = self._base_diagnosis(group, at, ident=ident)
        if base.verdict == "not_found":  # traces matched, but nothing of the operation in them
            raise self._not_found(ident, look)
        final = base
        if compared_with_runs(base):
            healthy = self._healthy_runs(
                type_of(base, group), at, target=group, around_us=group.start_us
            )
            final = self._judged(base, group, self._good(healthy), at)
        final = self._finish(final, at, group.traces, own=final is not base)
        if final_answer(final, at):
            self._final.put(at.key(ident), final)
            if final.key != ident:
                self._final.put(at.key(final.key), final)
        elif not final.finished:  # its verdict depends on the clock: say which one
            note = self.clock_note(now_us)
            if note is not None:
                final = copied(final, warnings=[*final.warnings, note])
        return final

    def compare(
        self, ident: str, against: str, now_us: int | None = None
    ) -> tuple[Diagnosis, Diagnosis, Comparison]:
        """``ident`` against one chosen run ``against`` (``opdiag compare A B``): both
        diagnosed, then lined up phase by phase as if ``against`` were the only good run."""
        at = self._at(now_us)
        pair: list[tuple[Diagnosis, RunProfile]] = []
        for one in (ident, against):
            diagnosis = self.diagnose(one, now_us=at.now_us)
            group, _ = self._lookup(diagnosis.key, Lookup(at, None), fresh=not diagnosis.finished)
            pair.append((diagnosis, self._profile(group, diagnosis, at)))
        (this, this_profile), (other, other_profile) = pair
        if this.key == other.key:
            raise InputError("compare needs two different operations", field="against")
        types = (this_profile.operation_type or "", other_profile.operation_type or "")
        why = not_comparable(this, other, types)
        if why is not None:
            raise InputError(why, field="id" if never_ran(this) else "against")
        comparison = compare(
            this_profile,
            [other_profile],
            wanted=1,
            max_rows=self.settings.comparison.max_rows,
            against=other.key,
            order=list(self.settings.comparison.alike),
            paced=self.settings.comparison.strategy_paced,
        )
        return this, other, comparison

    def _traces(self, ident: str, look: Lookup, *, fresh: bool) -> tuple[list[Trace], bool]:
        """The traces of ``ident`` and whether they were reused from the source's recent
        window (``fresh`` asks the source itself, over the lookup's window)."""
        reuse = None if fresh else getattr(self.source, "recent_traces_for", None)
        if callable(reuse):
            found = reuse(ident)
            if found:
                return list(found), True
        return self.source.traces_for(ident, self._search_window(ident, look)), False

    def _search_window(self, ident: str, look: Lookup) -> TimeRange | None:
        lookback = int(self.settings.jaeger.lookback_s * US_PER_S)
        return lookup_window(ident, now_us=look.at.now_us, lookback_us=lookback, given=look.window)

    def _not_found(self, ident: str, look: Lookup) -> NotFoundError:
        """Not found, naming the window a live source searched."""
        message = f"no trace holds operation or trace id {ident!r}"
        window = None if self._is_file_source() else self._search_window(ident, look)
        if window is not None:
            message += (
                f" between {format_rfc3339(window.start_us)} and {format_rfc3339(window.end_us)}"
            )
        return NotFoundError(message)

    def _lookup(
        self, ident: str, look: Lookup, *, fresh: bool = False
    ) -> tuple[OperationTraces, bool]:
        """The operation ``ident`` names and whether its traces were reused."""
        traces, reused = self._traces(ident, look, fresh=fresh)
        if not traces:
            raise self._not_found(ident, look)
        seen = look.at.visible(traces)
        if not seen:
            raise not_yet(ident, traces, look.at.now_us)
        return self._group_for(ident, seen, look, fresh=fresh or not reused), reused

    def _group_for(
        self, ident: str, traces: list[Trace], look: Lookup, *, fresh: bool = True
    ) -> OperationTraces:
        """The operation ``ident`` names; a trace id of a one-operation trace means that
        operation (all its traces); otherwise the traces themselves."""
        patterns = self.settings.diagnosis.noise_span_patterns
        groups = group_operations(traces, patterns)
        group = find_operation(groups, ident)
        if group is not None and group.key != ident and group.operation_id is not None:
            more, _ = self._traces(group.operation_id, look, fresh=fresh)
            more = look.at.visible(more)
            grown = find_operation(group_operations(more, patterns), group.operation_id)
            return grown or group
        if group is not None:
            return group
        ordered = sorted(traces, key=lambda t: t.start_us)
        found_type = next((g.operation_type for g in groups), UNKNOWN_TYPE)
        return OperationTraces(
            key=ident,
            operation_id=ident if not _looks_like_trace_id(ident, ordered) else None,
            operation_type=found_type,
            traces=ordered,
            start_us=min(t.start_us for t in ordered),
            end_us=max(t.end_us for t in ordered),
            alone=False,
        )

    def _base_diagnosis(self, group: OperationTraces, at: At, ident: str) -> Diagnosis:
        """The engine's verdict before any baseline (budget only); finished ones cached."""
        cached = self._base.get(at.key(group.key))
        if cached is not None:
            return cached
        result = self._verdict(group, at, ident)
        if final_answer(result, at):
            self._base.put(at.key(group.key), result)
        return result

    def _verdict(self, group: OperationTraces, at: At, ident: str) -> Diagnosis:
        """``_base_diagnosis`` without the cache: the engine run on the group."""
        neighbours, problem, until_us = self._neighbours(group, at)
        run = partial(
            engine.diagnose,
            group.traces,
            ident=ident,
            operation_id=group.operation_id,
            rules=self.rules,
            settings=self.settings.diagnosis,
            now_us=at.now_us,
            neighbours=neighbours,
        )
        result = run(later=None if until_us is not None else ())
        if result.standby_unchecked and until_us is not None:
            later, trouble = self._later_checks(until_us, at)
            result = run(later=later)
            problem = problem or trouble
        if problem is not None:
            result.warnings.append(problem)
        if result.operation_type in (None, "", UNKNOWN_TYPE) and group.operation_type:
            result = copied(result, operation_type=group.operation_type)
        return result

    def _neighbours(
        self, group: OperationTraces, at: At
    ) -> tuple[list[Trace], str | None, int | None]:
        """Traces around the operation that may hold its cause (the pack's ``neighbours``):
        asked only for operations that did not complete. A source that
        cannot answer this second search leaves the diagnosis without them, and says so;
        a request whose Jaeger budget is spent fails instead (a watcher would otherwise
        record the verdict the missing evidence changed, and every later operation of the
        request would lose its neighbours at once). The third value: where the window
        ends when that is before now (health checks after it may still be asked for)."""
        spec = self.rules.neighbours
        search = getattr(self.source, "neighbour_traces", None)  # older custom sources lack it
        if not spec.active or search is None:
            return [], None, None
        status = last_status(group, self.rules.requested_status)
        if status in _SETTLED:
            return [], None, None
        end = group.end_us if status in TERMINAL else max(at.now_us, group.end_us)
        lo, hi = spec.window(group.start_us, end, at.now_us)
        queries = spec.queries_for(started=status is not None)
        found, problem = self._searched(
            lo, hi, queries, at, "evidence from neighbouring traces unavailable"
        )
        return found, problem, (hi if problem is None and hi <= at.now_us else None)

    def _later_checks(self, from_us: int, at: At) -> tuple[list[Trace], str | None]:
        """The health checks from the end of the neighbour window up to now, newest first
        (the source keeps the newest when there are more than ``max_traces``): whether the
        workers a lost one's run could go to still answer."""
        return self._searched(
            from_us, at.now_us + 1, self.rules.neighbours.probe_queries, at,
            "health checks after the operation unavailable",
        )

    def _searched(
        self, lo: int, hi: int, queries: Sequence[SpanQuery], at: At, unavailable: str
    ) -> tuple[list[Trace], str | None]:
        """The source's neighbour search, what ``at`` sees of it; a source that cannot
        answer leaves none and says so (``unavailable``: what is missing), a spent Jaeger
        budget fails the request."""
        try:
            found = self.source.neighbour_traces(  # type: ignore[attr-defined]
                lo, hi, queries, self.rules.neighbours.max_traces
            )
        except BudgetSpentError:
            raise
        except SourceUnavailableError as exc:
            return [], f"{unavailable}: {exc.message}"
        return at.visible(found), None

    def _profile(
        self,
        group: OperationTraces,
        diagnosis: Diagnosis,
        at: At,
        later: deque[tuple[str, RunProfile]] | None = None,
        *,
        lazy: bool = False,
    ) -> RunProfile:
        """The run's phases, error types and alike values; finished runs are kept
        (``later``: put there, for ``LRUCache.put_all``; ``lazy``: phases made when read,
        see ``run_profile``)."""
        key = at.key(group.key)
        final = final_answer(diagnosis, at)
        cached = self._profiles.get(key) if final else None
        if cached is not None:
            return cached
        profile = run_profile(
            diagnosis,
            group.traces,
            self.settings.comparison,
            self.settings.diagnosis.noise_span_patterns,
            lazy=lazy,
        )
        if profile.operation_type in (None, "", UNKNOWN_TYPE):
            profile.operation_type = type_of(diagnosis, group)  # a new profile: ours
        if final:
            if later is None:
                self._profiles.put(key, profile)
            else:
                later.append((key, profile))
        return profile

    def _good(self, healthy: Sequence[RunProfile]) -> list[RunProfile]:
        d = self.settings.diagnosis
        return good_runs(
            healthy,
            runs=self.settings.comparison.baseline_runs,
            min_runs=d.min_baseline_runs,
            slow_factor=d.slow_factor,
            order=list(self.settings.comparison.alike),
            paced=self.settings.comparison.strategy_paced,
            min_own=d.min_strategy_runs,
        )

    def _judged(
        self,
        base: Diagnosis,
        group: OperationTraces,
        good: Sequence[RunProfile],
        at: At,
        profile: RunProfile | None = None,
    ) -> Diagnosis:
        """``base`` with its comparison with the last good runs and, for a healthy or slow
        run, ``slow`` decided against the same baseline (too few runs: the budget stands).
        Without a good run of its type the run is not profiled at all. ``profile``: the
        run's profile when the caller has it."""
        d = self.settings.diagnosis
        op_type = type_of(base, group)
        if not has_other_good_run(good, group.key, op_type):
            comparison = no_baseline(
                float(base.duration_ms or 0.0), op_type, self.settings.comparison.baseline_runs
            )
            return copied(base, comparison=comparison)
        this = profile or self._profile(group, base, at)
        comparison, chosen = compare_with_baseline(
            this, good, self.settings.comparison,
            min_runs=d.min_baseline_runs, min_own=d.min_strategy_runs,
        )
        enough = enough_runs(
            chosen, comparison.matched_on, min_runs=d.min_baseline_runs,
            order=list(self.settings.comparison.alike), min_own=d.min_strategy_runs,
        )
        if judged_by_runs(base) and enough and comparison.baseline_ms:
            reference, basis = slow_reference(comparison)
            change = change_phrase(comparison) if comparison.judges_speed else None
            too_fast = rushed(this, chosen) if comparison.judges_speed else None
            out = slow.reassess_slow(
                base, reference, self.rules, d, change, basis=basis, rushed=too_fast
            )
            out.comparison = comparison  # a copy of its own: no second copy
            return out
        return copied(base, comparison=comparison)

    def _finish(
        self, diagnosis: Diagnosis, at: At, traces: Sequence[Trace], *, own: bool = False
    ) -> Diagnosis:
        """``diagnosis`` with its links (judged at ``at`` on ``traces``); ``own``: a copy
        nobody else holds yet (from ``_judged``), filled in place."""
        now_ms = at.link_now_ms(diagnosis, traces)
        links = build_links(diagnosis, self.settings.links, now_ms=now_ms)
        if own:
            diagnosis.links = links
            return diagnosis
        return copied(diagnosis, links=links)

    def _is_file_source(self) -> bool:
        try:
            from opdiag.sources.files import FileSource
        except ImportError:  # pragma: no cover - the module ships with opdiag
            return False
        return isinstance(self.source, FileSource)

    def _window(self, now_us: int, around_us: int | None = None) -> tuple[int, int, int]:
        """(start, end, trace limit) of the baseline population: the look-back before now,
        or around ``around_us`` (an operation's start) when that lies before it."""
        if self._is_file_source():
            return ALL_START_US, ALL_END_US, ALL_LIMIT
        lookback = int(self.settings.jaeger.lookback_s * US_PER_S)
        if around_us is not None and around_us < now_us - lookback:
            return around_us - lookback, around_us + lookback, self.settings.jaeger.search_limit
        return now_us - lookback, now_us + 1, self.settings.jaeger.search_limit

    def _healthy_runs(
        self,
        op_type: str,
        at: At,
        target: OperationTraces | None = None,
        around_us: int | None = None,
    ) -> list[RunProfile]:
        """Profiles of the healthy finished runs of ``op_type`` in the source's reach (the
        target among them, as in the operations list: which runs are slow is decided among
        them all); only same-type operations are diagnosed, cached ones not again."""
        if not op_type or op_type == UNKNOWN_TYPE:
            return []
        start, end, limit = self._window(at.now_us, around_us)
        traces = at.visible(self.source.recent_traces(start, end, limit))
        if target is not None and _only_target(traces, target):
            return []  # e.g. one big file holding just this operation: nothing to compare
        groups = group_operations(traces, self.settings.diagnosis.noise_span_patterns)
        out: list[RunProfile] = []
        for group in groups:
            if group.operation_type != op_type:  # the target stays: it may be another's baseline
                continue
            if last_status(group) != "completed":  # cannot be a healthy run: skip the engine
                continue
            diagnosis = self._base_diagnosis(group, at, ident=group.key)
            if is_healthy_run(diagnosis) and type_of(diagnosis, group) == op_type:
                out.append(self._profile(group, diagnosis, at))
        return out

    # -- many operations (``opdiag.listing``) -------------------------------------------


def _only_target(traces: Sequence[Trace], target: OperationTraces) -> bool:
    """True when the population is just the target's own traces and those hold no other
    operation: then there is nothing to compare with and no need to group again."""
    own = set(target.trace_ids)
    if any(t.trace_id not in own for t in traces):
        return False
    return target.alone


def _looks_like_trace_id(ident: str, traces: Sequence[Trace]) -> bool:
    wanted = normalise_trace_id(ident)
    return any(t.trace_id == wanted for t in traces)
