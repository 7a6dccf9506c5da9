// The attribute goes on each method, not on the block.
struct Grid;

#[green::preemptible]
impl Grid {
    fn sum(&self, n: u64) -> u64 {
        (0..n).sum()
    }
}

fn main() {}
