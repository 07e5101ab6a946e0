//! The daemon's signals: SIGTERM and SIGINT stop it (a second one: at once),
//! SIGHUP reloads the config (as `inosyncctl reload`), SIGUSR1 reopens the log
//! file. SIGHUP is ignored from the first instruction of `main` until its
//! handler is installed, before the start-up: a reload sent the moment the
//! process exists (a `systemctl reload` right after a start) must not be the
//! default action, which ends the process (found by a black-box attack: a
//! SIGHUP in the first milliseconds killed the daemon, exit 129).

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::engine::Command;
use crate::{logging, notify};

/// SIGHUP ignored until [`Signals::install`] takes it over (a child started in
/// between would inherit that; none is).
pub fn ignore_hangup_for_now() {
    // SAFETY: sets a disposition (SIG_IGN), no handler code runs.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
}

/// The signal streams, installed as early as the runtime allows: one that
/// arrives before the daemon serves waits in its stream.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    usr1: Signal,
}

impl Signals {
    /// Installs the handlers (in a runtime).
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
        })
    }

    /// Serves the signals until the daemon ends: a stop counts in `stop`, a
    /// reload goes to the engine.
    pub async fn handle(mut self, engine: mpsc::Sender<Command>, stop: watch::Sender<u32>) {
        loop {
            tokio::select! {
                _ = self.term.recv() => {
                    notify::notify("STOPPING=1");
                    stop.send_modify(|n| *n += 1);
                }
                _ = self.int.recv() => {
                    notify::notify("STOPPING=1");
                    stop.send_modify(|n| *n += 1);
                }
                _ = self.usr1.recv() => logging::reopen(),
                _ = self.hup.recv() => {
                    tracing::info!("SIGHUP: reloading the config");
                    let _ = engine.send(Command::Reload { reply: None }).await;
                }
            }
        }
    }
}
