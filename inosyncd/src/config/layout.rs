//! Where sources and destinations lie relative to each other. rsync with
//! `--delete` makes its destination equal to its source: a destination that is a
//! source, inside one, or above one deletes or nests trees it must never touch,
//! and two destinations where one contains the other delete each other's files.
//! These checks run wherever watches come into being (start, `--check`, `add`,
//! `reload`), on paths compared by component after resolving symlinks.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use super::checks::is_local_target;

/// One watch as the checks see it: its source and the rsync destinations of its
/// targets.
#[derive(Debug, Clone)]
pub struct WatchPlaces {
    /// The watched directory (absolute, symlinks resolved).
    pub source: PathBuf,
    /// `target + remote_path` for each target.
    pub destinations: Vec<String>,
}

/// A destination reduced to what containment depends on: the host it is on (the
/// empty string for this host) and its path there, component by component.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    host: String,
    path: Vec<OsString>,
}

impl Place {
    fn local(path: &Path) -> Place {
        Place {
            host: String::new(),
            path: components(&resolve_local(path)),
        }
    }

    /// `Some(relation)` when one place is the other or contains it.
    fn relation(&self, other: &Place) -> Option<&'static str> {
        if self.host != other.host {
            return None;
        }
        if self.path == other.path {
            Some("is the same directory as")
        } else if self.path.starts_with(&other.path) {
            Some("is inside")
        } else if other.path.starts_with(&self.path) {
            Some("contains")
        } else {
            None
        }
    }
}

fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            _ => None,
        })
        .collect()
}

/// Resolves `path` as the kernel would, one component at a time: symlinks of
/// every part that exists are followed (`canonicalize`), and the rest, which rsync
/// creates with `--mkpath`, is applied lexically.
fn resolve_local(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    let mut exists = true;
    for component in path.components() {
        match component {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => {
                out.push(name);
                if exists {
                    match out.canonicalize() {
                        Ok(canonical) => out = canonical,
                        Err(_) => exists = false,
                    }
                }
            }
        }
    }
    out
}

/// Where an rsync destination is: a local directory, `[user@]host:path` (relative
/// paths are in the login's home), `rsync://[user@]host[:port]/module/path` or
/// `[user@]host::module/path`.
fn place_of(destination: &str) -> Place {
    if is_local_target(destination) {
        return Place::local(Path::new(destination));
    }
    let (host, path): (String, String) = if let Some(rest) = destination.strip_prefix("rsync://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = without_user(authority);
        let host = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:873")
        };
        (format!("rsync://{host}"), format!("/{path}"))
    } else if let Some((authority, path)) = destination.split_once("::") {
        (
            format!("rsync://{}:873", without_user(authority)),
            format!("/{path}"),
        )
    } else {
        let (authority, path) = destination.split_once(':').unwrap_or((destination, ""));
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("~/{path}")
        };
        (format!("ssh://{}", without_user(authority)), path)
    };
    let mut parts: Vec<OsString> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(OsString::from_vec(other.as_bytes().to_vec())),
        }
    }
    Place {
        host: host.to_ascii_lowercase(),
        path: parts,
    }
}

