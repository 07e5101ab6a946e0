//! Reading rsync's stderr: the cause of a failure, and the paths its error lines name (quotes, partial files) relative to the root.

use super::*;

fn stderr(lines: &[&str]) -> Stderr {
    let mut s = Stderr::default();
    for line in lines {
        s.push(line.to_string());
    }
    s
}

#[test]
fn the_cause_is_rsyncs_error_line_not_its_summary() {
    let s = stderr(&[
        "rsync: [receiver] write failed on \"/m/big\": No space left on device (28)",
        "rsync error: error in file IO (code 11) at receiver.c(381) [receiver=3.5.0]",
    ]);
    assert!(
        s.cause().contains("No space left on device (28)"),
        "{}",
        s.cause()
    );
    let s = stderr(&["rsync error: unexplained error (code 255)"]);
    assert!(s.cause().contains("unexplained"));
}

#[test]
fn error_lines_name_paths_relative_to_the_root() {
    let s = stderr(&[
        "rsync: [sender] link_stat \"/srv/www/q900/f\\#012g\" failed: Not a directory (20)",
        "rsync: [receiver] rename \"/m/www/.x.hq2ebD\" -> \"sub/x\": Operation not permitted (1)",
        "rsync: [generator] delete_file: unlink(old file) failed: Operation not permitted (1)",
        "ABORTING due to invalid path from sender: f577/n\\#012l641",
        "file has vanished: \"/srv/www/gone\"",
        "rsync: [sender] link_stat \"/etc/other\" failed",
        "rsync error: some files/attrs were not transferred (code 23)",
    ]);
    let named = named_in_lines(s.error_lines(), Path::new("/srv/www"), "/m/www/");
    let named: Vec<String> = named
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert_eq!(
        named,
        [
            ".x.hq2ebD",
            "f577/n\nl641",
            "old file",
            "q900/f\ng",
            "sub/x"
        ]
    );
    assert_eq!(s.vanished(Path::new("/srv/www")), vec![b"gone".to_vec()]);
    assert!(s.sender_raced());
}

#[test]
fn a_quote_inside_a_name_does_not_cut_it() {
    assert_eq!(
        names_in("rsync: [sender] read errors mapping \"/srv/q'\"3084\": Is a directory (21)"),
        ["/srv/q'\"3084"]
    );
    assert_eq!(
        names_in(
            "rsync: [receiver] rename \"/m/.a\"b.XyZ\" -> \"a\"b\": Operation not permitted (1)"
        ),
        ["/m/.a\"b.XyZ", "a\"b"]
    );
    assert_eq!(
        names_in(
            "rsync: [sender] link_stat \"/srv/\"quoted\"\" failed: No such file or directory (2)"
        ),
        ["/srv/\"quoted\""]
    );
    assert_eq!(names_in("file has vanished: \"/srv/x\"y\""), ["/srv/x\"y"]);
}

#[test]
fn files_whose_part_is_kept_in_the_partial_directory_are_named() {
    let s = stderr(&[
        "WARNING: d/a failed verification -- update put into partial-dir (will try again).",
        "ERROR: work/n\\#012l1668 failed verification -- update put into partial-dir.",
        "ERROR: \"x/y\" (in m) failed verification -- update put into partial-dir.",
        "ERROR: gone failed verification -- update discarded.",
    ]);
    let kept: Vec<String> = s
        .partial_kept(Path::new("/srv/www"), "rsync://h/m/")
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert_eq!(kept, ["d/a", "work/n\nl1668", "x/y"]);
    let named = named_in_lines(s.error_lines(), Path::new("/srv/www"), "/m/");
    assert_eq!(named.len(), 3, "{named:?}");
}

#[test]
fn a_name_with_a_double_quote_is_read_whole() {
    let s = stderr(&[
        "rsync: [sender] send_files failed to open \"/srv/www/work/q'\"2973/a b\": Not a directory (20)",
        "rsync: [receiver] rename \"/m/www/.q\"1.AbC123\" -> \"q\"1\": Operation not permitted (1)",
    ]);
    let named: Vec<String> = named_in_lines(s.error_lines(), Path::new("/srv/www"), "/m/www/")
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert_eq!(named, [".q\"1.AbC123", "q\"1", "work/q'\"2973/a b"]);
}

#[test]
fn a_file_that_vanished_or_could_not_be_read_may_have_left_a_partial_file() {
    // rsync keeps what it received of a file whose check failed in its
    // first pass without a word (the WARNING needs --info=name), and the
    // file that then vanished is not sent again.
    let s = stderr(&[
        "rsync: [sender] read errors mapping \"/srv/www/work/d e\"1\": Is a directory (21)",
        "file has vanished: \"/srv/www/work/gone\"",
    ]);
    let kept: Vec<String> = s
        .partial_kept(Path::new("/srv/www"), "/m/www/")
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert_eq!(kept, ["work/d e\"1", "work/gone"]);
}

#[test]
fn a_directory_a_file_could_not_replace_is_named() {
    let s = stderr(&[
        "could not make way for new regular file: keep/sub",
        "could not make way for new symlink: link",
    ]);
    let named = named_in_lines(s.error_lines(), Path::new("/srv/www"), "/m/www/");
    assert_eq!(named, [b"keep/sub".to_vec(), b"link".to_vec()]);
}

/// The root rsync names as `DEST/.` (a chmod of the root refused) is the
/// root, `""`: held as `.`, it was listed again, and rsync sends every entry
/// of a `.` it lists (found by a review).
#[test]
fn the_root_named_with_a_dot_is_the_root() {
    let named = named_in_lines(
        [
            "rsync: [generator] failed to set permissions on \"/m/blog/.\": Operation not permitted (1)",
            "rsync: [generator] failed to set times on \"/m/blog/d/.\": Operation not permitted (1)",
        ]
        .into_iter(),
        Path::new("/srv/blog"),
        "/m/blog/",
    );
    assert_eq!(named, vec![Vec::new(), b"d".to_vec()]);
}
