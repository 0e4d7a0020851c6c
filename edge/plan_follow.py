"""Plan while parsing: the planner follows the parser chunk by chunk in worker threads.

The parser (edge.toolpath.parse.load) reports each finished chunk; the segments
it made are planned as one slice by plan_kernel.plan_range (a nogil kernel) in
a thread while the main thread parses the next chunk. Slices start WARM
segments early and look AHEAD segments past their end (plan_kernel), so they
add up to one whole pass; a slice is cut at a line boundary so that no two
threads ever add time to the same line. With a free core, parsing and planning
then take about the parser's time alone (CPU time is not lower).

The threads are private to one call: they share only the arrays they fill, hold
no locks and are joined before the call returns. One planner thread by default
(two cores busy at most), so a Pi keeps two cores for streaming and the agent.
This lives in edge/, not edge/toolpath/: the toolpath engine itself runs no
threads (ARCHITECTURE.md); it only offers the hooks (parse.load's on_chunk,
nogil kernels, analyze's loader) that this module drives.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from edge.config import Config, MotionSection
from edge.toolpath import plan_kernel as K
from edge.toolpath.model import SF_RAPID, Toolpath
from edge.toolpath.parse import Progress, load
from edge.toolpath.plan import EventLog, _mode, params_from_motion

MIN_SLICE = 1 << 17            # segments: a slice re-plans WARM + AHEAD extra, keep that small


class PlanFollower:
    """on_chunk callback for parse.load that plans the finished segments in the background."""

    def __init__(self, motion: MotionSection, start: tuple[float, float, float], threads: int = 1) -> None:
        self.events = EventLog(motion)
        self.param0 = params_from_motion(motion)
        self.mode = _mode(motion)
        self.start = np.asarray(start, np.float64)
        self.line_time: np.ndarray | None = None
        self.lines_seen = 0
        self.planned = 0                       # segments [0, planned) are submitted
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="plan")
        self.jobs: list[Future] = []

    def __call__(self, pr: Progress) -> None:
        if self.line_time is None:
            self.line_time = np.zeros(pr.total_lines, np.float32)
        self.events.scan(pr.line_flags, pr.letter, pr.code, self.lines_seen, pr.lines,
                         lambda i: _line_bytes(pr, i))
        self.lines_seen = pr.lines
        hi = pr.segments - K.AHEAD
        if hi - self.planned < MIN_SLICE:
            return
        seg_line = pr.seg["line"]
        while hi > self.planned and seg_line[hi - 1] == seg_line[hi]:
            hi -= 1                            # never split one line's segments between two slices
        if hi > self.planned:
            self._submit(pr.seg, self.planned, hi)

    def _submit(self, seg: dict[str, np.ndarray], lo: int, hi: int) -> None:
        self.jobs.append(self.pool.submit(
            K.plan_range, seg["line"], seg["x"], seg["y"], seg["z"], seg["de"], seg["f"], seg["flags"],
            self.start, *self.events.arrays(), self.param0, self.mode, SF_RAPID, lo, hi, self.line_time))
        self.planned = hi

    def submit_rest(self, tp: Toolpath) -> None:
        """Plan the segments not planned yet (the parse is complete); returns at once.
        tp.line_time is then the array the slices fill: read it only after wait()."""
        if self.line_time is None:             # an empty file: no chunk was reported
            self.line_time = np.zeros(tp.lines, np.float32)
        tp.line_time = self.line_time
        nseg = len(tp.seg_line)
        seg = {"line": tp.seg_line, "x": tp.seg_x, "y": tp.seg_y, "z": tp.seg_z, "de": tp.seg_de,
               "f": tp.seg_f, "flags": tp.seg_flags}
        self.events.scan(tp.line_flags, tp.letter, tp.code, self.lines_seen, tp.lines, tp.line_bytes)
        self.lines_seen = tp.lines
        if self.planned < nseg or not self.jobs:
            self._submit(seg, self.planned, nseg)   # the last slice also adds the trailing waits

    def wait(self) -> None:
        """Wait for every slice (re-raising a slice's error) and stop the threads."""
        try:
            for job in self.jobs:
                job.result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _line_bytes(pr: Progress, i: int) -> bytes:
    start = int(pr.offset[i])
    end = int(pr.offset[i + 1]) if i + 1 < pr.lines else pr.end
    return b"" if pr.mm is None else pr.mm[start:end].rstrip(b"\r\n")


def start_load_and_plan(path: str, motion: MotionSection, max_line_length: int = 96,
                        home: tuple[float, float, float] = (0.0, 0.0, 0.0),
                        threads: int = 1) -> tuple[Toolpath, PlanFollower]:
    """parse.load with the planner running behind the parser. Returns once the parse is
    done and the last slice is submitted: the caller may work on everything but
    tp.line_time (layers, checks) and must call follower.wait() before reading it."""
    follower = PlanFollower(motion, home, threads)
    try:
        tp = load(path, max_line_length=max_line_length, home=home, on_chunk=follower)
        follower.submit_rest(tp)
    except BaseException:
        follower.wait()
        raise
    return tp, follower


def load_and_plan(path: str, motion: MotionSection, max_line_length: int = 96,
                  home: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Toolpath:
    """parse.load + plan.plan, the planner running behind the parser."""
    tp, follower = start_load_and_plan(path, motion, max_line_length, home)
    follower.wait()
    return tp


def threaded_loader(threads: int = 1):
    """A loader for edge.toolpath.analysis.analyze: parse with the planner following in threads."""
    def loader(path: str, motion: MotionSection, max_line_length: int,
               home: tuple[float, float, float]) -> tuple[Toolpath, "object"]:
        tp, follower = start_load_and_plan(path, motion, max_line_length, home, threads)
        return tp, follower.wait
    return loader


def analyze(path, cfg: Config, threads: int = 1):
    """edge.toolpath.analyze with the planner following the parser (threads=0: one thread)."""
    from edge.toolpath.analysis import analyze as analyze_in_order
    return analyze_in_order(path, cfg, loader=threaded_loader(threads) if threads > 0 else None)
