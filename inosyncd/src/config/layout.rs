//! Where sources and destinations lie relative to each other. rsync with
//! `--delete` makes its destination equal to its source: a destination that is a
//! source, inside one, or above one deletes or nests trees it must never touch;
//! two destinations where one contains the other delete each other's files; two
//! watches where one contains the other fight over the same files. These checks
//! run wherever watches come into being (start, `--check`, `add`, `reload`), on
//! places compared by component after resolving symlinks (see `places.rs`).
//!
//! Each place is resolved once and kept in a map ordered by host and component:
//! whether a new place is one already there, lies below one or above one is a
//! look-up per ancestor and one range query, so a thousand watches are checked
//! in milliseconds rather than compared pair by pair.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use super::places::{Place, Relation};

/// One watch as the checks see it: its source and the rsync destinations of its
/// targets.
#[derive(Debug, Clone)]
pub struct WatchPlaces {
    /// The watched directory (absolute, symlinks resolved).
    pub source: PathBuf,
    /// `target + remote_path` for each target.
    pub destinations: Vec<String>,
}

/// A layout that would destroy data, naming both places.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A watch on `/`.
    #[error(
        "a watch on {} would mirror the whole system (and every target inside it); \
         watch the directories you mean",
        .0.display()
    )]
    WholeSystem(PathBuf),
    /// Two watched trees overlap.
    #[error("watch {} {} watch {}", .path.display(), watches(*.relation), .other.display())]
    Watches {
        /// The watch being checked.
        path: PathBuf,
        /// How it lies relative to `other`.
        relation: Relation,
        /// The watch it overlaps.
        other: PathBuf,
        /// The caller's number of `other` (a config names its line).
        other_index: usize,
    },
    /// A destination overlaps a watched tree.
    #[error(
        "the destination {destination} (of the watch {}) {} the watched directory {}: \
         rsync --delete would {}; choose a destination outside every watched tree",
        .watch.display(),
        places(*.relation),
        .watched.display(),
        damage(*.relation)
    )]
    DestinationAndSource {
        /// The destination as configured.
        destination: String,
        /// The watch it belongs to.
        watch: PathBuf,
        /// How the destination lies relative to `watched`.
        relation: Relation,
        /// The watched tree it overlaps.
        watched: PathBuf,
    },
    /// Two destinations overlap.
    #[error(
        "the destination {destination} (of the watch {}) {} the destination {other} \
         (of the watch {}): each sync would delete the other's files; give every watch \
         and target its own destination",
        .watch.display(),
        places(*.relation),
        .other_watch.display()
    )]
    Destinations {
        /// The destination as configured.
        destination: String,
        /// The watch it belongs to.
        watch: PathBuf,
        /// How it lies relative to `other`.
        relation: Relation,
        /// The other destination as configured.
        other: String,
        /// The watch that one belongs to.
        other_watch: PathBuf,
    },
}

fn watches(relation: Relation) -> &'static str {
    match relation {
        Relation::Same => "is the same directory as",
        Relation::Inside => "is nested inside",
        Relation::Contains => "contains",
    }
}

fn places(relation: Relation) -> &'static str {
    match relation {
        Relation::Same => "is the same directory as",
        Relation::Inside => "is inside",
        Relation::Contains => "contains",
    }
}

fn damage(relation: Relation) -> &'static str {
    match relation {
        Relation::Inside => "nest the mirror inside itself, level after level, in",
        _ => "delete or overwrite",
    }
}

impl Relation {
    fn reversed(self) -> Relation {
        match self {
            Relation::Same => Relation::Same,
            Relation::Inside => Relation::Contains,
            Relation::Contains => Relation::Inside,
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(places(*self))
    }
}

/// What a place in the map is.
#[derive(Debug, Clone)]
struct Owner {
    /// The caller's number for the watch.
    index: usize,
    /// The watch's source.
    watch: PathBuf,
    /// `None` for the source itself, else the destination as configured.
    destination: Option<String>,
}

/// Debug builds only: `INOSYNC_TEST_NO_LAYOUT_CHECK` lets a test start a layout
/// these checks would refuse, to prove the sandbox holds on its own.
fn checks_disabled_for_a_test() -> bool {
    cfg!(debug_assertions) && std::env::var_os("INOSYNC_TEST_NO_LAYOUT_CHECK").is_some()
}

/// The places of the watches accepted so far.
#[derive(Debug, Default)]
pub struct Layout {
    places: BTreeMap<Place, Vec<Owner>>,
}

/// A watch's places, resolved once.
struct Resolved<'a> {
    watch: &'a WatchPlaces,
    source: Place,
    destinations: Vec<Place>,
}