fn without_user(authority: &str) -> &str {
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

/// The checks of one watch on its own: not `/`, and no destination that is its
/// source, inside it or above it, or that contains another of its destinations.
/// Debug builds only: `INOSYNC_TEST_NO_LAYOUT_CHECK` lets a test start a layout
/// this check would refuse, to prove the sandbox holds on its own.
fn checks_disabled_for_a_test() -> bool {
    cfg!(debug_assertions) && std::env::var_os("INOSYNC_TEST_NO_LAYOUT_CHECK").is_some()
}

pub fn check_watch(watch: &WatchPlaces) -> Result<(), String> {
    if checks_disabled_for_a_test() {
        return Ok(());
    }
    if watch.source.parent().is_none() {
        return Err(format!(
            "a watch on {} would mirror the whole system (and every target inside it); \
             watch the directories you mean",
            watch.source.display()
        ));
    }
    check_between(watch, watch, true)
}

/// The checks between two different watches: no destination of one inside,
/// above or equal to the other's source, and no two destinations that contain
/// each other.
pub fn check_pair(a: &WatchPlaces, b: &WatchPlaces) -> Result<(), String> {
    check_between(a, b, false)?;
    check_between(b, a, false)
}

fn check_between(a: &WatchPlaces, b: &WatchPlaces, same: bool) -> Result<(), String> {
    let source = Place::local(&b.source);
    for (i, dest) in a.destinations.iter().enumerate() {
        let place = place_of(dest);
        if let Some(relation) = place.relation(&source) {
            return Err(format!(
                "the destination {dest} (of the watch {}) {relation} the watched directory {}: \
                 rsync --delete would {} it; choose a destination outside every watched tree",
                a.source.display(),
                b.source.display(),
                if relation == "is inside" {
                    "nest the mirror inside itself, level after level, in"
                } else {
                    "delete or overwrite"
                }
            ));
        }
        for (j, other) in b.destinations.iter().enumerate() {
            if same && j <= i {
                continue;
            }
            if let Some(relation) = place.relation(&place_of(other)) {
                return Err(format!(
                    "the destination {dest} (of the watch {}) {relation} the destination {other} \
                     (of the watch {}): each sync would delete the other's files; give every \
                     watch and target its own destination",
                    a.source.display(),
                    b.source.display()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(source: &str, destinations: &[&str]) -> WatchPlaces {
        WatchPlaces {
            source: source.into(),
            destinations: destinations.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn destinations_overlapping_a_source_are_refused() {
        for dest in [
            "/srv",
            "/srv/",
            "/srv/www",
            "/srv/www/mirror",
            "/srv/x/../www/m",
        ] {
            let e = check_watch(&watch("/srv/www", &[dest])).unwrap_err();
            assert!(e.contains("/srv/www"), "{dest}: {e}");
        }
        assert!(check_watch(&watch("/srv/www", &["/srv/www2", "/mnt/www/"])).is_ok());
        assert!(check_watch(&watch("/srv/www", &["host:/srv/www/"])).is_ok());
        assert!(check_watch(&watch("/", &["/tmp/x"])).is_err());
    }

    #[test]
    fn destinations_inside_each_other_are_refused_on_the_same_host() {
        let www = watch("/srv/www", &["/mnt/backup/www/"]);
        let blog = watch("/srv/blog", &["/mnt/backup/www/srv/blog"]);
        assert!(
            check_pair(&www, &blog)
                .unwrap_err()
                .contains("/mnt/backup/www/srv/blog")
        );
        let a = watch("/a", &["u@m1:/srv/"]);
        assert!(check_pair(&a, &watch("/b", &["m1:/srv/b"])).is_err());
        assert!(check_pair(&a, &watch("/b", &["M1:/srv"])).is_err());
        assert!(check_pair(&a, &watch("/b", &["m2:/srv/b"])).is_ok());
        assert!(check_pair(&a, &watch("/b", &["m1:/srv2"])).is_ok());
        assert!(check_pair(&watch("/a", &["m1:"]), &watch("/b", &["m1:b"])).is_err());
        let d = watch("/a", &["rsync://h/mod/"]);
        assert!(check_pair(&d, &watch("/b", &["h::mod/b"])).is_err());
        assert!(check_pair(&d, &watch("/b", &["rsync://h:8730/mod/b"])).is_ok());
        assert!(check_watch(&watch("/a", &["/m/", "/m/a"])).is_err());
        assert!(check_watch(&watch("/a", &["/m1/", "/m2/"])).is_ok());
    }

    #[test]
    fn symlinks_in_a_destination_are_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&src, &link).unwrap();
        let source = src.canonicalize().unwrap();
        let dest = format!("{}/not-yet/mirror", link.display());
        let e = check_watch(&WatchPlaces {
            source,
            destinations: vec![dest],
        })
        .unwrap_err();
        assert!(e.contains("is inside"), "{e}");
    }
}
