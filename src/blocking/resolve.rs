//! Name resolution that does not block a worker.
//!
//! `ToSocketAddrs` for a host name calls `getaddrinfo`, which may wait seconds for a DNS
//! server. On a green thread that would stall its whole worker, so [`resolve`] sends such
//! lookups to the blocking pool and parks until they are done.
//!
//! # Which arguments go to the pool
//!
//! `std::net::ToSocketAddrs` gives no way to ask whether a value will block, and it may be
//! implemented for types that are neither `Send` nor `Sync`, so the value itself cannot be
//! handed to a pool thread. Instead [`resolve`] recognises std's string forms, the only std
//! implementations that look names up: `&str`, `String`, `(&str, u16)` and `(String, u16)`,
//! each also behind one more reference (std implements the trait for `&T` too). For those it
//! first tries to parse the address (a `SocketAddr`, or an `IpAddr` beside the port) on the
//! spot; only a real host name is **copied** into an owned string and looked up on the pool.
//! Because the pool works on a copy, the caller's wait is an ordinary cancellation point: a
//! cancelled green thread unwinds at once, and the lookup's result is dropped when it arrives.
//!
//! Every other argument (`SocketAddr`, `(IpAddr, u16)`, `&[SocketAddr]`, ...) cannot block and
//! is converted in place; so is a `ToSocketAddrs` implementation from outside std, which is
//! called in place exactly as std would call it, and a string form behind two references or
//! more (`&&&str`), which would block the worker in the lookup.
//!
//! The types are told apart by their `TypeId` with lifetimes erased, since `&str` is not
//! `'static` (see [`same_type`]).

use std::any::TypeId;
use std::io;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use super::oneshot;
use crate::runtime::context;

/// Resolves `addr` to socket addresses, like `addr.to_socket_addrs()`, without blocking a
/// worker: on a green thread a host name is looked up on the runtime's blocking pool while the
/// green thread parks (module docs). On a plain OS thread this is std's call.
///
/// The wait for a lookup is a cancellation point.
///
/// # Errors
///
/// As std's lookup, with the host name in the message (on any thread; also the fd limit,
/// when no fd was free); also, on a green thread that would have to park where it cannot (while
/// unwinding, rule 3 of docs/design.md, or inside `green::on_worker_stack`), an error that says so;
/// and an error if the pool could not run the lookup (no thread could be started). A green
/// thread whose runtime is shutting down unwinds as cancelled instead.
pub(crate) fn resolve<A: ToSocketAddrs>(addr: A) -> io::Result<Vec<SocketAddr>> {
    let in_place = |addr: &A| addr.to_socket_addrs().map(Iterator::collect);
    // 1. On a plain OS thread (or a pool thread), blocking is what the caller expects. A failed
    //    lookup's error names the host, as one done on the pool does.
    let Some((in_green_thread, shared)) = context::with_core(|c| c.map(|c| (c.in_green_thread(), c.shared.clone())))
    else {
        return in_place(&addr).map_err(|e| match Lookup::of(&addr) {
            Some(lookup) => lookup.error(e),
            None => e,
        });
    };
    // 2. Anything but a host name cannot block.
    let Some(lookup) = Lookup::of(&addr) else { return in_place(&addr) };
    crate::coop::tick_op();
    // 3. Where the caller cannot park, say so rather than stall the worker.
    if !in_green_thread || crate::park::must_not_wait() {
        let why = if in_green_thread { "while its green thread unwinds" } else { on_worker_stack_where!() };
        return Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "green: cannot look up host {:?} {why}: that needs a park; resolve it earlier, or \
                 pass a SocketAddr",
                lookup.host()
            ),
        ));
    }
    // 4. Look it up on the pool, and park until it is done.
    //    A lookup the pool will not run because the runtime is shutting down unwinds the caller
    //    as cancelled, as a wait would (a green thread whose worker was left stuck in blocking
    //    code by the shutdown runs on after the pool has stopped).
    let (tx, rx) = oneshot::channel();
    if let Err(e) = shared.blocking.submit(Box::new(move || tx.send(lookup.run()))) {
        crate::park::unwind_if_shutting_down();
        return Err(e);
    }
    rx.recv(true).unwrap_or_else(|| {
        crate::park::unwind_if_shutting_down();
        let why = super::pool::Pool::why_dropped(shared.is_shutting_down());
        Err(io::Error::other(format!("green: a host name lookup was dropped unrun: {why}")))
    })
}

/// A host name lookup, owned so that it can move to a pool thread.
#[derive(Debug)]
enum Lookup {
    /// `"host:port"`.
    HostPort(String),
    /// `(host, port)`.
    Pair(String, u16),
}

