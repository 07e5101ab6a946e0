//! Everything about running the real rsync binary: the command line, the list of
//! changed paths on its stdin, and what its exit code means.

mod command;
mod deletions;
mod exit_code;
mod renames;
mod run;
mod split;
mod ssh_reuse;
mod stderr;
mod stuck;
mod verify;

pub use command::{Job, display_argv};
#[cfg(test)]
pub use exit_code::first_retry;
pub use renames::Move;
pub use run::{Outcome, Progress, RunResult, run};
pub use split::{SPLIT_MIN_PATHS, by_directory as split_by_directory};
pub use ssh_reuse::{rsh_with_reuse, uses_remote_shell};
pub use verify::{Difference, compare};
