"""kill -9 and SIGTERM of a stage's whole process group at seeded random moments, each proven to land
mid-run: the re-run must give byte-identical files to the uninterrupted reference run (CHAOS_TRIALS
trials per stage and signal)."""
import signal

import pytest

from tests.chaos.harness import interrupt_trial, trial_seed, trials
from tests.chaos.registry import WHOLE_PIPELINE, all_names

# every trial is two runs of a stage: the timeout grows with CHAOS_TRIALS (make chaos N=50)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(max(900, 120 * trials()))]


def _trials(kind, sig, n, name, reference, stage_or_skip, report, tmp_path):
    cs = stage_or_skip(name)
    records = [interrupt_trial(reference, cs, sig, trial_seed(kind, name, i), tmp_path / f"t{i:03d}")
               for i in range(n)]
    summary = report(kind, name, records)
    bad = [r for r in records if not r["identical"]]
    assert not bad, summary + "\n" + "\n".join(f"seed {r['seed']}: {r['differences']}" for r in bad)
    return records


@pytest.mark.parametrize("name", all_names())
def test_kill_9_at_random_moments_then_rerun_is_byte_identical(name, reference, stage_or_skip, report, tmp_path):
    # the whole pipeline costs as much as all stages together: a fifth of the trials
    n = trials() if name != WHOLE_PIPELINE else max(1, trials() // 5)
    _trials("kill-9", signal.SIGKILL, n, name, reference, stage_or_skip, report, tmp_path)


@pytest.mark.parametrize("name", all_names())
def test_sigterm_at_random_moments_stops_the_group_and_rerun_is_byte_identical(
        name, reference, stage_or_skip, report, tmp_path):
    # the whole pipeline costs as much as all stages together: a fifth of the trials
    n = trials() if name != WHOLE_PIPELINE else max(1, trials() // 5)
    records = _trials("sigterm", signal.SIGTERM, n, name, reference, stage_or_skip, report, tmp_path)
    for r in records:   # every signal landed mid-run (the harness retries until it does), and then
        assert not r["finished_before_signal"] and r["exit_code"] != 0, r  # the run did not report success