impl Lookup {
    /// The lookup `addr` would do, if it is one of std's string forms that does not parse as
    /// an address.
    fn of<A>(addr: &A) -> Option<Lookup> {
        if let Some(s) = as_str(addr) {
            return (s.parse::<SocketAddr>().is_err()).then(|| Lookup::HostPort(s.to_owned()));
        }
        let (host, port) = as_pair(addr)?;
        (host.parse::<IpAddr>().is_err()).then(|| Lookup::Pair(host.to_owned(), port))
    }

    fn host(&self) -> &str {
        match self {
            Lookup::HostPort(s) => s,
            Lookup::Pair(host, _) => host,
        }
    }

    /// Does the lookup (blocking).
    fn run(self) -> io::Result<Vec<SocketAddr>> {
        #[cfg(test)]
        tests::delay();
        let found = match &self {
            Lookup::HostPort(s) => s.as_str().to_socket_addrs().map(Iterator::collect),
            Lookup::Pair(host, port) => (host.as_str(), *port).to_socket_addrs().map(Iterator::collect),
        };
        found.map_err(|e| self.error(e))
    }

    /// The error of this lookup from std's: std's message names no host; the kind stays std's.
    fn error(&self, e: io::Error) -> io::Error {
        // A string std could not split into a host and a port number was never looked up. (A
        // NUL byte in the host is std's InvalidInput too, but the split went well: that error
        // is reported as any other.)
        if let (io::ErrorKind::InvalidInput, Lookup::HostPort(s)) = (e.kind(), self)
            && !s.contains('\0')
        {
            return io::Error::new(
                e.kind(),
                format!(
                    "{s:?} is not a host and port: {e}; write \"host:port\" with a port number (0 to 65535), as \
                     \"localhost:80\""
                ),
            );
        }
        let hint = if no_fd_free() { out_of_fds_hint() } else { String::new() };
        io::Error::new(e.kind(), format!("could not resolve {:?}: {e}{hint}", self.host()))
    }
}

