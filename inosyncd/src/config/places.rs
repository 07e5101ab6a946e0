//! Where a directory or an rsync destination really is, reduced to what
//! containment depends on: the host it is on and its path there, component by
//! component, with the symlinks of the part that exists resolved. The layout
//! checks compare these, never the strings an administrator typed.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use crate::watcher::mounts;

use super::checks::{first_host_colon, is_local_target, strip_rsync_url};

/// A place: the host (the empty string for this one; `ssh://host`,
/// `rsync://host:port` otherwise) and the path's components there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    host: String,
    path: Vec<OsString>,
}

/// How one place lies relative to another on the same host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The same directory.
    Same,
    /// Strictly below the other.
    Inside,
    /// Strictly above the other.
    Contains,
}

impl Relation {
    /// How the other place lies relative to this one.
    pub fn reversed(self) -> Relation {
        match self {
            Relation::Same => Relation::Same,
            Relation::Inside => Relation::Contains,
            Relation::Contains => Relation::Inside,
        }
    }
}

impl Place {
    /// A local directory, resolved as the kernel would resolve it now.
    pub fn local(path: &Path) -> Place {
        Place::resolved_local(&resolve_local(path))
    }

    /// [`Place::local`] of a path already resolved ([`resolve_local`]).
    pub fn resolved_local(resolved: &Path) -> Place {
        Place {
            host: String::new(),
            path: components(resolved),
        }
    }

    /// The local directory at `resolved` (symlinks resolved) named by the
    /// filesystem it is on and its place there (the mount's root in
    /// `/proc/self/mountinfo`, the bound directory for a bind mount, joined
    /// with the rest of the path), then the filesystems mounted below it, by
    /// their roots: rsync crosses into them. A bind mount shows one directory
    /// at two paths; only these places tell that they are one (a black-box
    /// attack: a target below a bind mount of the source nested the mirror
    /// in it). Network filesystems (whose mount roots need not say where on
    /// the server's filesystem they are) and the kernel's are left out; empty
    /// when the mount table cannot be read.
    pub fn on_filesystems(resolved: &Path) -> Vec<Place> {
        let mut table = MOUNT_TABLE.lock().unwrap_or_else(|e| e.into_inner());
        if table
            .read
            .is_none_or(|read| read.elapsed() >= Duration::from_secs(1))
        {
            *table = MountTable::read();
        }
        if let Some(known) = table.named.get(resolved) {
            return known.clone();
        }
        let path = resolved.as_os_str().as_bytes();
        let place_of = |m: &mounts::Mount, below: &[u8]| Place {
            host: format!("fs:{}", m.dev),
            path: components(Path::new(OsStr::from_bytes(&m.root)))
                .into_iter()
                .chain(components(Path::new(OsStr::from_bytes(below))))
                .collect(),
        };
        let mut names = Vec::new();
        if let Some(on) = table
            .visible
            .iter()
            .filter(|m| mounts::is_within(path, &m.point))
            .max_by_key(|m| m.point.len())
            && !is_network(&on.fstype)
        {
            names.push(place_of(on, path.get(on.point.len()..).unwrap_or_default()));
        }
        for below in table
            .visible
            .iter()
            .filter(|m| m.point != path && mounts::is_within(&m.point, path))
            .filter(|m| !is_network(&m.fstype) && !m.is_kernel())
        {
            names.push(place_of(below, b""));
        }
        table.named.insert(resolved.to_path_buf(), names.clone());
        names
    }

    /// Where an rsync destination is: a local directory, `[user@]host:path`
    /// (relative paths are in the login's home), `rsync://[user@]host[:port]/
    /// module/path` or `[user@]host::module/path`.
    pub fn of_destination(destination: &str) -> Place {
        if is_local_target(destination) {
            return Place::local(Path::new(destination));
        }
        let (host, path) = remote_host_and_path(destination);
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

    /// `Some` when one place is the other or lies on the same host below or
    /// above it.
    pub fn relation(&self, other: &Place) -> Option<Relation> {
        if self.host != other.host {
            None
        } else if self.path == other.path {
            Some(Relation::Same)
        } else if self.path.starts_with(&other.path) {
            Some(Relation::Inside)
        } else if other.path.starts_with(&self.path) {
            Some(Relation::Contains)
        } else {
            None
        }
    }

    /// This place and each of its ancestors on the same host, the root first.
    pub fn with_ancestors(&self) -> impl Iterator<Item = Place> + '_ {
        (0..=self.path.len()).map(|n| Place {
            host: self.host.clone(),
            path: self.path[..n].to_vec(),
        })
    }

