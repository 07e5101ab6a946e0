//! `inosyncctl reload` and SIGHUP: re-read the config and reconcile, keeping
//! pending changes, runtime settings, and unchanged watches untouched (no resync).

use super::pair::FullReason;
use tokio::time::Instant;

use inosync_proto::Source;

use super::Engine;
use crate::config::{Config, WatchConfig, layout, resolve_rsync};

impl Engine {
    pub(super) fn reload(&mut self) -> Result<String, String> {
        let Some(file) = self.config.source.clone() else {
            return Err("started without a config file (quick start): nothing to reload".into());
        };
        let mut new = Config::load(&file).map_err(|e| e.to_string())?;
        if let Some(delay) = self.cli_delay {
            new.delay = delay;
            for watch in &mut new.watches {
                watch.delay = None;
            }
        }
        if self.runner.needs_rsync() {
            new.rsync = resolve_rsync(&new.rsync)?;
        }
        self.check_runtime_watches_under(&new)?;
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
        let interval_changed = new.full_sync_interval != self.config.full_sync_interval
            || new.verify_interval != self.config.verify_interval;
        // Keep settings that only a restart can apply, so status tells the truth.
        new.events = self.config.events;
        new.backend = self.config.backend;
        new.sandbox = self.config.sandbox;
        new.metrics_listen = self.config.metrics_listen;
        new.metrics_file = self.config.metrics_file.clone();
        new.log_file = self.config.log_file.clone();
        new.socket_group = self.config.socket_group.clone();
        self.config = new;
        if interval_changed {
            self.reset_periodic_full_sync();
        }

        let (mut added, mut removed, mut changed, mut unchanged) = (0, 0, 0, 0);
        let gone: Vec<u32> = self
            .watches
            .iter()
            .filter(|(_, w)| w.origin == Source::Config && w.removing.is_none())
            .filter(|(_, w)| !self.config.watches.iter().any(|c| c.path == w.spec.path))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.begin_removal(id, false, None);
            removed += 1;
        }
        for spec in self.config.watches.clone() {
            let path = spec.path.display().to_string();
            if self.runtime.removed.contains(&path) {
                continue;
            }
            match self
                .watches
                .iter()
                .find(|(_, w)| w.spec.path == spec.path)
                .map(|(id, w)| (*id, w.origin))
            {
                Some((id, Source::Config)) => {
                    if self.reconcile(id, spec)? {
                        changed += 1;
                    } else {
                        unchanged += 1;
                    }
                }
                Some(_) => notes.push(format!(
                    "{path} is in the config but was added at runtime; the runtime watch is kept"
                )),
                None => match self
                    .check_free(&spec)
                    .and_then(|()| self.open_watch(spec, Source::Config, true))
                {
                    Ok(_) => added += 1,
                    Err(e) => notes.push(format!("{path} not added: {e}")),
                },
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
            if self.reconcile(id, spec)? {
                changed += 1;
            }
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
    fn check_runtime_watches_under(&self, new: &Config) -> Result<(), String> {
        let runtime: Vec<&WatchConfig> = self
            .watches
            .values()
            .filter(|w| w.origin == Source::Runtime && w.removing.is_none())
            .map(|w| &w.spec)
            .collect();
        for (i, spec) in runtime.iter().enumerate() {
            let places = new.places(spec);
            layout::check_watch(&places)?;
            for other in new.watches.iter().filter(|c| c.path != spec.path) {
                layout::check_pair(&places, &new.places(other))?;
            }
            for other in &runtime[..i] {
                layout::check_pair(&places, &new.places(other))?;
            }
        }
        Ok(())
    }

    /// Brings one watch in line with its (new) spec. New or changed excludes, new
    /// targets and new destinations get a full sync; pairs that did not change keep
    /// their pending changes and are not resynced. Returns whether anything changed.
    fn reconcile(&mut self, id: u32, spec: WatchConfig) -> Result<bool, String> {
        let excludes = self.excludes_for(&spec)?;
        let wanted: Vec<(String, String)> = spec
            .effective_targets(&self.config)
            .iter()
            .map(|t| (t.clone(), crate::config::destination(t, &spec.remote_path)))
            .collect();
        let now = Instant::now();
        let mut new_pairs = Vec::new();
        for (target, destination) in &wanted {
            let exists = self.watches[&id]
                .pairs
                .iter()
                .any(|p| p.target == *target && p.destination == *destination);
            if !exists {
                let mut pair = self.new_pair(target.clone(), destination.clone());
                pair.record_full(now, true, FullReason::Reload);
                new_pairs.push(pair);
            }
        }
        let Some(watch) = self.watches.get_mut(&id) else {
            return Ok(false);
        };
        let mut changed = !new_pairs.is_empty() || watch.spec != spec;
        let before = watch.pairs.len();
        watch.pairs.retain_mut(|p| {
            let keep = wanted
                .iter()
                .any(|(t, d)| p.target == *t && p.destination == *d);
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
        if let Some(watch) = self.watches.get_mut(&id) {
            watch.spec = spec;
        }
        Ok(changed)
    }
}
