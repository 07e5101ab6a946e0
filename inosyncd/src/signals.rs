//! The daemon's signals: SIGTERM and SIGINT stop it (a second one: at once),
//! SIGHUP reloads the config (as `inosyncctl reload`), SIGUSR1 reopens the log
//! file. From the first instruction of `main` until the streams are installed,
//! before the start-up, SIGHUP and SIGUSR1 are only noted, and acted on once
//! the daemon serves: a reload sent the moment the process exists (a
//! `systemctl reload` right after a start, logrotate) must not be the default
//! action, which ends the process (found by a black-box attack: a SIGHUP in the
//! first milliseconds killed the daemon, exit 129). A handler, unlike an
//! ignored or blocked signal, is not inherited by a child across `exec`.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::engine::Command;
use crate::{logging, notify};

/// A SIGHUP came before the streams were installed.
static EARLY_HANGUP: AtomicBool = AtomicBool::new(false);
/// A SIGUSR1 came before the streams were installed.
static EARLY_USR1: AtomicBool = AtomicBool::new(false);

/// Notes the signal (async-signal-safe: an atomic store only).
extern "C" fn note_early(signal: libc::c_int) {
    if signal == libc::SIGHUP {
        EARLY_HANGUP.store(true, Ordering::SeqCst);
    } else if signal == libc::SIGUSR1 {
        EARLY_USR1.store(true, Ordering::SeqCst);
    }
}

/// SIGHUP and SIGUSR1 noted, not acted on, until [`Signals::install`] takes
/// them over; [`Signals::handle`] acts on what was noted.
pub fn note_early_signals() {
    for signal in [libc::SIGHUP, libc::SIGUSR1] {
        // SAFETY: a zeroed sigaction with a handler that only stores to an
        // atomic; sigaction copies the struct and keeps no pointer to it.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = note_early as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
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
        if EARLY_USR1.swap(false, Ordering::SeqCst) {
            logging::reopen();
        }
        if EARLY_HANGUP.swap(false, Ordering::SeqCst) {
            tracing::info!("SIGHUP (received during the start-up): reloading the config");
            let _ = engine.send(Command::Reload { reply: None }).await;
        }
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
