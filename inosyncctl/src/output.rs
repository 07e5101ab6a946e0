//! What inosyncctl prints on stdout. Output piped into `head` and the like
//! ends quietly when the reader has gone, as other command-line tools do
//! (exit 141, as a shell reports SIGPIPE). Not by SIGPIPE itself: a daemon that
//! refuses the connection must be an error message, not a silent death on the
//! socket; and not by `print!`, which panics on a closed pipe.

use std::io::Write;

/// The exit status a shell reports for a program killed by SIGPIPE.
const READER_GONE: i32 = 141;

/// Writes `args` to stdout; a reader that went away ends the program (141),
/// any other write error too, with a message (1).
pub fn write(args: std::fmt::Arguments) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(READER_GONE);
        }
        eprintln!("inosyncctl: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `print!` that ends quietly when the reader has gone (see the module).
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*)) };
}

/// `println!` that ends quietly when the reader has gone (see the module).
macro_rules! outln {
    () => { $crate::output::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write(format_args!("{}\n", format_args!($($arg)*))) };
}
