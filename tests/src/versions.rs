//! Large files in versions: a file of whole MiB blocks whose content depends
//! on a seed (every block and every version differs), written fast and
//! checked byte for byte, and rsync's temp file for it on a target. For the
//! tests that stop a transfer half-way and check that the target still holds
//! the old version, whole.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::Rng;

const MIB: usize = 1 << 20;

/// Block `i` of the version made from `seed`.
fn block(seed: u64, i: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64);
    let mut out = vec![0u8; MIB];
    for chunk in out.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes()[..chunk.len()]);
    }
    out
}

/// Writes version `seed` of a file of `mib` MiB at `path`.
pub fn write_version(path: &Path, seed: u64, mib: usize) {
    let mut file = fs::File::create(path).expect("create a versioned file");
    for i in 0..mib {
        file.write_all(&block(seed, i))
            .expect("write a versioned file");
    }
}

/// Whether `path` is exactly version `seed` of `mib` MiB (`Err` says where it
/// is not).
pub fn is_version(path: &Path, seed: u64, mib: usize) -> Result<(), String> {
    let mut file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len != (mib * MIB) as u64 {
        return Err(format!(
            "{} is {len} bytes, not {}",
            path.display(),
            mib * MIB
        ));
    }
    let mut got = vec![0u8; MIB];
    for i in 0..mib {
        file.read_exact(&mut got).map_err(|e| e.to_string())?;
        if got != block(seed, i) {
            return Err(format!(
                "{}: MiB {i} is not version {seed}'s",
                path.display()
            ));
        }
    }
    Ok(())
}

/// rsync's temp file for `name` in `dir` (`.NAME.XXXXXX`), with its size.
/// The largest such name: a test may put a target-only look-alike
/// (`.big.backup`) beside it, and the directory may list either first.
pub fn temp_file(dir: &Path, name: &str) -> Option<(PathBuf, u64)> {
    let prefix = format!(".{name}.");
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let entry = e.file_name().to_string_lossy().into_owned();
            (entry.starts_with(&prefix) && entry.len() == prefix.len() + 6)
                .then(|| (e.path(), e.metadata().map_or(0, |m| m.len())))
        })
        .max_by_key(|(_, len)| *len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target-only file shaped like a temp file (`.big.backup`) beside
    /// rsync's real one is not taken for it, whichever the directory lists
    /// first (before: the first match won, and a CI run on ext4, which lists
    /// by a hash of the name, waited for a 3-byte `.big.backup` to grow). Many
    /// look-alike names, each made before and after the real file, so that
    /// some list first under any order.
    #[test]
    fn a_look_alike_beside_the_temp_file_is_not_taken_for_it() {
        let decoys = [
            "backup", "aaaaaa", "zzzzzz", "000000", "Qx9kLm", "old123", "v2copy", "tmp_01",
        ];
        for decoy in decoys {
            for decoy_first in [true, false] {
                let dir = tempfile::tempdir().unwrap();
                let decoy = dir.path().join(format!(".big.{decoy}"));
                let real = dir.path().join(".big.Ab3dEf");
                if decoy_first {
                    fs::write(&decoy, "own").unwrap();
                }
                fs::write(&real, [7u8; 4096]).unwrap();
                if !decoy_first {
                    fs::write(&decoy, "own").unwrap();
                }
                assert_eq!(
                    temp_file(dir.path(), "big"),
                    Some((real, 4096)),
                    "{}",
                    decoy.display()
                );
            }
        }
    }
}
