// A loop over something that is not iterable gets the compiler's own message first.
#[green::preemptible]
fn sum(n: u32) -> u32 {
    let mut total = 0;
    for i in n {
        total += i;
    }
    total
}

fn main() {
    sum(3);
}
