//! The kernel's own filesystems (`/proc`, `/sys`, control groups, ...): their
//! files are made up as they are read and no event says when they change, so
//! they are never watched nor mirrored. A watch root or a local target on one
//! is refused (`config::layout::unmakeable`); one mounted inside a tree (a
//! chroot's `proc`) is left out by the watchers and, as root, hidden from rsync
//! (`sandbox::source_view`). README "Layout refusals", docs/RELIABILITY.md.

/// One kernel filesystem: its `statfs` type (linux/magic.h), its name in
/// `/proc/self/mountinfo`, and the words messages use.
pub struct KernelFilesystem {
    /// `f_type` of `statfs(2)`.
    pub magic: i64,
    /// The type field of `/proc/self/mountinfo`.
    pub name: &'static str,
    /// How messages name it.
    pub words: &'static str,
}

const fn fs(magic: i64, name: &'static str, words: &'static str) -> KernelFilesystem {
    KernelFilesystem { magic, name, words }
}

/// Every kernel filesystem the daemon knows.
pub const ALL: &[KernelFilesystem] = &[
    fs(0x9fa0, "proc", "procfs (the kernel's /proc)"),
    fs(0x6265_6572, "sysfs", "sysfs (the kernel's /sys)"),
    fs(
        0x0027_e0eb,
        "cgroup",
        "cgroupfs (the kernel's control groups)",
    ),
    fs(
        0x6367_7270,
        "cgroup2",
        "cgroup2fs (the kernel's control groups)",
    ),
    fs(0x1cd1, "devpts", "devpts (the kernel's terminals)"),
    fs(0x6462_6720, "debugfs", "debugfs"),
    fs(0x7472_6163, "tracefs", "tracefs"),
    fs(0x7363_6673, "securityfs", "securityfs"),
    fs(0x6165_676c, "pstore", "pstore"),
    fs(0xcafe_4a11, "bpf", "bpffs"),
    fs(0x6265_6570, "configfs", "configfs"),
    fs(0xde5e_81e4, "efivarfs", "efivarfs"),
    fs(0x1980_0202, "mqueue", "mqueue (POSIX message queues)"),
    fs(0x6573_5543, "fusectl", "fusectl"),
    fs(0x4249_4e4d, "binfmt_misc", "binfmt_misc"),
    fs(
        0x6e73_6673,
        "nsfs",
        "nsfs (a namespace's file, as `ip netns` binds it)",
    ),
    fs(0xf97c_ff8c, "selinuxfs", "selinuxfs"),
    fs(0x6759_6969, "rpc_pipefs", "rpc_pipefs (NFS's pipes)"),
];

/// The kernel filesystem of `statfs` type `magic`, if it is one.
pub fn by_magic(magic: i64) -> Option<&'static KernelFilesystem> {
    ALL.iter().find(|k| k.magic == magic)
}

/// Whether a mount table's type names a kernel filesystem.
pub fn is_named(fstype: &str) -> bool {
    ALL.iter().any(|k| k.name == fstype)
}
