//! Group commit's patience: how long a writer waits for more commands to share a commit.

/// The longest a writer sleeps after a commit for others to share the next: see [`Linger`].
pub(super) const LINGER: std::time::Duration = std::time::Duration::from_millis(5);
/// Batches committed at once after sleeps that caught too little.
const LINGER_BACKOFF: u32 = 8;

/// Whether the SQLite writer, after a commit, waits for company before the next one. Each
/// commit costs about the same for one command as for a hundred (an fsync and the wake-ups
/// around it), and at a few hundred commands a second that is most of a command's CPU; so after each commit the writer sleeps [`LINGER`], then commits
/// whatever came meanwhile in one transaction. A command that finds the writer waiting on
/// an empty queue (idle) is committed at once. Sleeps that catch fewer than two commands
/// twice in a row (a single caller who waits for each answer) are not worth their latency:
/// the next [`LINGER_BACKOFF`] batches go at once.
#[derive(Debug, Default)]
pub(super) struct Linger {
    /// Consecutive sleeps that caught fewer than two commits.
    misses: u32,
    /// Commits left before the writer sleeps again.
    skip: u32,
}

impl Linger {
    /// A batch of `jobs` was gathered, after a sleep or not.
    pub(super) fn learn(&mut self, slept: bool, jobs: usize) {
        if !slept {
            return;
        }
        if jobs >= 2 {
            self.misses = 0;
            return;
        }
        self.misses += 1;
        if self.misses >= 2 {
            self.misses = 0;
            self.skip = LINGER_BACKOFF;
        }
    }

    /// Whether to sleep before the next batch.
    pub(super) fn after_commit(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::{LINGER_BACKOFF, Linger};

    /// Sleeps before batches, following what each sleep caught.
    fn sleeps(catches: &[usize]) -> Vec<bool> {
        let mut linger = Linger::default();
        let mut slept = false;
        catches
            .iter()
            .map(|&jobs| {
                let this = slept;
                linger.learn(slept, jobs);
                slept = linger.after_commit();
                this
            })
            .collect()
    }

    #[test]
    fn a_writer_under_load_keeps_sleeping_while_sleeps_gather_commits() {
        let taken = sleeps(&[1, 2, 3, 2, 1, 2, 2, 2]);
        assert_eq!(taken, [false, true, true, true, true, true, true, true]);
    }

    #[test]
    fn a_single_caller_who_waits_for_each_answer_is_not_kept_waiting_for_long() {
        let taken = sleeps(&[1; 24]);
        let waited = taken.iter().filter(|s| **s).count();
        // The sleep after the first commit and one more, then the backoff, and so on.
        let cycle = 2 + LINGER_BACKOFF as usize;
        assert_eq!(&taken[..3], [false, true, true]);
        assert!(taken[3..3 + LINGER_BACKOFF as usize].iter().all(|s| !s));
        assert!(waited <= 24_usize.div_ceil(cycle) * 2 + 1, "{taken:?}");
    }

    #[test]
    fn one_poor_sleep_among_good_ones_does_not_stop_the_sleeping() {
        let taken = sleeps(&[1, 1, 2, 1, 2, 1, 2]);
        assert!(taken[1..].iter().all(|s| *s), "{taken:?}");
    }
}
