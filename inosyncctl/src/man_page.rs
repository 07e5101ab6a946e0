//! `inosyncctl(8)`: generated from the clap definitions (so options cannot drift
//! from the binary), with every subcommand and its options on the one page that
//! is shipped, and the sections an administrator looks for: EXIT STATUS,
//! ENVIRONMENT, FILES.

use std::io::Write;

use clap::CommandFactory;
use clap_mangen::Man;

use crate::cli::Cli;

const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
0
Success (\fBwait\fR: nothing pending or running; \fBverify\fR: no drift).
.TP
1
The daemon refused the request (the message says why), or \fBwait\fR timed out.
.TP
2
Usage error: an unknown command, option or value, found before the daemon is asked.
.TP
3
The daemon is not running or not reachable (no socket, a stale socket, or
something else than a socket at its path, named).
.TP
4
\fBverify\fR found a target that differs from its source.
"#;

const ENVIRONMENT: &str = r#".SH ENVIRONMENT
.TP
\fBINOSYNC_SOCKET\fR
The control socket, as \fB\-\-socket\fR.
.TP
\fBXDG_RUNTIME_DIR\fR
Where the socket of a daemon run by a user other than root is looked for.
.TP
\fBCOLUMNS\fR
The width \fBstatus\fR fits when its output is not a terminal (default 80).
"#;

const FILES: &str = r#".SH FILES
.TP
\fI/run/inosync/inosyncd.sock\fR
The control socket of the system daemon.
.TP
\fI$XDG_RUNTIME_DIR/inosync/inosyncd.sock\fR
The control socket of a user's daemon.
.SH "SEE ALSO"
inosyncd(8), inosync.toml(5), rsync(1)
"#;

/// The page, in roff.
pub fn render() -> std::io::Result<Vec<u8>> {
    let mut command = Cli::command();
    command.build();
    let man = Man::new(command.clone()).section("8");
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    writeln!(page, ".SH COMMANDS")?;
    for sub in command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        // Only the subcommand's own arguments: the global ones are above.
        let mut own = clap::Command::new("inosyncctl")
            .bin_name(format!("inosyncctl {}", sub.get_name()))
            .disable_help_flag(true)
            .disable_version_flag(true);
        for arg in sub
            .get_arguments()
            .filter(|a| !a.is_global_set() && a.get_id() != "help")
        {
            own = own.arg(arg.clone());
        }
        own.build();
        let sub_man = Man::new(own);
        let mut synopsis = Vec::new();
        sub_man.render_synopsis_section(&mut synopsis)?;
        let mut options = Vec::new();
        sub_man.render_options_section(&mut options)?;
        writeln!(page, ".SS \"{}\"", sub.get_name())?;
        let about = sub.get_long_about().or(sub.get_about());
        let about = about.map(|a| a.to_string().replace('-', "\\-"));
        // The subcommand's synopsis, what it does, then its options.
        for (i, part) in [synopsis, options].into_iter().enumerate() {
            for line in String::from_utf8_lossy(&part).lines() {
                if !line.starts_with(".SH") {
                    writeln!(page, "{line}")?;
                }
            }
            if i == 0
                && let Some(about) = &about
            {
                writeln!(page, ".PP\n{about}")?;
            }
        }
    }
    page.extend_from_slice(EXIT_STATUS.as_bytes());
    page.extend_from_slice(ENVIRONMENT.as_bytes());
    page.extend_from_slice(FILES.as_bytes());
    Ok(page)
}

/// Writes the page to DIR/man8/inosyncctl.8 and returns its path.
pub fn write(dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    let section = dir.join("man8");
    std::fs::create_dir_all(&section)?;
    let path = section.join("inosyncctl.8");
    std::fs::write(&path, render()?)?;
    Ok(path)
}
