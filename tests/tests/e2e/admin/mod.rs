//! What a new administrator meets on a first day with inosync: refused
//! impossible targets, a quick stop, `add --target` meaning the destination,
//! `wait PATH` that says why it is still busy, a status table that fits a
//! terminal, man pages, log lines and first-run hints.

mod add_target;
mod first_run;
mod impossible_targets;
mod log_lines;
mod man_pages;
mod status_table;
mod wait;
