//! End-to-end tests: the real inosyncd and inosyncctl binaries, real rsync, real
//! inotify, local directory targets. Every wait is a polled condition with a
//! deadline (`inosyncctl wait`, or a poll of the target tree).

mod admin;
mod backends;
mod bad_paths;
mod batching;
mod boundary;
mod churn;
mod cli;
mod config_formats;
mod control;
mod convergence;
mod excludes;
mod failing_target;
mod faults;
mod first_sync;
mod logs;
mod lsyncd;
mod metrics;
mod mirror;
mod nemesis;
mod odd_names;
mod persistence;
mod races;
mod remote_targets;
mod removals;
mod renames;
mod safety;
mod sandbox;
mod scheduling;
mod socket;
mod stopped_transfers;
mod systemd;
mod unsynced_at_a_stop;
mod verify;
mod watcher;
