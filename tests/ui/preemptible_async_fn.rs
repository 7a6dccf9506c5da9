// An async fn shares its thread at `.await` points, not at ticks.
#[green::preemptible]
async fn fetch() -> u32 {
    let mut n = 0;
    while n < 10 {
        n += 1;
    }
    n
}

fn main() {
    let _ = fetch();
}
