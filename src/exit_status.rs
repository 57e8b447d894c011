//! The exit status of every command, returned by `main`: 0 all SUCCESS (or the command
//! did what it was asked), 1 some FAILED and none ERROR (report: drawn, but incomplete;
//! compare: something got worse), 2 some ERROR, or the command could not start or could
//! not record its results, 130 interrupted, 141 stdout was closed (`pairbench run |
//! head`: the run stopped like an interrupt). See the README, "Exit status".

use crate::tree::Counts;

/// A process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus(pub u8);

impl ExitStatus {
    pub const SUCCESS: ExitStatus = ExitStatus(0);
    pub const FAILED: ExitStatus = ExitStatus(1);
    pub const ERROR: ExitStatus = ExitStatus(2);
    pub const INTERRUPTED: ExitStatus = ExitStatus(130);
    /// 128 + SIGPIPE, what a shell reports for a program whose output pipe closed.
    pub const STDOUT_CLOSED: ExitStatus = ExitStatus(141);

    /// The status of a run with these counts.
    pub fn of_counts(c: Counts) -> ExitStatus {
        if c.error > 0 {
            ExitStatus::ERROR
        } else if c.failed > 0 {
            ExitStatus::FAILED
        } else {
            ExitStatus::SUCCESS
        }
    }

    /// A status given as a number (helpers, the agent); out of range is 2.
    pub fn from_code(code: i32) -> ExitStatus {
        u8::try_from(code).map_or(ExitStatus::ERROR, ExitStatus)
    }

    pub fn code(self) -> i32 {
        i32::from(self.0)
    }
}

impl std::process::Termination for ExitStatus {
    fn report(self) -> std::process::ExitCode {
        std::process::ExitCode::from(self.0)
    }
}
