//! Everything about running the real rsync binary: the command line, the list of
//! changed paths on its stdin, the one place its processes (and the ssh of the
//! renames) are started, and what a finished run means.

mod classify;
mod command;
mod deletions;
mod exit_code;
mod guarded;
mod into_empty;
mod job;
mod launch;
mod left_out;
mod leftovers;
mod listing;
mod made;
mod newline_names;
mod outcome;
mod policy;
mod priority;
mod process_group;
mod renames;
mod root_attributes;
mod run;
mod split;
mod ssh_reuse;
mod stderr;
mod stdout;
mod stdout_file;
mod stuck;
mod supervise;
mod user_options;
mod verify;
mod watchdog;

#[cfg(test)]
pub use exit_code::class_of;
pub use into_empty::{may_cut as may_cut_full_sync, top_level_count};
pub use job::{FullPart, Job, Move};
pub use leftovers::{
    PARTIAL_DIR, below_partial_dir, file_of_temp, may_go_without_partial_dir,
    parents as leftover_dirs, partial_dir_name,
};
pub use listing::arg_max;
#[cfg(test)]
pub use outcome::FailureClass;
pub use outcome::{Outcome, Progress, RunResult};
pub use policy::{Launcher, Policy};
pub use run::run;
pub use split::{SPLIT_MIN_PATHS, by_directory as split_by_directory};
pub use ssh_reuse::{rsh_with_reuse, uses_remote_shell};
pub use user_options::options as user_options;
pub use verify::{CompareError, Difference, compare};
