//! `inosyncctl reload` and SIGHUP: re-read the config and reconcile, keeping
//! pending changes, runtime settings, and unchanged watches untouched (no resync).

use super::batch::FullReason;
use tokio::time::Instant;

use inosync_proto::Source;

use super::{Engine, Refusal};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::config::layout::Layout;
use crate::config::{Config, WatchConfig, resolve_rsync, same_place};

/// What a reload did to the watches.
#[derive(Debug, Default)]
struct Counts {
    added: usize,
    removed: usize,
    changed: usize,
    unchanged: usize,
}

impl Engine {
    pub(super) fn reload(&mut self) -> Result<String, Refusal> {
        let Some(file) = self.config.source.clone() else {
            return Err(Refusal::NoConfigFile);
        };
        let mut new = Config::load(&file).map_err(Refusal::Config)?;
        if let Some(delay) = self.cli_delay {
            new.delay = delay;
            for watch in &mut new.watches {
                watch.delay = None;
            }
        }
        if let Some(backend) = self.cli_backend {
            new.backend = backend;
        }
        if !self.policy.pretend() {
            new.rsync = resolve_rsync(&new.rsync).map_err(Refusal::Check)?;
        }
        self.check_runtime_watches_under(&new)?;
        let mut notes = self.keep_restart_only_settings(&mut new);
        let interval_changed = new.full_sync_interval != self.config.full_sync_interval
            || new.verify_interval != self.config.verify_interval;
        // Each watch's `delete` as it was: a global change reaches watches
        // whose own spec did not change (see `reconcile`).
        let deleting_before: HashMap<u32, crate::config::DeleteMode> = self
            .watches
            .iter()
            .map(|(id, w)| (*id, w.spec.effective_delete(&self.config)))
            .collect();
        self.config = new;
        // The places the local targets lead to now are the ones meant.
        self.retarget_local_targets();
        if interval_changed {
            self.reset_periodic_full_sync();
        }

        let Counts {
            added,
            removed,
            changed,
            unchanged,
        } = self.reconcile_watches(&mut notes, &deleting_before)?;
        if added > 0 {
            // The filesystems of the new roots, recorded.
            self.persist();
        }
        self.restart_for_speed();
        notes.extend(self.runtime_overrides());
        let mut summary = format!(
            "reloaded {}: {added} watch(es) added, {removed} removed (after their pending changes), {changed} changed, {unchanged} unchanged",
            file.display()
        );
        for note in notes {
            summary.push_str("; ");
            summary.push_str(&note);
        }
        tracing::info!("{summary}");
        Ok(summary)
    }

    /// Settings only a restart applies: noted when changed, and kept as they
    /// are in force, so that `status` tells the truth.
    fn keep_restart_only_settings(&self, new: &mut Config) -> Vec<String> {
        let mut notes = Vec::new();
        if new.events != self.config.events {
            notes.push("`events` changed: takes effect after a restart".to_string());
        }
        if new.sandbox != self.config.sandbox {
            notes.push("`sandbox` changed: takes effect after a restart".to_string());
        }
        if new.backend != self.config.backend {
            notes.push("`backend` changed: takes effect after a restart".to_string());
        }
        if new.metrics_listen != self.config.metrics_listen
            || new.metrics_file != self.config.metrics_file
        {
            notes.push(
                "`metrics_listen`/`metrics_file` changed: take effect after a restart".to_string(),
            );
        }
        if new.log_file != self.config.log_file {
            notes.push("`log_file` changed: takes effect after a restart".to_string());
        }
        if new.socket_group != self.config.socket_group {
            notes.push("`socket_group` changed: takes effect after a restart".to_string());
        }
        new.events = self.config.events;
        new.backend = self.config.backend;
        new.sandbox = self.config.sandbox;
        new.metrics_listen = self.config.metrics_listen;
        new.metrics_file = self.config.metrics_file.clone();
        new.log_file = self.config.log_file.clone();
        new.socket_group = self.config.socket_group.clone();
        notes
    }

