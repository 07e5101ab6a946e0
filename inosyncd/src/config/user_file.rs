//! Reading a file the user names for the daemon to read (the config, an
//! `exclude_from` list, a config to convert): opened without blocking (a fifo
//! would wait for a writer, and the whole daemon with it, at every reload),
//! read only when it is a regular file, and never more than a bound (a
//! config symlinked to `/dev/zero` would fill the memory of the host).

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Why a user's file was not read.
#[derive(Debug, thiserror::Error)]
pub enum UserFileError {
    /// It could not be opened or read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A fifo, a device, a directory, a socket: reading it could block or
    /// never end.
    #[error("it is not a regular file (a fifo, a device or a directory)")]
    NotAFile,
    /// Larger than any such file: refused rather than read into memory.
    #[error("it is {size} bytes; at most {max} are read")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The bound.
        max: u64,
    },
}

/// The bytes of `path` (symlinks followed: a config may live elsewhere),
/// when it is a regular file of at most `max` bytes.
pub fn read(path: &Path, max: u64) -> Result<Vec<u8>, UserFileError> {
    let handle = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = handle.metadata()?;
    if !meta.is_file() {
        return Err(UserFileError::NotAFile);
    }
    if meta.len() > max {
        return Err(UserFileError::TooLarge {
            size: meta.len(),
            max,
        });
    }
    let mut bytes = Vec::new();
    // A file that grows while it is read stops at the bound too.
    handle.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(UserFileError::TooLarge {
            size: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

/// Makes a fifo at `path` (tests: a config or exclude file that would block).
#[cfg(test)]
pub fn make_fifo(path: &Path) {
    let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: a valid, NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_is_read_and_anything_else_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "delay = 1\n").unwrap();
        assert_eq!(read(&file, 100).unwrap(), b"delay = 1\n");
        assert!(matches!(
            read(&file, 5),
            Err(UserFileError::TooLarge { size: 10, max: 5 })
        ));
        assert!(matches!(
            read(dir.path(), 100),
            Err(UserFileError::NotAFile)
        ));
        let fifo = dir.path().join("fifo");
        make_fifo(&fifo);
        assert!(matches!(read(&fifo, 100), Err(UserFileError::NotAFile)));
        assert!(matches!(
            read(Path::new("/dev/null"), 100),
            Err(UserFileError::NotAFile)
        ));
    }
}
