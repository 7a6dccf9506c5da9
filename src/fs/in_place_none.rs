//! Where `in_place` cannot be built (Linux without glibc's `statx` layout, other systems):
//! nothing is tried in place, and every call goes to the pool as std's call.

use std::fs::File;
use std::io;
use std::path::Path;

/// How far the attempt got: never anywhere here.
#[derive(Debug)]
pub(super) enum Attempt {
    /// Never made here (see the Linux `in_place`).
    #[allow(dead_code, reason = "the same surface as the Linux module")]
    Read(Vec<u8>),
    /// Never made here (see the Linux `in_place`).
    #[allow(dead_code, reason = "the same surface as the Linux module")]
    Started(File, Vec<u8>),
    /// Nothing done.
    Untried,
}

pub(super) fn read(_path: &Path) -> Attempt {
    Attempt::Untried
}

pub(super) fn open(_path: &Path) -> Option<File> {
    None
}

pub(super) fn metadata(_path: &Path, _follow: bool) -> Option<std::fs::Metadata> {
    None
}

pub(super) fn is_local(_file: &File) -> bool {
    false
}

pub(super) fn read_nowait(_file: &File, _buf: &mut [u8]) -> io::Result<usize> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}
