//! Where sources and destinations lie relative to each other. rsync with
//! `--delete` makes its destination equal to its source: a destination that is a
//! source, inside one, or above one deletes or nests trees it must never touch;
//! two destinations where one contains the other delete each other's files; two
//! watches where one contains the other fight over the same files. These checks
//! run wherever watches come into being (start, `--check`, `add`, `reload`), and
//! a local destination is checked again before every run (a symlink in it may
//! have been re-pointed since), on places compared by component after resolving
//! symlinks (see `places.rs`).
//!
//! Each place is resolved once and kept in a map ordered by host and component:
//! whether a new place is one already there, lies below one or above one is a
//! look-up per ancestor and one range query, so a thousand watches are checked
//! in milliseconds rather than compared pair by pair.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use super::checks::is_local_target;
use super::places::{Place, Relation};

mod error;
mod unmakeable;

pub use error::LayoutError;

/// One watch as the checks see it: its source and the rsync destinations of its
/// targets.
#[derive(Debug, Clone)]
pub struct WatchPlaces {
    /// The watched directory (absolute, symlinks resolved).
    pub source: PathBuf,
    /// `target + remote_path` for each target.
    pub destinations: Vec<String>,
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
pub fn checks_disabled_for_a_test() -> bool {
    cfg!(debug_assertions) && std::env::var_os("INOSYNC_TEST_NO_LAYOUT_CHECK").is_some()
}

/// The places of the watches accepted so far.
#[derive(Debug, Default)]
pub struct Layout {
    places: BTreeMap<Place, Vec<Owner>>,
}

/// A watch's places, resolved once: each by its path and, when local, also
/// by its filesystem and place there (see [`Place::on_filesystems`]), so that
/// a bind mount does not hide an overlap.
struct Resolved<'a> {
    watch: &'a WatchPlaces,
    sources: Vec<Place>,
    destinations: Vec<Vec<Place>>,
}

/// A local place by its path, then by its filesystem.
fn both_names(path: &Path) -> Vec<Place> {
    let resolved = super::places::resolve_local(path);
    let mut names = vec![Place::resolved_local(&resolved)];
    names.extend(Place::on_filesystems(&resolved));
    names
}

impl<'a> Resolved<'a> {
    fn new(watch: &'a WatchPlaces) -> Resolved<'a> {
        Resolved {
            watch,
            sources: both_names(&watch.source),
            destinations: watch
                .destinations
                .iter()
                .map(|d| {
                    if is_local_target(d) {
                        both_names(Path::new(d))
                    } else {
                        vec![Place::of_destination(d)]
                    }
                })
                .collect(),
        }
    }

    /// The watch on its own: no destination that is its source,
    /// inside it or above it, no two destinations inside each other.
    fn check_alone(&self) -> Result<(), LayoutError> {
        let related =
            |a: &[Place], b: &[Place]| a.iter().find_map(|a| b.iter().find_map(|b| a.relation(b)));
        for (i, places) in self.destinations.iter().enumerate() {
            if let Some(relation) = related(places, &self.sources) {
                return Err(self.against_source(i, relation, &self.watch.source));
            }
            for (j, others) in self.destinations.iter().enumerate().skip(i + 1) {
                if let Some(relation) = related(places, others) {
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

    /// No local destination that can never be made (below a regular file, on
    /// /proc or /sys): refused rather than retried forever.
    fn check_makeable(&self) -> Result<(), LayoutError> {
        for destination in &self.watch.destinations {
            if is_local_target(destination)
                && let Some(reason) = unmakeable::why_unmakeable(Path::new(destination))
            {
                return Err(LayoutError::Unmakeable {
                    destination: destination.clone(),
                    watch: self.watch.source.clone(),
                    reason,
                });
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
        for source in &resolved.sources {
            self.places
                .entry(source.clone())
                .or_default()
                .push(owner(None));
        }
        for (places, text) in resolved
            .destinations
            .iter()
            .zip(&resolved.watch.destinations)
        {
            for place in places {
                self.places
                    .entry(place.clone())
                    .or_default()
                    .push(owner(Some(text.clone())));
            }
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
        if let Some(reason) = unmakeable::why_unwatchable(&new.watch.source) {
            return Err(LayoutError::KernelTree(reason));
        }
        // Two watches of one tree first: the plainest thing to name.
        if let Some((relation, owner)) = new
            .sources
            .iter()
            .find_map(|source| self.overlapping(source, |o| o.destination.is_none()))
        {
            return Err(LayoutError::Watches {
                path: new.watch.source.clone(),
                relation,
                other: owner.watch.clone(),
                other_index: owner.index,
            });
        }
        new.check_alone()?;
        if let Some((relation, owner)) = new
            .sources
            .iter()
            .find_map(|source| self.overlapping(source, |o| o.destination.is_some()))
            && let Some(destination) = &owner.destination
        {
            return Err(LayoutError::DestinationAndSource {
                destination: destination.clone(),
                watch: owner.watch.clone(),
                relation: relation.reversed(),
                watched: new.watch.source.clone(),
            });
        }
        for (i, places) in new.destinations.iter().enumerate() {
            if let Some((relation, owner)) = places
                .iter()
                .find_map(|place| self.overlapping(place, |_| true))
            {
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
        // Last: an overlap says more about a layout than that rsync cannot
        // create the destination.
        new.check_makeable()?;
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

/// Before each run: where a local destination leads now, refused when that is,
/// lies inside or contains a watched tree (`roots`, canonical since they were
/// added: compared by component, with no look-up per root). Returns the
/// resolved path.
pub fn check_destination_now<'a>(
    destination: &str,
    roots: impl IntoIterator<Item = &'a Path>,
) -> Result<PathBuf, LayoutError> {
    let resolved = super::places::resolve_local(Path::new(destination));
    if checks_disabled_for_a_test() {
        return Ok(resolved);
    }
    let roots: Vec<&Path> = roots.into_iter().collect();
    for &root in &roots {
        let relation = if resolved == root {
            Relation::Same
        } else if resolved.starts_with(root) {
            Relation::Inside
        } else if root.starts_with(&resolved) {
            Relation::Contains
        } else {
            continue;
        };
        return Err(LayoutError::Moved {
            destination: destination.to_string(),
            resolved,
            relation,
            watched: root.to_path_buf(),
        });
    }
    // The same by filesystem and place there: a bind mount of a watched
    // tree, or of a directory in one, shows it at another path.
    let here = Place::on_filesystems(&resolved);
    if !here.is_empty() {
        for &root in &roots {
            let there = Place::on_filesystems(root);
            if let Some(relation) = here
                .iter()
                .find_map(|h| there.iter().find_map(|t| h.relation(t)))
            {
                return Err(LayoutError::Moved {
                    destination: destination.to_string(),
                    resolved,
                    relation,
                    watched: root.to_path_buf(),
                });
            }
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests;
