//! The process's soft resource limits, read for error messages: an error met at a limit names
//! the limit and its value, so that the reader knows which one to raise and from what.

/// Which limit: the ones the runtime can run into.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limit {
    /// `RLIMIT_NOFILE`, `ulimit -n`: open fds.
    Fds,
    /// `RLIMIT_NPROC`, `ulimit -u`: threads and processes of the user.
    Threads,
    /// `RLIMIT_AS`, `ulimit -v`: address space (shown in KiB, as `ulimit -v` takes it).
    AddressSpace,
}

impl Limit {
    /// The soft limit, or `None` if it is unlimited or cannot be read.
    fn soft(self) -> Option<u64> {
        let resource = match self {
            Limit::Fds => libc::RLIMIT_NOFILE,
            Limit::Threads => libc::RLIMIT_NPROC,
            Limit::AddressSpace => libc::RLIMIT_AS,
        };
        let mut limit = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
        // SAFETY: `limit` is valid for writes of a `rlimit`.
        if unsafe { libc::getrlimit(resource, &mut limit) } != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
            return None;
        }
        Some(limit.rlim_cur)
    }

    /// `ulimit -n = 1024`, or just `ulimit -n` when unlimited: for a message's parentheses.
    pub(crate) fn describe(self) -> String {
        let (flag, scale, unit) = match self {
            Limit::Fds => ('n', 1, ""),
            Limit::Threads => ('u', 1, ""),
            Limit::AddressSpace => ('v', 1024, " KiB"),
        };
        match self.soft() {
            Some(value) => format!("ulimit -{flag} = {}{unit}", value / scale),
            None => format!("ulimit -{flag}"),
        }
    }

    /// For an out-of-memory message: ` (the process's address space is limited to N KiB by
    /// RLIMIT_AS: raise it with ulimit -v)` when such a limit is set, else empty.
    pub(crate) fn address_space_note() -> String {
        match Limit::AddressSpace.soft() {
            Some(bytes) => format!(
                " (the process's address space is limited to {} KiB by RLIMIT_AS: raise it with ulimit -v)",
                bytes / 1024
            ),
            None => String::new(),
        }
    }
}
