//! What each control request does to the engine's state. Each handler checks its
//! input, changes the state, writes the state file when the change is a runtime
//! setting, and answers.

use super::batch::FullReason;
use tokio::time::Instant;

use inosync_proto::{AddWatch, Setting, Source};

use super::{Command, Engine, Refusal, Reply, Waiter};
use crate::config::{WatchConfig, checks};
use crate::state_file::AddedWatch;

/// The two settings `inosyncctl` shows and changes the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Knob {
    Speed,
    Delay,
}

/// Turns a state-file entry back into a watch spec, checking it as `add` would.
pub fn spec_from_added(added: &AddedWatch) -> Result<WatchConfig, Refusal> {
    spec_from_request(&AddWatch {
        path: added.path.clone(),
        remote_path: Some(added.remote_path.clone()),
        targets: added.targets.clone(),
        excludes: added.excludes.clone(),
        delay: added.delay,
        speed: added.speed,
    })
}

fn spec_from_request(request: &AddWatch) -> Result<WatchConfig, Refusal> {
    let path = checks::absolute_watch_dir(&request.path).map_err(Refusal::Check)?;
    for target in &request.targets {
        checks::target(target).map_err(Refusal::Target)?;
    }
    for pattern in &request.excludes {
        crate::exclude::check_pattern(pattern).map_err(Refusal::Exclude)?;
    }
    if let Some(delay) = request.delay {
        checks::seconds(delay).map_err(Refusal::Delay)?;
    }
    if let Some(remote_path) = &request.remote_path {
        checks::remote_path(remote_path).map_err(Refusal::RemotePath)?;
    }
    // A target named with `add` is the destination itself, as in the quick
    // start (`add /srv/blog --target /mnt/backup/blog` mirrors into
    // /mnt/backup/blog); the config's default targets keep inosync's
    // `target + path` rule.
    let remote_path = match &request.remote_path {
        Some(remote_path) => remote_path.clone(),
        None if !request.targets.is_empty() => String::new(),
        None => path.display().to_string(),
    };
    Ok(WatchConfig {
        remote_path,
        path,
        excludes: request.excludes.clone(),
        targets: (!request.targets.is_empty()).then(|| request.targets.clone()),
        delay: request.delay,
        speed: request.speed,
        ..WatchConfig::new(std::path::PathBuf::new(), String::new())
    })
}