    /// Whether `self` lies strictly below `ancestor`.
    pub fn is_below(&self, ancestor: &Place) -> bool {
        self.relation(ancestor) == Some(Relation::Inside)
    }
}

/// Whether two destinations are one directory for certain (see
/// `checks::same_place`): local ones resolved, remote ones compared by user,
/// host (in any case) and path, without empty and `.` components.
pub fn same_directory(a: &str, b: &str) -> bool {
    match (is_local_target(a), is_local_target(b)) {
        (true, true) => resolve_local(Path::new(a)) == resolve_local(Path::new(b)),
        (false, false) => remote_spelling(a) == remote_spelling(b),
        _ => false,
    }
}

/// How a remote destination is written: `host::module` and
/// `rsync://host/module` may reach different daemons (`--port` in
/// `rsync_args` applies to the first only), a path in the login's home and
/// one from the root differ whatever their components (`h:x`, `h:/~/x`).
#[derive(PartialEq, Eq)]
enum RemoteForm {
    Url,
    Module,
    ShellFromRoot,
    ShellFromHome,
}

/// A remote destination's form, user, host and path components, as
/// [`same_directory`] compares them.
fn remote_spelling(destination: &str) -> (RemoteForm, Option<&str>, String, Vec<String>) {
    let (host, path) = remote_host_and_path(destination);
    let form = if strip_rsync_url(destination).is_some() {
        RemoteForm::Url
    } else if host.starts_with("rsync://") {
        RemoteForm::Module
    } else if path.starts_with('/') {
        RemoteForm::ShellFromRoot
    } else {
        RemoteForm::ShellFromHome
    };
    // A path in the home is `~/…` here: its `~` is no component.
    let path = match form {
        RemoteForm::ShellFromHome => path.strip_prefix('~').unwrap_or(&path),
        _ => &path,
    };
    let parts = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .map(str::to_string)
        .collect();
    (form, user_of(destination), host.to_ascii_lowercase(), parts)
}

/// The user named in a remote destination (`user@host:`,
/// `rsync://user@host/`), if any.
fn user_of(destination: &str) -> Option<&str> {
    let authority = match strip_rsync_url(destination) {
        Some(rest) => rest
            .split_once('/')
            .map_or(rest, |(authority, _)| authority),
        None => destination
            .get(..first_host_colon(destination).unwrap_or(destination.len()))
            .unwrap_or(destination),
    };
    authority.rsplit_once('@').map(|(user, _)| user)
}

/// The visible mounts, read again once a second old (the layout checks ask
/// for every watch and before every run), and the places found with them.
#[derive(Default)]
struct MountTable {
    read: Option<Instant>,
    visible: Vec<mounts::Mount>,
    named: HashMap<PathBuf, Vec<Place>>,
}

impl MountTable {
    fn read() -> MountTable {
        let visible = std::fs::read("/proc/self/mountinfo")
            .map(|text| mounts::reachable(&mounts::parse(&text), b"/"))
            .unwrap_or_default();
        MountTable {
            read: Some(Instant::now()),
            visible,
            named: HashMap::new(),
        }
    }
}

static MOUNT_TABLE: LazyLock<Mutex<MountTable>> =
    LazyLock::new(|| Mutex::new(MountTable::default()));

/// Filesystems served over a network or by a user process: one mount's root
/// need not say where it lies on the server's filesystem.
fn is_network(fstype: &str) -> bool {
    [
        "nfs",
        "cifs",
        "smb",
        "fuse",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "afs",
        "sshfs",
    ]
    .iter()
    .any(|prefix| fstype.starts_with(prefix))
}

fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            _ => None,
        })
        .collect()
}