/// True if the process cannot open one more fd just now (`EMFILE`, or the system's `ENFILE`).
///
/// A lookup needs fds (to read `/etc/hosts`, to ask a DNS server), and glibc reports running
/// out of them as "Name or service not known": a failed lookup asks this to say so. It opens
/// and closes one socket, only on that error path; a socket freed in between only loses the
/// hint.
fn no_fd_free() -> bool {
    // SAFETY: socket has no memory-safety preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd >= 0 {
        // SAFETY: `fd` was just opened here and nothing else knows of it.
        unsafe { libc::close(fd) };
        return false;
    }
    matches!(io::Error::last_os_error().raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// The end of a lookup's error message when no fd was free.
fn out_of_fds_hint() -> String {
    format!(
        "; likely because the process had no fd free ({}), and a lookup needs one to read \
         /etc/hosts or ask a DNS server: close files or raise the limit",
        crate::rlimit::Limit::Fds.describe()
    )
}

/// `addr` as a string, if it is `&str`, `String`, `&String` or `&&str`.
fn as_str<A>(addr: &A) -> Option<&str> {
    if same_type::<A, &str>() {
        // SAFETY: `A` is `&'a str` for some `'a` (`same_type`), so `addr` points to a valid
        // `&str`. The result borrows from `addr`, and `'a` outlives that borrow (it is part of
        // the type of what `addr` points to), so it never dangles.
        return Some(unsafe { *(addr as *const A).cast::<&str>() });
    }
    if same_type::<A, String>() {
        // SAFETY: `A` is `String` (`same_type`; `String` has no lifetimes).
        return Some(unsafe { &*(addr as *const A).cast::<String>() });
    }
    if same_type::<A, &String>() {
        // SAFETY: `A` is `&'a String` for some `'a` outliving the borrow of `addr`, as above.
        return Some(unsafe { *(addr as *const A).cast::<&String>() });
    }
    if same_type::<A, &&str>() {
        // SAFETY: `A` is `&'a &'b str`, both lifetimes outliving the borrow of `addr`, as above.
        return Some(unsafe { **(addr as *const A).cast::<&&str>() });
    }
    None
}

/// `addr` as a host and port, if it is `(&str, u16)` or `(String, u16)`, or a reference to
/// either.
fn as_pair<A>(addr: &A) -> Option<(&str, u16)> {
    if same_type::<A, (&str, u16)>() {
        // SAFETY: `A` is `(&'a str, u16)` for some `'a` outliving the borrow of `addr`, as in
        // `as_str`.
        let (host, port) = unsafe { *(addr as *const A).cast::<(&str, u16)>() };
        return Some((host, port));
    }
    if same_type::<A, (String, u16)>() {
        // SAFETY: `A` is `(String, u16)` (`same_type`; no lifetimes).
        let (host, port) = unsafe { &*(addr as *const A).cast::<(String, u16)>() };
        return Some((host, *port));
    }
    if same_type::<A, &(&str, u16)>() {
        // SAFETY: `A` is `&'a (&'b str, u16)`, both lifetimes outliving the borrow of `addr`,
        // as in `as_str`.
        let (host, port) = unsafe { **(addr as *const A).cast::<&(&str, u16)>() };
        return Some((host, port));
    }
    if same_type::<A, &(String, u16)>() {
        // SAFETY: `A` is `&'a (String, u16)` for some `'a` outliving the borrow of `addr`.
        let (host, port) = unsafe { *(addr as *const A).cast::<&(String, u16)>() };
        return Some((host, *port));
    }
    None
}

/// True if `A` and `B` are the same type once lifetimes are erased: `&'a str` and `&'static str`
/// are the same, `&str` and `String` are not.
fn same_type<A: ?Sized, B: ?Sized>() -> bool {
    erased_type_id::<A>() == erased_type_id::<B>()
}

/// `TypeId::of::<T>()` for a `T` that need not be `'static`, with its lifetimes erased.
///
/// `TypeId::of` demands `T: 'static` only so that a `TypeId` cannot be used to forge a
/// lifetime; the id itself is computed after lifetimes are erased. The trait below asks for
/// `Self: 'static` on its method alone, and the trait object's lifetime bound is widened to
/// call it; nothing of a `T` value exists or is touched. (The `typeid` crate, used by
/// `erased-serde`, does the same.) The callers compare ids and rely only on that: equal ids
/// mean equal types up to lifetimes, hence equal layouts.
fn erased_type_id<T: ?Sized>() -> TypeId {
    trait NonStaticAny {
        fn type_id(&self) -> TypeId
        where
            Self: 'static;
    }
    impl<T: ?Sized> NonStaticAny for PhantomData<T> {
        fn type_id(&self) -> TypeId
        where
            Self: 'static,
        {
            TypeId::of::<T>()
        }
    }
    let marker = PhantomData::<T>;
    let object: &dyn NonStaticAny = &marker;
    // SAFETY: only the trait object's lifetime bound changes; the layout is the same. The one
    // method called reads nothing (the value is a zero-sized `PhantomData`) and returns the
    // `TypeId` of `T`, which does not depend on lifetimes.
    let object = unsafe { std::mem::transmute::<&dyn NonStaticAny, &(dyn NonStaticAny + 'static)>(object) };
    object.type_id()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    /// Extra time every pooled lookup takes, so a test can see the worker stay free.
    static DELAY_MS: AtomicU64 = AtomicU64::new(0);
    /// Serialises the tests that use the pool (they set `DELAY_MS` or count `POOLED`).
    static DELAY_LOCK: Mutex<()> = Mutex::new(());
    /// Pooled lookups done.
    static POOLED: AtomicUsize = AtomicUsize::new(0);

    pub(super) fn delay() {
        POOLED.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(DELAY_MS.load(Ordering::SeqCst)));
    }

    #[test]
    fn string_forms_are_recognised() {
        let owned = String::from("example.com:80");
        assert!(matches!(Lookup::of(&"example.com:80"), Some(Lookup::HostPort(s)) if s == "example.com:80"));
        assert!(matches!(Lookup::of(&owned.clone()), Some(Lookup::HostPort(_))));
        assert!(matches!(Lookup::of(&&owned), Some(Lookup::HostPort(_))));
        assert!(matches!(Lookup::of(&("example.com", 80u16)), Some(Lookup::Pair(h, 80)) if h == "example.com"));
        assert!(matches!(Lookup::of(&(String::from("example.com"), 80u16)), Some(Lookup::Pair(_, 80))));
        // The same behind one more reference (std's `ToSocketAddrs for &T`).
        assert!(matches!(Lookup::of(&&"example.com:80"), Some(Lookup::HostPort(_))));
        assert!(matches!(Lookup::of(&&("example.com", 80u16)), Some(Lookup::Pair(_, 80))));
        assert!(matches!(Lookup::of(&&(String::from("example.com"), 80u16)), Some(Lookup::Pair(_, 80))));
        // Addresses, written or typed, are not lookups.
        assert!(Lookup::of(&"127.0.0.1:80").is_none());
        assert!(Lookup::of(&"[::1]:80").is_none());
        assert!(Lookup::of(&("10.0.0.1", 80u16)).is_none());
        assert!(Lookup::of(&SocketAddr::from((Ipv4Addr::LOCALHOST, 80))).is_none());
        assert!(Lookup::of(&(Ipv4Addr::LOCALHOST, 80u16)).is_none());
        let many = [SocketAddr::from((Ipv4Addr::LOCALHOST, 80))];
        assert!(Lookup::of(&&many[..]).is_none());
    }

    #[test]
    fn plain_os_threads_call_std() {
        let addrs = resolve("localhost:0").unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 0), "{addrs:?}");
    }

    #[test]
    fn plain_os_threads_name_the_host_that_did_not_resolve() {
        let err = resolve("nonexistent.invalid:80").unwrap_err();
        assert!(err.to_string().starts_with("could not resolve \"nonexistent.invalid:80\": "), "{err}");
        let err = resolve(("nonexistent.invalid", 80)).unwrap_err();
        assert!(err.to_string().starts_with("could not resolve \"nonexistent.invalid\": "), "{err}");
    }

    /// A string without a port (or with one that is not a number) is not looked up: the error
    /// says what is wrong with it, not that the name did not resolve, on any thread.
    #[test]
    fn a_string_without_a_port_number_says_so() {
        let _serial = DELAY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let on_os_thread = [resolve("localhost").unwrap_err(), resolve("localhost:http").unwrap_err()];
        let on_green_thread =
            crate::run(|| [resolve("localhost").unwrap_err(), resolve("localhost:http").unwrap_err()]);
        for (err, s) in on_os_thread.iter().chain(&on_green_thread).zip(["localhost", "localhost:http"].iter().cycle())
        {
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().starts_with(&format!("{s:?} is not a host and port: ")), "{err}");
            assert!(err.to_string().contains("\"host:port\""), "{err}");
        }
        // A host with a NUL byte has a port: std refuses the host, and the error says which.
        let err = resolve("local\0host:80").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().starts_with("could not resolve \"local\\0host:80\": "), "{err}");
    }

    #[test]
    fn addresses_resolve_in_place_on_green_threads() {
        let _serial = DELAY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let before = POOLED.load(Ordering::SeqCst);
        let addrs = crate::run(|| {
            let mut all = resolve("127.0.0.1:8080").unwrap();
            all.extend(resolve(("::1", 9)).unwrap());
            all.extend(resolve(SocketAddr::from((Ipv4Addr::LOCALHOST, 1))).unwrap());
            all
        });
        assert_eq!(addrs.len(), 3);
        assert_eq!(POOLED.load(Ordering::SeqCst), before, "an address went to the pool");
    }

    #[test]
    fn host_names_resolve_on_the_pool_without_blocking_the_worker() {
        let _serial = DELAY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        DELAY_MS.store(300, Ordering::SeqCst);
        let before = POOLED.load(Ordering::SeqCst);
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let (addrs, ticks, took) = rt.block_on(|| {
            // A green thread on the same (only) worker counts while the lookup is under way.
            let ticks = Arc::new(AtomicUsize::new(0));
            let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let counter = {
                let (ticks, done) = (ticks.clone(), done.clone());
                crate::spawn(move || {
                    while !done.load(Ordering::SeqCst) {
                        ticks.fetch_add(1, Ordering::SeqCst);
                        crate::sleep(Duration::from_millis(5));
                    }
                })
            };
            let start = Instant::now();
            let addrs = resolve(("localhost", 0));
            let took = start.elapsed();
            done.store(true, Ordering::SeqCst);
            counter.join().unwrap();
            (addrs, ticks.load(Ordering::SeqCst), took)
        });
        DELAY_MS.store(0, Ordering::SeqCst);
        drop(rt);
        let addrs = addrs.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
        assert_eq!(POOLED.load(Ordering::SeqCst), before + 1, "the lookup did not go to the pool");
        assert!(took >= Duration::from_millis(300), "{took:?}");
        // 300 ms of 5 ms sleeps: about 60 turns if the worker stayed free, 1 if it blocked. A
        // saturated machine stretches each turn (17 turns seen under load): 5 still tells the two
        // apart.
        assert!(ticks >= 5, "the worker was blocked during the lookup: {ticks} turns");
    }

    #[test]
    fn a_cancelled_lookup_unwinds_at_once() {
        let _serial = DELAY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        DELAY_MS.store(3000, Ordering::SeqCst);
        let took = crate::run(|| {
            let start = Instant::now();
            let lookup = crate::spawn(|| resolve("localhost:1"));
            crate::sleep(Duration::from_millis(50));
            lookup.cancel();
            assert!(lookup.join().unwrap_err().is_cancelled());
            start.elapsed()
        });
        DELAY_MS.store(0, Ordering::SeqCst);
        // The lookup takes 3 s; the cancelled caller returned long before.
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn bad_names_give_std_errors() {
        let _serial = DELAY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let result = crate::run(|| resolve("no port here"));
        assert!(result.is_err());
    }
}
