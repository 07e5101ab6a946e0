//! The order a batch's moves are renamed in on the target. They come in the
//! order they happened, but fanotify names a directory by where it is when its
//! event is read: after `mv music/album "music/album 2"; mv music audio`, the
//! first move reads `audio/album -> audio/album 2`, which only exists on the
//! target once the second is done. So a move whose new path holds another's
//! old path goes first; the moves it overtakes are out of their order, and
//! what they bring is compared by content (README "How a sync works", Moves).

use super::Move;

/// Whether `to` is a proper ancestor of `path`.
fn holds(to: &[u8], path: &[u8]) -> bool {
    path.len() > to.len() && path.starts_with(to) && path[to.len()] == b'/'
}

/// The positions of `moves` in the order to rename them: recorded order, except
/// that a later move whose new path holds an earlier one's old path comes
/// before it, and the moves recorded between them that wait for nothing go
/// ahead of the one that waits too ([`unsure`] says which renames that makes
/// uncertain). (A later move only ever goes before an earlier one, so there is
/// no cycle.)
pub fn order(moves: &[Move]) -> Vec<usize> {
    let n = moves.len();
    // waits[i]: later moves that must be renamed before move i.
    let waits: Vec<Vec<usize>> = (0..n)
        .map(|i| {
            (i + 1..n)
                .filter(|&j| holds(&moves[j].to, &moves[i].from))
                .collect()
        })
        .collect();
    let mut placed = vec![false; n];
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        // The first move (in recorded order) with nothing left to wait for;
        // there is always one, the last unplaced move waits for nothing.
        let Some(next) = (0..n).find(|&i| !placed[i] && waits[i].iter().all(|&j| placed[j])) else {
            break;
        };
        placed[next] = true;
        out.push(next);
    }
    out
}

/// For each move, whether a move recorded after it is renamed before it.
#[cfg(test)]
fn out_of_order(moves: &[Move]) -> Vec<bool> {
    out_of_order_in(&order(moves), moves.len())
}

/// For each move, whether a move recorded after it is renamed before it in
/// `order`.
fn out_of_order_in(order: &[usize], n: usize) -> Vec<bool> {
    let mut done_later = vec![false; n];
    let mut latest = None;
    for &i in order {
        if latest.is_some_and(|l| l > i) {
            done_later[i] = true;
        }
        latest = latest.max(Some(i));
    }
    done_later
}

/// Whether one of two paths is the other or lies below it.
fn related(a: &[u8], b: &[u8]) -> bool {
    a == b || holds(a, b) || holds(b, a)
}

/// Whether a path of one move is, holds or lies below a path of the other.
fn moves_related(a: &Move, b: &Move) -> bool {
    [&a.from, &a.to]
        .iter()
        .any(|p| related(p, &b.from) || related(p, &b.to))
}

/// For each move, whether what its rename brought may not be what the
/// source has there, so that its new place is compared by content rather
/// than by size and mtime:
/// - a move renamed out of its order (a later one went first);
/// - a move that went ahead of an earlier one it is related to (a path of
///   one is, holds or lies below a path of the other), other than one it
///   had to go before: fanotify's `mv music/y top/x; mv top/x top/z; mv
///   music audio` has the second renamed first, taking the target's *old*
///   `top/x` (a review);
/// - a move renamed after a related one that was not renamed: `mv y x; mv x
///   z`, the first refused on the target (`x` is there), renames the
///   target's old `x` to `z`, which has the size and mtime of the source's
///   `z` when `x` and `y` had them alike (a black-box attack).
///
/// - a move renamed out of or into one of the batch's `trees` compared
///   whole, whose content the daemon does not know (both halves of a
///   `RENAME_EXCHANGE`: `mv d/f g` after `d` and `e` were swapped renamed the
///   target's old `d/f`; a black-box attack).
///
/// Any such move, renamed or not, taints the related moves renamed after it.
pub fn unsure(moves: &[Move], renamed: &[bool], trees: &[Vec<u8>]) -> Vec<bool> {
    let order = order(moves);
    let mut unsure = out_of_order_in(&order, moves.len());
    let mut at = vec![0; moves.len()];
    for (position, &i) in order.iter().enumerate() {
        at[i] = position;
    }
    let mut tainted: Vec<&[u8]> = trees.iter().map(Vec::as_slice).collect();
    for &k in &order {
        let m = &moves[k];
        let ok = renamed.get(k).copied().unwrap_or(false);
        let overtook = (0..k)
            .any(|i| at[i] > at[k] && moves_related(m, &moves[i]) && !holds(&m.to, &moves[i].from));
        let depends = tainted
            .iter()
            .any(|t| related(&m.from, t) || related(&m.to, t));
        if ok && (overtook || depends) {
            unsure[k] = true;
        }
        if !ok || unsure[k] {
            tainted.extend([m.from.as_slice(), m.to.as_slice()]);
        }
    }
    unsure
}