impl<'a> Resolved<'a> {
    fn new(watch: &'a WatchPlaces) -> Resolved<'a> {
        Resolved {
            watch,
            source: Place::local(&watch.source),
            destinations: watch
                .destinations
                .iter()
                .map(|d| Place::of_destination(d))
                .collect(),
        }
    }

    /// The watch on its own: no destination that is its source,
    /// inside it or above it, no two destinations inside each other.
    fn check_alone(&self) -> Result<(), LayoutError> {
        for (i, place) in self.destinations.iter().enumerate() {
            if let Some(relation) = place.relation(&self.source) {
                return Err(self.against_source(i, relation, &self.watch.source));
            }
            for (j, other) in self.destinations.iter().enumerate().skip(i + 1) {
                if let Some(relation) = place.relation(other) {
                    return Err(LayoutError::Destinations {
                        destination: self.watch.destinations[i].clone(),
                        watch: self.watch.source.clone(),
                        relation,
                        other: self.watch.destinations[j].clone(),
                        other_watch: self.watch.source.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    fn against_source(&self, i: usize, relation: Relation, watched: &Path) -> LayoutError {
        LayoutError::DestinationAndSource {
            destination: self.watch.destinations[i].clone(),
            watch: self.watch.source.clone(),
            relation,
            watched: watched.to_path_buf(),
        }
    }
}

impl Layout {
    /// Adds a watch without checking it (one accepted earlier: a new watch is
    /// checked against it, not it against the others).
    pub fn insert(&mut self, index: usize, watch: &WatchPlaces) {
        self.insert_resolved(index, &Resolved::new(watch));
    }

    fn insert_resolved(&mut self, index: usize, resolved: &Resolved) {
        let owner = |destination: Option<String>| Owner {
            index,
            watch: resolved.watch.source.clone(),
            destination,
        };
        self.places
            .entry(resolved.source.clone())
            .or_default()
            .push(owner(None));
        for (place, text) in resolved
            .destinations
            .iter()
            .zip(&resolved.watch.destinations)
        {
            self.places
                .entry(place.clone())
                .or_default()
                .push(owner(Some(text.clone())));
        }
    }

    /// Checks a watch on its own and against every watch in the layout.
    pub fn check(&self, watch: &WatchPlaces) -> Result<(), LayoutError> {
        self.check_resolved(&Resolved::new(watch))
    }

    /// [`Layout::check`], then [`Layout::insert`] when it fits.
    pub fn add(&mut self, index: usize, watch: &WatchPlaces) -> Result<(), LayoutError> {
        let resolved = Resolved::new(watch);
        self.check_resolved(&resolved)?;
        self.insert_resolved(index, &resolved);
        Ok(())
    }

    fn check_resolved(&self, new: &Resolved) -> Result<(), LayoutError> {
        if checks_disabled_for_a_test() {
            return Ok(());
        }
        if new.watch.source.parent().is_none() {
            return Err(LayoutError::WholeSystem(new.watch.source.clone()));
        }
        // Two watches of one tree first: the plainest thing to name.
        if let Some((relation, owner)) = self.overlapping(&new.source, |o| o.destination.is_none())
        {
            return Err(LayoutError::Watches {
                path: new.watch.source.clone(),
                relation,
                other: owner.watch.clone(),
                other_index: owner.index,
            });
        }
        new.check_alone()?;
        if let Some((relation, owner)) = self.overlapping(&new.source, |o| o.destination.is_some())
            && let Some(destination) = &owner.destination
        {
            return Err(LayoutError::DestinationAndSource {
                destination: destination.clone(),
                watch: owner.watch.clone(),
                relation: relation.reversed(),
                watched: new.watch.source.clone(),
            });
        }
        for (i, place) in new.destinations.iter().enumerate() {
            if let Some((relation, owner)) = self.overlapping(place, |_| true) {
                return Err(match &owner.destination {
                    None => new.against_source(i, relation, &owner.watch),
                    Some(other) => LayoutError::Destinations {
                        destination: new.watch.destinations[i].clone(),
                        watch: new.watch.source.clone(),
                        relation,
                        other: other.clone(),
                        other_watch: owner.watch.clone(),
                    },
                });
            }
        }
        Ok(())
    }

    /// A place in the layout that `place` is, lies inside or contains, owned as
    /// `wanted` says, with how `place` lies relative to it. The places below
    /// `place` sort right after it (a place sorts before every place it is a
    /// prefix of, and those form one run), so they are one range to walk.
    fn overlapping(
        &self,
        place: &Place,
        wanted: impl Fn(&Owner) -> bool,
    ) -> Option<(Relation, &Owner)> {
        for ancestor in place.with_ancestors() {
            if let Some(owner) = self
                .places
                .get(&ancestor)
                .and_then(|o| o.iter().find(|o| wanted(o)))
            {
                let relation = if ancestor == *place {
                    Relation::Same
                } else {
                    Relation::Inside
                };
                return Some((relation, owner));
            }
        }
        self.places
            .range((Bound::Excluded(place), Bound::Unbounded))
            .take_while(|(below, _)| below.is_below(place))
            .find_map(|(_, owners)| owners.iter().find(|o| wanted(o)))
            .map(|owner| (Relation::Contains, owner))
    }
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
            source,
            destinations: vec![dest],
        })
        .unwrap_err();
        assert!(e.to_string().contains("is inside"), "{e}");
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
}
