//! The layout checks on made-up places (and a few real symlinks).

use super::*;

fn watch(source: &str, destinations: &[&str]) -> WatchPlaces {
    WatchPlaces {
        source: source.into(),
        destinations: destinations.iter().map(|d| d.to_string()).collect(),
    }
}

fn alone(watch: &WatchPlaces) -> Result<(), LayoutError> {
    Layout::default().check(watch)
}

fn pair(a: &WatchPlaces, b: &WatchPlaces) -> Result<(), LayoutError> {
    let mut layout = Layout::default();
    layout.add(0, a)?;
    layout.check(b)
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
        let e = alone(&watch("/srv/www", &[dest])).unwrap_err().to_string();
        assert!(e.contains("/srv/www"), "{dest}: {e}");
    }
    assert!(alone(&watch("/srv/www", &["/srv/www2", "/mnt/www/"])).is_ok());
    assert!(alone(&watch("/srv/www", &["host:/srv/www/"])).is_ok());
    assert!(alone(&watch("/", &["/tmp/x"])).is_err());
}

#[test]
fn destinations_inside_each_other_are_refused_on_the_same_host() {
    let www = watch("/srv/www", &["/mnt/backup/www/"]);
    let blog = watch("/srv/blog", &["/mnt/backup/www/srv/blog"]);
    let e = pair(&www, &blog).unwrap_err().to_string();
    assert!(e.contains("/mnt/backup/www/srv/blog"), "{e}");
    let a = watch("/a", &["u@m1:/srv/"]);
    assert!(pair(&a, &watch("/b", &["m1:/srv/b"])).is_err());
    assert!(pair(&a, &watch("/b", &["M1:/srv"])).is_err());
    assert!(pair(&a, &watch("/b", &["m2:/srv/b"])).is_ok());
    assert!(pair(&a, &watch("/b", &["m1:/srv2"])).is_ok());
    assert!(pair(&watch("/a", &["m1:"]), &watch("/b", &["m1:b"])).is_err());
    let d = watch("/a", &["rsync://h/mod/"]);
    assert!(pair(&d, &watch("/b", &["h::mod/b"])).is_err());
    assert!(pair(&d, &watch("/b", &["rsync://h:8730/mod/b"])).is_ok());
    assert!(alone(&watch("/a", &["/m/", "/m/a"])).is_err());
    assert!(alone(&watch("/a", &["/m1/", "/m2/"])).is_ok());
}

#[test]
fn every_relation_is_found_in_either_order_and_named() {
    let cases: &[(WatchPlaces, WatchPlaces, &str)] = &[
        (
            watch("/w/a", &["/m/a"]),
            watch("/w/a/b", &["/m/b"]),
            "is nested inside",
        ),
        (
            watch("/w/a/b", &["/m/b"]),
            watch("/w/a", &["/m/a"]),
            "contains",
        ),
        (
            watch("/w/a", &["/m/a"]),
            watch("/w/a", &["/m/b"]),
            "same directory",
        ),
        (
            watch("/w/a", &["/m/a"]),
            watch("/w/b", &["/w/a/x"]),
            "is inside the watched",
        ),
        (
            watch("/w/a", &["/m/a"]),
            watch("/w/b", &["/w"]),
            "contains the watched",
        ),
        (
            watch("/w/a", &["/w/b/m"]),
            watch("/w/b", &["/m/b"]),
            "/w/b/m (of the watch /w/a) is inside the watched directory /w/b",
        ),
        (
            watch("/w/a", &["/m"]),
            watch("/w/b", &["/m/b"]),
            "is inside the destination /m ",
        ),
        (
            watch("/w/a", &["/m/a/b"]),
            watch("/w/b", &["/m/a"]),
            "contains the destination /m/a/b",
        ),
    ];
    for (first, second, expected) in cases {
        let e = pair(first, second).unwrap_err().to_string();
        assert!(e.contains(expected), "{first:?} then {second:?}: {e}");
    }
    // Neighbours that only share a prefix of their names do not overlap.
    assert!(pair(&watch("/w/a", &["/m/a"]), &watch("/w/a2", &["/m/a2"])).is_ok());
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
    let e = alone(&WatchPlaces {
        source: source.clone(),
        destinations: vec![dest.clone()],
    })
    .unwrap_err();
    assert!(e.to_string().contains("is inside"), "{e}");
    let e = check_destination_now(&dest, [source.as_path()]).unwrap_err();
    assert!(e.to_string().contains("now resolves to"), "{e}");
}

#[test]
fn ten_thousand_watches_are_checked_without_comparing_every_pair() {
    let mut layout = Layout::default();
    let started = std::time::Instant::now();
    for i in 0..10_000 {
        let w = watch(
            &format!("/nonexistent/srv/site{i}/www"),
            &[
                &format!("/nonexistent/mirror/site{i}"),
                &format!("m1:/backup/site{i}"),
            ],
        );
        layout.add(i, &w).unwrap();
    }
    let e = layout
        .check(&watch("/nonexistent/srv/site77", &["/nonexistent/other"]))
        .unwrap_err();
    assert!(
        matches!(
            e,
            LayoutError::Watches {
                other_index: 77,
                ..
            }
        ),
        "{e}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// A watch of a kernel tree (`add /proc`): its files are made up as they are
/// read and no event says when they change, so the mirror could never be
/// equal; before, one was accepted and rsync copied `/proc` into the mirror
/// (found by a black-box attack).
#[test]
fn a_watch_of_a_kernel_tree_is_refused_naming_it() {
    for source in ["/proc", "/proc/self", "/sys", "/sys/kernel"] {
        let e = alone(&watch(source, &["/tmp/inosync-never-made"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains(source), "{source}: {e}");
        assert!(e.contains("kernel"), "{source}: {e}");
    }
    if std::path::Path::new("/sys/fs/cgroup").is_dir() {
        let e = alone(&watch("/sys/fs/cgroup", &["/tmp/inosync-never-made"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("kernel"), "{e}");
    }
}
