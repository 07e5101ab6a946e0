//! The id of the filesystem a path is on (`statfs` f_fsid), read in one place.
//! Two users spell it as a number differently: fanotify copies the two
//! integers byte for byte into its events, and the engine's source check keeps
//! its own spelling in the state file (README "How a sync works": a watch
//! root on another filesystem than recorded is `source missing`), which must
//! stay as it is for state files already written.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A filesystem's id, as `statfs` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fsid([i32; 2]);

impl Fsid {
    /// The id of the filesystem holding `path`.
    pub fn of(path: &Path) -> io::Result<Fsid> {
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
        // SAFETY: statfs fills the zeroed struct we own from a NUL-terminated path.
        let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statfs(c_path.as_ptr(), &mut buf) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fsid_t is two plain integers.
        Ok(Fsid(unsafe {
            std::mem::transmute::<libc::fsid_t, [i32; 2]>(buf.f_fsid)
        }))
    }

    /// As fanotify's events carry it: the 8 bytes in memory order.
    pub fn as_fanotify(self) -> u64 {
        let [a, b] = self.0;
        let mut raw = [0u8; 8];
        raw[..4].copy_from_slice(&a.to_ne_bytes());
        raw[4..].copy_from_slice(&b.to_ne_bytes());
        u64::from_ne_bytes(raw)
    }

    /// As the state file records it (first integer high, second low).
    pub fn as_recorded(self) -> u64 {
        let [a, b] = self.0;
        (u64::from(a as u32) << 32) | u64::from(b as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_come_from_one_reading() {
        let id = Fsid::of(Path::new("/")).expect("statfs /");
        let [a, b] = id.0;
        assert_eq!(id.as_recorded() >> 32, u64::from(a as u32));
        assert_eq!(id.as_recorded() & 0xffff_ffff, u64::from(b as u32));
        assert_eq!(&id.as_fanotify().to_ne_bytes()[..4], &a.to_ne_bytes());
        assert!(Fsid::of(Path::new("/nonexistent/x")).is_err());
    }
}
