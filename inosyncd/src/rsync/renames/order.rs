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
/// before it. (A later move only ever goes before an earlier one, so there is
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
pub fn out_of_order(moves: &[Move]) -> Vec<bool> {
    let order = order(moves);
    let mut done_later = vec![false; moves.len()];
    let mut latest = None;
    for &i in &order {
        if latest.is_some_and(|l| l > i) {
            done_later[i] = true;
        }
        latest = latest.max(Some(i));
    }
    done_later
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
    fn chains_of_parents_are_undone_from_the_last() {
        // mv a/b/c a/b/c2; mv a/b a/b2; mv a z, read after all three.
        let moves = [mv("z/b2/c", "z/b2/c2"), mv("z/b", "z/b2"), mv("a", "z")];
        assert_eq!(order(&moves), [2, 1, 0]);
        assert_eq!(out_of_order(&moves), [true, true, false]);
    }
}