    /// The watches made to match the config: removed, restored, changed,
    /// added; runtime watches follow the new global settings.
    fn reconcile_watches(
        &mut self,
        notes: &mut Vec<String>,
        deleting_before: &HashMap<u32, crate::config::DeleteMode>,
    ) -> Result<Counts, Refusal> {
        let mut counts = Counts::default();
        // Watches by path: one look-up per config watch, not a search of them all.
        let watched: HashMap<PathBuf, (u32, Source)> = self
            .watches
            .iter()
            .map(|(id, w)| (w.spec.path.clone(), (*id, w.origin)))
            .collect();
        let wanted: HashSet<&Path> = self
            .config
            .watches
            .iter()
            .map(|c| c.path.as_path())
            .collect();
        let gone: Vec<u32> = self
            .watches
            .iter()
            .filter(|(_, w)| w.origin == Source::Config && w.removing.is_none())
            .filter(|(_, w)| !wanted.contains(w.spec.path.as_path()))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.begin_removal(id, false, None);
            counts.removed += 1;
        }
        // New watches are checked against one layout of the watches there are
        // (config watches with their new settings), built once.
        let mut layout = self.layout_after_reload();
        for spec in self.config.watches.clone() {
            let path = spec.path.display().to_string();
            // Removed with `inosyncctl remove` (done, or waiting for its
            // changes): the removal stands.
            if self.runtime.removed.contains(&path) || self.runtime.removing.contains(&path) {
                continue;
            }
            match watched.get(&spec.path).copied() {
                Some((id, Source::Config)) if self.watches[&id].removing.is_some() => {
                    match self.cancel_removal(id) {
                        Ok(()) => counts.added += 1,
                        Err(e) => notes.push(format!("{path} not watched again: {e}")),
                    }
                    self.reconcile(id, spec, deleting_before.get(&id).copied())?;
                }
                Some((id, Source::Config)) => {
                    if self.reconcile(id, spec, deleting_before.get(&id).copied())? {
                        counts.changed += 1;
                    } else {
                        counts.unchanged += 1;
                    }
                }
                Some(_) => notes.push(format!(
                    "{path} is in the config but was added at runtime; the runtime watch is kept"
                )),
                None => {
                    let places = self.config.places(&spec);
                    match layout
                        .check(&places)
                        .map_err(Refusal::Layout)
                        .and_then(|()| self.open_watch(spec, Source::Config, true))
                    {
                        Ok(id) => {
                            layout.insert(id as usize, &places);
                            counts.added += 1;
                        }
                        Err(e) => notes.push(format!("{path} not added: {e}")),
                    }
                }
            }
        }
        // Runtime watches follow the new global excludes and default targets.
        let runtime_watches: Vec<(u32, WatchConfig)> = self
            .watches
            .iter()
            .filter(|(_, w)| w.origin == Source::Runtime && w.removing.is_none())
            .map(|(id, w)| (*id, w.spec.clone()))
            .collect();
        for (id, spec) in runtime_watches {
            if self.reconcile(id, spec, deleting_before.get(&id).copied())? {
                counts.changed += 1;
            }
        }
        Ok(counts)
    }

    /// Runtime values that still win over the config just read, so an
    /// administrator who edited the config knows why it seems not to apply.
    fn runtime_overrides(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(speed) = self.runtime.speed {
            notes.push(format!(
                "runtime speed {speed} KB/s overrides the config's {} (`inosyncctl speed --reset` drops it)",
                self.config.speed
            ));
        }
        if let Some(delay) = self.runtime.delay {
            notes.push(format!(
                "runtime delay {delay} s overrides the config's {} s (`inosyncctl delay --reset` drops it)",
                self.config.delay
            ));
        }
        for watch in self.watches.values().filter(|w| w.origin == Source::Config) {
            let path = watch.spec.path.display();
            if let Some(speed) = watch.speed_override {
                notes.push(format!(
                    "runtime speed {speed} KB/s overrides the config for {path} \
                     (`inosyncctl speed --reset --watch {path}`)"
                ));
            }
            if let Some(delay) = watch.delay_override {
                notes.push(format!(
                    "runtime delay {delay} s overrides the config for {path} \
                     (`inosyncctl delay --reset --watch {path}`)"
                ));
            }
        }
        notes
    }

    /// Runtime watches follow the new config's default targets: refuse a config
    /// under which one of their destinations would overlap a watched tree or
    /// another destination.
    fn check_runtime_watches_under(&self, new: &Config) -> Result<(), Refusal> {
        let runtime: Vec<&WatchConfig> = self
            .watches
            .values()
            .filter(|w| w.origin == Source::Runtime && w.removing.is_none())
            .map(|w| &w.spec)
            .collect();
        // A config watch of a path watched at runtime is not opened (the runtime
        // one is kept).
        let kept: HashSet<&Path> = runtime.iter().map(|s| s.path.as_path()).collect();
        let mut layout = Layout::default();
        for (i, watch) in new.watches.iter().enumerate() {
            if !kept.contains(watch.path.as_path()) {
                layout.insert(i, &new.places(watch));
            }
        }
        for (i, spec) in runtime.iter().enumerate() {
            layout
                .add(new.watches.len() + i, &new.places(spec))
                .map_err(Refusal::Layout)?;
            // The new global excludes with the watch's own must still fit on
            // rsync's command line: refused here, before anything changed.
            let mut patterns = new.excludes.clone();
            patterns.extend(spec.excludes.iter().cloned());
            crate::exclude::check_list(&patterns).map_err(|e| {
                Refusal::Config(crate::config::ConfigError(format!(
                    "watch {} (added at runtime): {e}",
                    spec.path.display()
                )))
            })?;
        }
        Ok(())
    }

    /// Every watch's places as they will be once the config just read is in
    /// force: config watches with their new spec, the others as they are.
    fn layout_after_reload(&self) -> Layout {
        let specs: HashMap<&Path, &WatchConfig> = self
            .config
            .watches
            .iter()
            .map(|w| (w.path.as_path(), w))
            .collect();
        let mut layout = Layout::default();
        for (id, watch) in &self.watches {
            let spec = match watch.origin {
                Source::Config => specs.get(watch.spec.path.as_path()).copied(),
                _ => None,
            };
            layout.insert(
                *id as usize,
                &self.config.places(spec.unwrap_or(&watch.spec)),
            );
        }
        layout
    }

    /// A config watch that an earlier reload removed, still syncing its last
    /// changes, is in the config again: the removal is cancelled, the tree is
    /// watched again, and a full sync covers what changed while it was not.
    fn cancel_removal(&mut self, id: u32) -> Result<(), Refusal> {
        let Some(watch) = self.watches.get_mut(&id) else {
            return Ok(());
        };
        for (_, reply) in watch.removing.take().into_iter().flatten() {
            let _ = reply.send(Ok(false));
        }
        let now = Instant::now();
        for pair in &mut watch.pairs {
            pair.record_full(now, true, FullReason::Reload);
        }
        let (path, excludes) = (watch.spec.path.clone(), watch.excludes.clone());
        tracing::info!("{}: back in the config; removal cancelled", path.display());

        self.watcher
            .add_root(id, &path, excludes)
            .map_err(|error| Refusal::CannotWatch {
                path: path.clone(),
                error,
            })?;
        self.watcher.scan_root(id, None);
        Ok(())
    }

    /// Brings one watch in line with its (new) spec. New or changed excludes, new
    /// targets and new destinations get a full sync (a destination spelled
    /// otherwise, `/m/t` for `/m/t/`, or the same directory reached through
    /// another target and `remote_path`, is the same one: see [`same_place`];
    /// its pending changes stay), and so does a `delete`
    /// (its own or the global one, which was `deleting_before`) whose full
    /// syncs now delete where they did not: what the source lacks goes from
    /// the target now. Pairs that did not change keep their pending changes
    /// and are not resynced. Returns whether anything changed.
    fn reconcile(
        &mut self,
        id: u32,
        spec: WatchConfig,
        deleting_before: Option<crate::config::DeleteMode>,
    ) -> Result<bool, Refusal> {
        let excludes = self.excludes_for(&spec)?;
        let wanted: Vec<(String, String)> = spec
            .effective_targets(&self.config)
            .iter()
            .map(|t| (t.clone(), crate::config::destination(t, &spec.remote_path)))
            .collect();
        let now = Instant::now();
        let mut new_pairs = Vec::new();
        let mut respelled = Vec::new();
        for (target, destination) in &wanted {
            let existing = self.watches[&id]
                .pairs
                .iter()
                .position(|p| same_place(p.destination(), destination));
            match existing {
                Some(index) => respelled.push((index, target.clone(), destination.clone())),
                None => {
                    let mut pair = self.new_pair(target.clone(), destination.clone());
                    pair.record_full(now, true, FullReason::Reload);
                    new_pairs.push(pair);
                }
            }
        }
        let Some(watch) = self.watches.get_mut(&id) else {
            return Ok(false);
        };
        // A pair kept for a target spelled otherwise goes by the new spelling:
        // status and logs show what the config says, and a symlink it named is
        // not followed any more. Where it was first written to goes with it,
        // so that a symlink re-pointed before its next run is still caught
        // (`Policy::moved_target`; a review).
        let kept: HashSet<usize> = respelled.iter().map(|(index, ..)| *index).collect();
        for (index, target, destination) in respelled {
            let pair = &mut watch.pairs[index];
            self.policy.respell(pair.destination(), &destination);
            pair.respell(target, destination);
        }
        let mut changed = !new_pairs.is_empty() || watch.spec != spec;
        let before = watch.pairs.len();
        // Only the pairs matched above stay: two that lead to one directory
        // now (a symlink re-pointed) are not both kept for one target.
        let mut index = 0;
        watch.pairs.retain_mut(|p| {
            let keep = kept.contains(&index);
            index += 1;
            if !keep {
                p.interrupt();
            }
            keep
        });
        changed |= watch.pairs.len() != before;
        watch.pairs.extend(new_pairs);
        if excludes.patterns() != watch.excludes.patterns() {
            changed = true;
            watch.excludes = excludes.clone();
            for pair in &mut watch.pairs {
                pair.record_full(now, true, FullReason::Reload);
            }
            self.watcher.set_excludes(id, excludes);
        }
        let deleting = spec.effective_delete(&self.config);
        if let (Some(before), Some(watch)) = (deleting_before, self.watches.get_mut(&id))
            && before != deleting
        {
            changed = true;
            if deleting.full_sync_deletes(false) && !before.full_sync_deletes(false) {
                for pair in &mut watch.pairs {
                    pair.record_full(now, true, FullReason::Reload);
                }
            }
        }
        if let Some(watch) = self.watches.get_mut(&id) {
            watch.spec = spec;
        }
        Ok(changed)
    }
}
