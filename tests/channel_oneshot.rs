//! `green::sync::oneshot`: one value across workers and OS threads, a dropped sender, a
//! dropped receiver, polling and timed receives.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use green::sync::oneshot::{self, RecvError, RecvTimeoutError, TryRecvError};

#[test]
fn one_value_across_workers_and_os_threads() {
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    for _ in 0..200 {
        let (tx, rx) = oneshot::channel();
        let sender = green::Builder::new().worker(0).spawn_on(rt.handle(), move || tx.send(5).unwrap()).unwrap();
        let receiver = green::Builder::new().worker(1).spawn_on(rt.handle(), move || rx.recv()).unwrap();
        sender.join().unwrap();
        assert_eq!(receiver.join().unwrap(), Ok(5));
    }
    let (tx, rx) = oneshot::channel();
    let receiver = rt.spawn(move || rx.recv());
    std::thread::sleep(Duration::from_millis(5));
    tx.send("from an OS thread").unwrap();
    assert_eq!(receiver.join().unwrap(), Ok("from an OS thread"));
    let (tx, rx) = oneshot::channel();
    rt.spawn(move || {
        green::sleep(Duration::from_millis(5));
        tx.send(1).unwrap()
    });
    assert_eq!(rx.recv(), Ok(1)); // an OS thread waits
}

#[test]
fn a_dropped_sender_disconnects() {
    green::run(|| {
        let (tx, rx) = oneshot::channel::<u8>();
        let waiter = green::spawn(move || rx.recv());
        green::sleep(Duration::from_millis(2));
        drop(tx);
        assert_eq!(waiter.join().unwrap(), Err(RecvError));
    });
}

#[test]
fn a_dropped_receiver_gives_the_value_back() {
    #[derive(Debug)]
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = oneshot::channel();
    drop(rx);
    assert!(tx.is_closed());
    let back = tx.send(Counted(drops.clone())).unwrap_err();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(back);
    // A value sent and never received is dropped with the receiver.
    let (tx, rx) = oneshot::channel();
    tx.send(Counted(drops.clone())).unwrap();
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn polling_and_timed_receives() {
    green::run(|| {
        let (tx, rx) = oneshot::channel();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(rx.recv_timeout(Duration::from_millis(2)), Err(RecvTimeoutError::Timeout));
        green::spawn(move || {
            green::sleep(Duration::from_millis(2));
            tx.send(3).unwrap();
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Err(RecvTimeoutError::Disconnected));
    });
}
