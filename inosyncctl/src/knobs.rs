//! `inosyncctl speed` and `inosyncctl delay`: show or set a knob, globally or
//! for one watch, and say where the value in force comes from.

use inosync_proto::{Setting, Source};

use crate::client::{CallError, Connection};
use crate::{check_seconds, paths, print_json};

/// `speed [KBPS] [--reset] [--watch PATH]`.
pub async fn speed(
    connection: &Connection,
    kbps: Option<u32>,
    reset: bool,
    watch: Option<&std::path::Path>,
    json: bool,
) -> Result<(), CallError> {
    let watch = watch.map(paths::resolve).transpose()?;
    let setting = connection.speed(kbps, reset, watch).await?;
    show(json, "speed", &setting, |v| {
        if v == 0.0 {
            "unlimited".into()
        } else {
            format!("{v} KB/s")
        }
    })
}

/// `delay [SECONDS] [--reset] [--watch PATH]`.
pub async fn delay(
    connection: &Connection,
    seconds: Option<f64>,
    reset: bool,
    watch: Option<&std::path::Path>,
    json: bool,
) -> Result<(), CallError> {
    if let Some(seconds) = seconds {
        check_seconds("delay", seconds)?;
    }
    let watch = watch.map(paths::resolve).transpose()?;
    let setting = connection.delay(seconds, reset, watch).await?;
    show(json, "delay", &setting, |v| format!("{v} s"))
}

/// The value in force and where it comes from.
fn show(
    json: bool,
    name: &str,
    setting: &Setting,
    format: impl Fn(f64) -> String,
) -> Result<(), CallError> {
    if json {
        return print_json(setting);
    }
    let source = match setting.source {
        Source::Default => "default",
        Source::Config => "from the config",
        Source::Runtime => "set at runtime",
        Source::Global => "the global value",
        Source::CommandLine => "from inosyncd's command line",
    };
    match &setting.watch {
        Some(watch) => outln!("{watch}: {name} {} ({source})", format(setting.value)),
        None => outln!("{name} {} ({source})", format(setting.value)),
    }
    Ok(())
}
