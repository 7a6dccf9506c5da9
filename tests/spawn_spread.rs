//! `Builder::spread`: green threads spawned from one place start on every worker.

use std::time::Duration;

mod common;

/// Green threads started on each worker so far.
fn started() -> Vec<u64> {
    green::Handle::current().metrics().workers.iter().map(|w| w.started).collect()
}

/// The accept loop's shape: one green thread spawns long-lived handlers one at a time and
/// parks between spawns. Spread, they start on both workers, at least a quarter on each;
/// `worker` takes precedence over `spread`.
#[test]
fn spread_green_threads_start_on_every_worker() {
    common::bounded(Duration::from_secs(60), || {
        green::Runtime::builder().workers(2).run(|| {
            const HANDLERS: u64 = 40;
            let before = started();
            let handlers: Vec<_> = (0..HANDLERS)
                .map(|i| {
                    let handler = green::Builder::new()
                        .spread()
                        .spawn(move || {
                            green::sleep(Duration::from_millis(30));
                            i
                        })
                        .unwrap();
                    green::sleep(Duration::from_millis(1)); // the accept loop's next accept
                    handler
                })
                .collect();
            assert_eq!(handlers.into_iter().map(|h| h.join().unwrap()).sum::<u64>(), HANDLERS * (HANDLERS - 1) / 2);
            let after = started();
            let each: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
            assert_eq!(each.iter().sum::<u64>(), HANDLERS, "{each:?}");
            assert!(each.iter().all(|&n| n >= HANDLERS / 4), "handlers started per worker: {each:?}");

            // An explicit worker wins.
            let before = started();
            let pinned: Vec<_> =
                (0..8).map(|_| green::Builder::new().spread().worker(1).spawn(|| ()).unwrap()).collect();
            pinned.into_iter().for_each(|h| h.join().unwrap());
            let after = started();
            assert_eq!((after[0] - before[0], after[1] - before[1]), (0, 8));
        })
    })
    .unwrap();
}

/// With one worker there is nowhere else to go: spread green threads run there.
#[test]
fn spread_on_one_worker_runs_there() {
    common::bounded(Duration::from_secs(60), || {
        green::Runtime::builder().workers(1).run(|| {
            let hs: Vec<_> = (0..10).map(|i| green::Builder::new().spread().spawn(move || i).unwrap()).collect();
            assert_eq!(hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>(), 45);
        })
    })
    .unwrap();
}