/// Resolves `path` as the kernel would: the symlinks of every part that exists
/// are followed (`canonicalize`), and the rest, which rsync creates with
/// `--mkpath`, is applied lexically. One `canonicalize` when the whole path
/// exists (the usual case), one per component otherwise.
pub fn resolve_local(path: &Path) -> PathBuf {
    if let Ok(canonical) = path.canonicalize() {
        return canonical;
    }
    let mut out = PathBuf::from("/");
    let mut exists = true;
    for component in path.components() {
        match component {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                // Back in a directory that exists (above a missing one the
                // kernel makes), what follows may be a symlink again.
                out.pop();
                exists = std::fs::symlink_metadata(&out).is_ok();
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

fn remote_host_and_path(destination: &str) -> (String, String) {
    if let Some(rest) = strip_rsync_url(destination) {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = without_user(authority);
        // A port follows the host, or its brackets (`[2001:db8::1]:873`).
        let has_port = match host.rfind(']') {
            Some(end) => host[end..].contains(':'),
            None => host.contains(':'),
        };
        let host = if has_port {
            host.to_string()
        } else {
            format!("{host}:873")
        };
        return (format!("rsync://{host}"), format!("/{path}"));
    }
    let colon = first_host_colon(destination).unwrap_or(destination.len());
    let authority = without_user(&destination[..colon]);
    let after = destination.get(colon + 1..).unwrap_or("");
    if let Some(module_path) = after.strip_prefix(':') {
        return (
            format!("rsync://{authority}:873"),
            format!("/{module_path}"),
        );
    }
    let path = if after.starts_with('/') {
        after.to_string()
    } else {
        format!("~/{after}")
    };
    (format!("ssh://{authority}"), path)
}

fn without_user(authority: &str) -> &str {
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `missing/../link` is `link`, followed: the kernel makes `missing`, and
    /// its `..` is where the path was (a black-box attack: `link` led into
    /// the source, applied lexically it was never resolved, and the daemon
    /// made a directory in the source).
    #[test]
    fn a_symlink_after_a_missing_component_and_its_dot_dot_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::create_dir(base.join("real")).unwrap();
        std::os::unix::fs::symlink(base.join("real"), base.join("link")).unwrap();
        assert_eq!(
            resolve_local(&base.join("missing/../link/m")),
            base.join("real/m")
        );
        assert_eq!(
            resolve_local(&base.join("a/b/../../link")),
            base.join("real")
        );
        assert_eq!(resolve_local(&base.join("a/b/../c")), base.join("a/c"));
    }

    #[test]
    fn places_are_compared_by_component_and_host() {
        let www = Place::local(Path::new("/var/www"));
        assert_eq!(Place::local(Path::new("/var/www2")).relation(&www), None);
        assert_eq!(
            Place::local(Path::new("/var/www/a")).relation(&www),
            Some(Relation::Inside)
        );
        assert_eq!(
            Place::local(Path::new("/var")).relation(&www),
            Some(Relation::Contains)
        );
        let remote = Place::of_destination("u@M1:/srv/x/../www");
        assert_eq!(
            remote.relation(&Place::of_destination("m1:/srv/www/")),
            Some(Relation::Same)
        );
        assert_eq!(remote.relation(&www), None, "another host");
        assert_eq!(
            Place::of_destination("h::mod/b").relation(&Place::of_destination("rsync://h/mod")),
            Some(Relation::Inside)
        );
        assert_eq!(www.with_ancestors().count(), 3);
    }

    #[test]
    fn ipv6_hosts_and_any_case_urls_are_read_as_rsync_reads_them() {
        let module = Place::of_destination("rsync://[2001:db8::1]/mod");
        assert_eq!(
            Place::of_destination("u@[2001:db8::1]::mod/b").relation(&module),
            Some(Relation::Inside)
        );
        assert_eq!(
            Place::of_destination("RSYNC://[2001:db8::1]:873/mod/").relation(&module),
            Some(Relation::Same)
        );
        assert_eq!(
            Place::of_destination("root@[::1]:/srv/www/")
                .relation(&Place::of_destination("[::1]:/srv/www/a")),
            Some(Relation::Contains)
        );
        assert_eq!(
            Place::of_destination("[::1]:/srv/www")
                .relation(&Place::of_destination("[::2]:/srv/www")),
            None,
            "another host"
        );
    }

    #[test]
    fn what_exists_is_resolved_and_the_rest_applied_lexically() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(resolve_local(&link), real);
        assert_eq!(
            resolve_local(&link.join("not-yet/../mirror")),
            real.join("mirror")
        );
    }
}
