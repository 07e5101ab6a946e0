//! Why a tree cannot be watched by fanotify. Under `backend = "auto"` the tree
//! falls back to inotify and the text is the reason `status` shows; under
//! `backend = "fanotify"` it is the error the watch fails with (README
//! "Backends: fanotify and inotify"). The text is made only there.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// What kept fanotify from watching a tree, step by step.
#[derive(Debug, thiserror::Error)]
pub enum FanotifyError {
    /// No fanotify group without CAP_SYS_ADMIN.
    #[error("fanotify needs CAP_SYS_ADMIN (root): {0}")]
    NeedsRoot(io::Error),
    /// The kernel cannot report directory handles and names (before 5.17).
    #[error("this kernel has no fanotify with directory file handles and names (5.17+): {0}")]
    OldKernel(io::Error),
    /// The group could not be created for another reason.
    #[error("cannot create a fanotify group: {0}")]
    NoGroup(io::Error),
    /// No group was made (never the case once one was asked for).
    #[error("no fanotify group")]
    Missing,
    /// The group failed when it was first needed: the same reason every time.
    #[error(transparent)]
    Unavailable(Arc<FanotifyError>),
    /// The root's path as the kernel sees it cannot be resolved.
    #[error("cannot resolve: {0}")]
    Resolve(io::Error),
    /// The root cannot be stat'ed.
    #[error("cannot stat: {0}")]
    Stat(io::Error),
    /// Its filesystem cannot be asked for its id.
    #[error("cannot statfs: {0}")]
    Statfs(io::Error),
    /// The filesystem gives no file handles.
    #[error("no file handles on this filesystem ({0})")]
    NoHandles(io::Error),
    /// The filesystem-wide mark was refused (`why`: what that errno means here).
    #[error("cannot mark the filesystem: {error}{why}")]
    Mark {
        /// What `fanotify_mark` returned.
        error: io::Error,
        /// The likely cause, or nothing.
        why: &'static str,
    },
    /// A filesystem mounted inside the tree cannot be marked.
    #[error("the {fstype} filesystem mounted at {} cannot be watched: {cause}", point.display())]
    Submount {
        /// Its type, as the mount table says.
        fstype: String,
        /// Where it is mounted.
        point: PathBuf,
        /// Why it cannot be marked.
        cause: Box<FanotifyError>,
    },
}
