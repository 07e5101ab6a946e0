//! The watch table's layout and its paths through renames, detaches and churn.

use super::*;

#[test]
fn entries_stay_small() {
    assert_eq!(std::mem::size_of::<Node>(), 24);
}

#[test]
fn paths_follow_renames_and_detached_directories_have_none() {
    let mut tree = WatchTree::default();
    let root = tree.insert(None, 7, b"", 1);
    let a = tree.insert(Some(root), 7, b"a", 2);
    let b = tree.insert(Some(a), 7, b"b", 3);
    let c = tree.insert(Some(root), 7, b"c", 4);
    assert_eq!(tree.rel_path(b).unwrap(), b"a/b");
    assert_eq!(tree.count(7), 4);
    assert_eq!(tree.watch_of(b), Some(7));

    tree.move_to(a, c, b"renamed");
    assert_eq!(tree.rel_path(b).unwrap(), b"c/renamed/b");
    assert_eq!(tree.child(c, b"renamed"), Some(a));
    assert_eq!(tree.child(root, b"a"), None);

    tree.detach(a);
    assert!(tree.is_detached(a));
    assert_eq!(tree.rel_path(b), None);
    assert_eq!(tree.watch_of(b), None);
    let d = tree.insert(Some(root), 7, b"d", 5);
    tree.detach(d);
    tree.remove_subtree(d);
    assert_eq!(
        tree.count(7),
        4,
        "a detached directory still counts against its tree"
    );
    tree.move_to(a, root, b"back");
    assert_eq!(tree.rel_path(b).unwrap(), b"back/b");

    // The same descriptor seen again somewhere else moves the entry.
    assert_eq!(tree.insert(Some(c), 7, b"again", 2), a);
    assert_eq!(tree.rel_path(b).unwrap(), b"c/again/b");

    let removed = tree.remove_subtree(a);
    assert_eq!(removed.len(), 2);
    assert_eq!(tree.count(7), 2);
    assert_eq!(tree.child(c, b"again"), None);
    assert_eq!(tree.node_of(3), None);
    // Freed slots are reused.
    let new = tree.insert(Some(root), 7, b"new", 9);
    assert!(
        [a, b].contains(&new),
        "slot {new} is not one of the freed ones"
    );
    assert_eq!(tree.node_of(9), Some(new));
}

#[test]
fn names_are_compacted_after_churn() {
    let mut tree = WatchTree::default();
    let root = tree.insert(None, 1, b"", 1);
    let long = vec![b'x'; 200];
    for round in 0..20_000 {
        let id = tree.insert(Some(root), 1, &long, 2 + round);
        tree.remove_subtree(id);
    }
    assert!(
        tree.names.len() < 2 << 20,
        "arena grew to {}",
        tree.names.len()
    );
    assert_eq!(tree.count(1), 1);
}