impl Engine {
    pub(super) fn handle(&mut self, command: Command) {
        match command {
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Metrics(reply) => {
                let _ = reply.send(self.metrics_text());
            }
            Command::Wait {
                path,
                deadline,
                reply,
            } => match path.map(|p| self.find_watch(&p)).transpose() {
                Ok(scope) => {
                    // A `wait --timeout 0` (a probe) starts nothing.
                    if deadline > Instant::now() {
                        self.full_sync_degraded_for_wait(scope);
                    }
                    self.waiters.push(Waiter {
                        scope,
                        deadline,
                        reply,
                    })
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Add { watch, reply } => {
                let _ = reply.send(self.add(watch));
            }
            Command::Remove {
                path,
                discard,
                deadline,
                reply,
            } => self.remove(&path, discard, deadline, reply),
            Command::Speed {
                kbps,
                reset,
                path,
                reply,
            } => {
                let _ = reply.send(self.knob(Knob::Speed, kbps.map(f64::from), reset, path));
            }
            Command::Delay {
                seconds,
                reset,
                path,
                reply,
            } => {
                let _ = reply.send(self.knob(Knob::Delay, seconds, reset, path));
            }
            Command::Sync { path, force, reply } => {
                let _ = reply.send(self.sync(path, force));
            }
            Command::Pause {
                path,
                paused,
                reply,
            } => {
                let _ = reply.send(self.pause(path, paused));
            }
            Command::Verify {
                path,
                repair,
                checksum,
                deadline,
                reply,
            } => match path.map(|p| self.find_watch(&p)).transpose() {
                Ok(scope) => self.start_verify(scope, repair, checksum, Some((deadline, reply))),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            #[cfg(test)]
            Command::Inject(changes) => self.take_changes(changes),
            Command::Reload { reply } => {
                let result = self.reload();
                // One level for a broken config file, however the reload was
                // asked for: the next restart would fail on it.
                let asked = if reply.is_some() { "reload" } else { "SIGHUP" };
                match &result {
                    Ok(summary) if reply.is_none() => tracing::info!("SIGHUP: {summary}"),
                    Ok(_) => {}
                    Err(e) => tracing::error!("{asked}: reload failed, old config kept: {e}"),
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
        }
    }

    fn add(&mut self, request: AddWatch) -> Result<inosync_proto::WatchStatus, Refusal> {
        let cannot_add = |problem| Refusal::CannotAdd {
            path: request.path.clone(),
            problem: Box::new(problem),
        };
        let spec = spec_from_request(&request).map_err(cannot_add)?;
        if let Some(watch) = self
            .watches
            .values()
            .find(|w| w.spec.path == spec.path && w.removing.is_some())
        {
            return Err(cannot_add(Refusal::StillRemoving(
                watch.spec.path.display().to_string(),
            )));
        }
        if spec.effective_targets(&self.config).is_empty() {
            return Err(Refusal::NoTarget {
                path: request.path.clone(),
                quick_start: self.config.source.is_none(),
            });
        }
        self.check_free(&spec).map_err(cannot_add)?;
        let path = spec.path.display().to_string();
        let added = AddedWatch {
            path: path.clone(),
            remote_path: spec.remote_path.clone(),
            targets: spec.targets.clone().unwrap_or_default(),
            excludes: spec.excludes.clone(),
            delay: spec.delay,
            speed: spec.speed,
        };
        // A config watch removed earlier and added again is a runtime watch
        // now: its removal stays recorded, so that a start opens the added
        // watch and not the config's (before, both were opened, the added one
        // refused as "the same directory", and the config's old targets fed
        // again; a black-box attack).
        self.runtime.watch.remove(&path);
        let id = self.open_watch(spec, Source::Runtime, true)?;
        // The places its targets lead to now are the ones meant (see
        // `Policy::moved_target`).
        self.retarget_local_targets();
        self.runtime.added.push(added);
        self.persist();
        // `control.rs` logged who asked for it.
        tracing::debug!("{path}: added at runtime");
        Ok(self.watch_status(id))
    }

    fn remove(&mut self, path: &str, discard: bool, deadline: Instant, reply: Reply<bool>) {
        // A target it shared may be moved on purpose once it is gone.
        self.retarget_local_targets();
        let id = match self.find_watch(path) {
            Ok(id) => id,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        self.begin_removal(id, discard, Some((deadline, reply)));
        // Still waiting for its changes: a restart must finish the removal,
        // not bring the watch back.
        if let Some(watch) = self.watches.get(&id).filter(|w| w.removing.is_some()) {
            let path = watch.spec.path.display().to_string();
            if !self.runtime.removing.contains(&path) {
                self.runtime.removing.push(path);
                self.persist();
            }
        }
    }

    /// Stops watching; with `discard` the watch goes at once, otherwise when its
    /// pending changes are synced (see `progress_removals`).
    pub(super) fn begin_removal(
        &mut self,
        id: u32,
        discard: bool,
        waiter: Option<(Instant, Reply<bool>)>,
    ) {
        self.watcher.remove_root(id);
        if discard {
            self.drop_watch(id, "removed, pending changes discarded");
            if let Some((_, reply)) = waiter {
                let _ = reply.send(Ok(true));
            }
            return;
        }
        let Some(watch) = self.watches.get_mut(&id) else {
            return;
        };
        let now = Instant::now();
        for pair in &mut watch.pairs {
            pair.hurry(now);
        }
        let waiting = watch.removing.get_or_insert_with(Vec::new);
        waiting.extend(waiter);
        tracing::info!(
            "{}: no longer watched; syncing its pending changes before removal",
            watch.spec.path.display()
        );
    }

    /// Shows, or sets and shows, the bandwidth limit or the delay, globally or for
    /// one watch. A set value is a runtime override, written to the state file.
    fn knob(
        &mut self,
        knob: Knob,
        value: Option<f64>,
        reset: bool,
        path: Option<String>,
    ) -> Result<Setting, Refusal> {
        let scope = path.as_deref().map(|p| self.find_watch(p)).transpose()?;
        // The runtime value to keep: a new one, or none (reset: the config's, or
        // the default, applies again); `None` when only showing.
        let change = match (reset, value) {
            (true, _) => Some(None),
            (false, Some(value)) => {
                if knob == Knob::Delay {
                    checks::seconds(value).map_err(Refusal::Check)?;
                }
                Some(Some(value))
            }
            (false, None) => None,
        };
        if let Some(value) = change {
            // Speeds arrive as whole KB/s (u32) from the protocol.
            let speed = value.map(|v| v as u32);
            match scope {
                Some(id) => {
                    let watch = self.watches.get_mut(&id).ok_or(Refusal::Vanished)?;
                    let key = watch.spec.path.display().to_string();
                    let saved = self.runtime.watch_mut(&key);
                    match knob {
                        Knob::Speed => (watch.speed_override, saved.speed) = (speed, speed),
                        Knob::Delay => (watch.delay_override, saved.delay) = (value, value),
                    }
                }
                None => match knob {
                    Knob::Speed => self.runtime.speed = speed,
                    Knob::Delay => self.runtime.delay = value,
                },
            }
            self.persist();
            // A new delay needs nothing more: due times are computed from each
            // batch's first change and the delay in force, at every turn of the loop.
            if knob == Knob::Speed {
                self.restart_for_speed();
            }
        }
        let (watch, (value, source)) = match scope {
            Some(id) => {
                let watch = &self.watches[&id];
                let current = match knob {
                    Knob::Speed => {
                        let (speed, source) = self.watch_speed(watch);
                        (f64::from(speed), source)
                    }
                    Knob::Delay => self.watch_delay(watch),
                };
                (Some(watch.spec.path.display().to_string()), current)
            }
            None => {
                let current = match knob {
                    Knob::Speed => {
                        let (speed, source) = self.global_speed();
                        (f64::from(speed), source)
                    }
                    Knob::Delay => self.global_delay(),
                };
                (None, current)
            }
        };
        Ok(Setting {
            watch,
            value,
            source,
        })
    }

    /// Restarts every running rsync whose bandwidth limit is no longer the one in
    /// force; rsync keeps what it already sent in its partial directory (see
    /// `rsync::leftovers`), the target's file stays whole.
    pub(super) fn restart_for_speed(&mut self) {
        let wanted: Vec<(u32, u32)> = self
            .watches
            .iter()
            .map(|(id, w)| (*id, self.watch_speed(w).0))
            .collect();
        for (id, speed) in wanted {
            let Some(watch) = self.watches.get_mut(&id) else {
                continue;
            };
            for pair in &mut watch.pairs {
                if pair.is_running() && pair.speed_in_use() != speed && pair.interrupt() {
                    tracing::info!(
                        "{}: restarting the running transfer with --bwlimit={speed}",
                        pair.destination()
                    );
                }
            }
        }
    }

    fn sync(&mut self, path: Option<String>, force: bool) -> Result<(), Refusal> {
        let scope = path.as_deref().map(|p| self.find_watch(p)).transpose()?;
        match (force, scope) {
            (true, Some(id)) => self.force_sync(id).map_err(Refusal::Source)?,
            (true, None) => return Err(Refusal::ForceNeedsPath),
            (false, _) => {}
        }
        let now = Instant::now();
        for (id, watch) in &mut self.watches {
            if scope.is_none_or(|s| s == *id) {
                for pair in &mut watch.pairs {
                    pair.record_full(now, true, FullReason::Requested);
                    pair.hurry(now);
                }
            }
        }
        Ok(())
    }

    fn pause(&mut self, path: Option<String>, paused: bool) -> Result<(), Refusal> {
        let scope = path.as_deref().map(|p| self.find_watch(p)).transpose()?;
        let mut keys = Vec::new();
        for (id, watch) in &mut self.watches {
            if scope.is_none_or(|s| s == *id) {
                watch.paused = paused;
                keys.push(watch.spec.path.display().to_string());
            }
        }
        for key in keys {
            self.runtime.watch_mut(&key).paused = paused;
        }
        self.persist();
        // `control.rs` logged who asked for it.
        tracing::debug!(
            "{} {}",
            path.as_deref().unwrap_or("all watches"),
            if paused {
                "paused: changes are recorded, not synced"
            } else {
                "resumed"
            }
        );
        Ok(())
    }
}