#[cfg(test)]
mod tests {
    use super::super::tests::mv;
    use super::*;

    #[test]
    fn moves_keep_their_order_when_none_holds_another() {
        let moves = [mv("a", "b"), mv("b/x", "b/y"), mv("c", "d")];
        assert_eq!(order(&moves), [0, 1, 2]);
        assert_eq!(out_of_order(&moves), [false, false, false]);
    }

    #[test]
    fn a_parent_moved_later_is_renamed_first() {
        // fanotify's reading of `mv music/album "music/album 2"; mv music audio`.
        let moves = [mv("audio/album", "audio/album 2"), mv("music", "audio")];
        assert_eq!(order(&moves), [1, 0]);
        assert_eq!(out_of_order(&moves), [true, false]);
    }

    #[test]
    fn a_name_that_only_starts_alike_is_not_held() {
        let moves = [mv("audio2/x", "audio2/y"), mv("music", "audio")];
        assert_eq!(order(&moves), [0, 1]);
    }

    #[test]
    fn a_rename_after_a_refused_one_it_depends_on_is_unsure() {
        // mv y x (refused: x is on the target); mv x z (renamed: the old x).
        let moves = [mv("y", "x"), mv("x", "z")];
        assert_eq!(unsure(&moves, &[false, true], &[]), [false, true]);
        assert_eq!(unsure(&moves, &[true, true], &[]), [false, false]);
        // Below a refused one's old place, and on through a chain.
        let moves = [mv("d", "e"), mv("d/f", "g"), mv("g", "h"), mv("k", "l")];
        assert_eq!(
            unsure(&moves, &[false, true, true, true], &[]),
            [false, true, true, false]
        );
    }

    /// fanotify's reading of `mv music/y top/x; mv top/x top/z; mv music
    /// audio`: the first waits for the third, and the second, free, went
    /// ahead of it and renamed the target's *old* `top/x` (a review).
    #[test]
    fn a_rename_that_overtook_an_earlier_one_it_depends_on_is_unsure() {
        let moves = [
            mv("audio/y", "top/x"),
            mv("top/x", "top/z"),
            mv("music", "audio"),
        ];
        assert_eq!(order(&moves), [1, 2, 0]);
        assert_eq!(
            unsure(&moves, &[true, true, true], &[]),
            [true, true, false]
        );
        // Ahead of an unrelated one it is not.
        let moves = [mv("audio/y", "top/x"), mv("k", "l"), mv("music", "audio")];
        assert_eq!(
            unsure(&moves, &[true, true, true], &[]),
            [true, false, false]
        );
    }

    #[test]
    fn a_rename_out_of_or_into_a_tree_compared_whole_is_unsure() {
        let moves = [mv("d/f", "g"), mv("k", "e/h"), mv("m", "n")];
        let trees = [b"d".to_vec(), b"e".to_vec()];
        assert_eq!(
            unsure(&moves, &[true, true, true], &trees),
            [true, true, false]
        );
    }

    #[test]
    fn chains_of_parents_are_undone_from_the_last() {
        // mv a/b/c a/b/c2; mv a/b a/b2; mv a z, read after all three.
        let moves = [mv("z/b2/c", "z/b2/c2"), mv("z/b", "z/b2"), mv("a", "z")];
        assert_eq!(order(&moves), [2, 1, 0]);
        assert_eq!(out_of_order(&moves), [true, true, false]);
    }
}
