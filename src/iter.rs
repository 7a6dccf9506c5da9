//! Iterators that spend the budget: [`TickingExt::ticking`] for user code, and the chunked
//! `for` loops that `#[preemptible]` writes (module [`chunked`]).
//!
//! A tick per item is right for an iterator whose items cost something (a parse, a lookup, a
//! call). A loop over a slice whose body is a few instructions is different: a tick per item
//! costs more than the item and stops the loop from being vectorised, so `#[preemptible]` counts
//! such loops per chunk of items (see [`chunked`]).

use crate::coop;

/// Adds [`ticking`](TickingExt::ticking) to every iterator.
///
/// `#[green::preemptible]` ticks on the loops it sees in a function, not inside iterator
/// adapters (their loops are the standard library's): a long chain in an annotated function
/// needs `.ticking()` to share its worker.
///
/// ```
/// use green::TickingExt;
///
/// green::run(|| {
///     // Each item spends a tick, so this long chain shares its worker.
///     let total: u64 = (0..1_000_000u64).map(|i| i * i % 7).ticking().sum();
///     assert_eq!(total, 1_999_998);
/// });
/// ```
pub trait TickingExt: Iterator + Sized {
    /// Wraps the iterator so that every item it yields spends one tick of the green thread's
    /// budget, as a call to [`crate::tick`] would (and may yield to others waiting on the
    /// worker, see [`crate::tick`]).
    ///
    /// ```
    /// use green::TickingExt;
    ///
    /// green::run(|| {
    ///     let words = ["a", "bb", "ccc"];
    ///     let lengths: Vec<usize> = words.iter().ticking().map(|w| w.len()).collect();
    ///     assert_eq!(lengths, [1, 2, 3]);
    /// });
    /// ```
    fn ticking(self) -> Ticking<Self> {
        Ticking { inner: self }
    }
}

impl<I: Iterator> TickingExt for I {}

/// An iterator that spends one tick per item; made by [`TickingExt::ticking`].
///
/// ```
/// use green::{Ticking, TickingExt};
///
/// let evens: Ticking<_> = (0..10).filter(|n| n % 2 == 0).ticking();
/// assert_eq!(evens.rev().collect::<Vec<_>>(), [8, 6, 4, 2, 0]);
/// ```
#[derive(Debug, Clone)]
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Ticking<I> {
    inner: I,
}

impl<I> Ticking<I> {
    /// The wrapped iterator.
    ///
    /// ```
    /// use green::TickingExt;
    ///
    /// let mut it = [1, 2, 3].into_iter().ticking();
    /// it.next();
    /// assert_eq!(it.into_inner().collect::<Vec<_>>(), [2, 3]);
    /// ```
    pub fn into_inner(self) -> I {
        self.inner
    }
}

impl<I: Iterator> Iterator for Ticking<I> {
    type Item = I::Item;

    #[inline]
    fn next(&mut self) -> Option<I::Item> {
        coop::tick();
        self.inner.next()
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }

    #[inline]
    fn fold<B, F>(self, init: B, mut f: F) -> B
    where
        F: FnMut(B, I::Item) -> B,
    {
        self.inner.fold(init, move |acc, item| {
            coop::tick();
            f(acc, item)
        })
    }
}

impl<I: DoubleEndedIterator> DoubleEndedIterator for Ticking<I> {
    #[inline]
    fn next_back(&mut self) -> Option<I::Item> {
        coop::tick();
        self.inner.next_back()
    }
}

impl<I: ExactSizeIterator> ExactSizeIterator for Ticking<I> {
    #[inline]
    fn len(&self) -> usize {
        self.inner.len()
    }
}

impl<I: std::iter::FusedIterator> std::iter::FusedIterator for Ticking<I> {}

#[doc(hidden)]
pub mod chunked {
    //! The chunked `for` loop of `#[preemptible]`: support for its expansion, not a public API.
    //!
    //! `#[preemptible]` turns a light innermost `'a: for PAT in EXPR { BODY }` into
    //!
    //! ```text
    //! match (&&ForChunks::new(EXPR)).__green_for_chunks() {
    //!     mut src => 'a: while let Some(chunk) = Chunks::next_chunk(&mut src) {
    //!         for PAT in chunk { BODY }
    //!     }
    //! }
    //! ```
    //!
    //! 1. `ForChunks::new` holds the value of `EXPR`. The method call picks the source by the
    //!    type of `EXPR`, at compile time ("autoref specialisation"): the receiver is
    //!    `&&ForChunks<T>`, and [`ForChunksSliceOrRange`] is implemented for
    //!    `&ForChunks<slice or range>`, so method lookup finds it at the first step;
    //!    [`ForChunksAny`] is implemented for `ForChunks<T: IntoIterator>` and is found one
    //!    dereference later, for every other type.
    //! 2. A slice or an integer range is cut into sub-slices or sub-ranges of up to [`CHUNK`]
    //!    items, and no more than the budget has ticks left for: the inner loop is a plain slice
    //!    or range loop and vectorises as the original did. Each chunk charges one tick per
    //!    [`ITEMS_PER_TICK`] items before it runs.
    //! 3. Any other iterator is driven through [`AnyChunk`], which hands out up to
    //!    [`ANY_CHUNK`] items and then ends the chunk; one tick per item, charged at the
    //!    chunk's start. It calls the iterator's `next` exactly as the original loop did: never
    //!    again after `None`.

    use std::cell::Cell;
    use std::ops::Range;

    use crate::coop;

    /// Most items of a slice or range in one chunk: as many as a whole default budget counts
    /// ([`ITEMS_PER_TICK`] × 1,024 ticks).
    ///
    /// Each chunk costs, besides its items, a charge of the budget and the end of a vectorised
    /// loop (its reduction, its tail, a mispredicted exit branch, the restart): about 20 ns
    /// measured, 1% of a 16,384-item chunk of the fastest light loop there is (a vectorised
    /// `u32` sum, eight items a cycle), and 3 to 4% of the sum's time at four such chunks per
    /// budget. Chunks as long as the budget cost nothing in responsiveness: the budget decides
    /// when the clock is looked at (and a forced yield may come), and a chunk never runs past
    /// the point where the budget runs out (`chunk_len`), so a smaller budget (a per-spawn one)
    /// gets shorter chunks.
    pub const CHUNK: usize = 65536;

    /// Items of a light loop counted as one tick. A tick normally marks a loop iteration of a
    /// nanosecond or more, and the runtime looks at the clock (about 20 ns) once per budget
    /// (1024 ticks by default). A light item is often far less: a vectorised add is an eighth of
    /// a cycle. Counted one tick per item, a vectorised sum would look at the clock every 40 ns
    /// or so; at 64 items a tick, every 65,536 items: every 2.3 µs for that sum (under 1% of its
    /// time), every 130 µs for a light body of 2 ns an item.
    pub const ITEMS_PER_TICK: usize = 64;

    /// Most items of any other iterator in one chunk. Each is a call of the iterator's `next`,
    /// whose cost is unknown (a `map` adapter may parse a line there, a channel's iterator may
    /// wait), so each is a tick, as an iteration of a loop whose body makes a call; the chunk
    /// charges them at its start, and is cut short where the budget runs out. (At one tick per
    /// 64 items, a light body over `lines.iter().map(parse)` looked at the clock once per 65,536
    /// parses.)
    pub const ANY_CHUNK: u32 = 64;

    /// How many of `available` items the next chunk takes: at most [`CHUNK`], and no more than
    /// the ticks left in the budget pay for (at least one tick's worth), so that the budget runs
    /// out at a chunk's start, where the charge is made, and not in the middle of one.
    #[inline]
    fn chunk_len(available: usize) -> usize {
        let room = (coop::budget_left().max(1) as usize).saturating_mul(ITEMS_PER_TICK);
        available.min(CHUNK).min(room)
    }

    /// Charges the ticks of a chunk of `items` items (at least one).
    #[inline]
    fn charge_items(items: usize) {
        // `items` is at most CHUNK, so the quotient fits.
        coop::tick_n(items.div_ceil(ITEMS_PER_TICK) as u32);
    }

    /// The value of a `for` loop's expression, on its way to a chunk source.
    pub struct ForChunks<T>(Cell<Option<T>>);

    impl<T> std::fmt::Debug for ForChunks<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("ForChunks(..)")
        }
    }

    impl<T> ForChunks<T> {
        /// Holds the iterable. The bound is what `for` asks of it, stated here so that a loop
        /// over something that is not iterable gets the compiler's own message for `for`.
        #[inline(always)]
        pub fn new(iterable: T) -> ForChunks<T>
        where
            T: IntoIterator,
        {
            ForChunks(Cell::new(Some(iterable)))
        }

        /// Takes the iterable out (once).
        #[inline(always)]
        fn take(&self) -> T {
            self.0.take().expect(internal_error!("the iterable of a #[green::preemptible] loop was taken twice"))
        }
    }

    /// A source of chunks: each is a loop's worth of items, to be run between two charges.
    pub trait Chunks {
        /// One chunk: iterating it yields the items of the original loop, in order.
        type Chunk<'c>: IntoIterator
        where
            Self: 'c;

        /// Charges the next chunk's ticks and returns it, or `None` when the items are done.
        fn next_chunk(&mut self) -> Option<Self::Chunk<'_>>;
    }

    /// Picks the chunk source of a slice or range (see the module documentation).
    pub trait ForChunksSliceOrRange {
        /// The chunk source.
        type Source: Chunks;
        /// Turns the iterable into its chunk source.
        fn __green_for_chunks(&self) -> Self::Source;
    }

    /// Picks the chunk source of any other iterable (see the module documentation).
    pub trait ForChunksAny {
        /// The chunk source.
        type Source: Chunks;
        /// Turns the iterable into its chunk source.
        fn __green_for_chunks(&self) -> Self::Source;
    }

    impl<T: IntoIterator> ForChunksAny for ForChunks<T> {
        type Source = AnySource<T::IntoIter>;

        #[inline(always)]
        fn __green_for_chunks(&self) -> AnySource<T::IntoIter> {
            AnySource { iter: self.take().into_iter(), done: false }
        }
    }

    /// Implements [`ForChunksSliceOrRange`] for `&ForChunks<$ty>`: a value of type `$ty`
    /// becomes a `$source` through `$to_slice`.
    macro_rules! slice_source {
        ($source:ident, [$($generics:tt)*] $ty:ty, $to_slice:expr) => {
            impl<'a, U $($generics)*> ForChunksSliceOrRange for &ForChunks<$ty> {
                type Source = $source<'a, U>;

                #[inline(always)]
                fn __green_for_chunks(&self) -> $source<'a, U> {
                    $source { rest: $to_slice(self.take()) }
                }
            }
        };
    }

    slice_source!(SliceSource, [] &'a [U], |s| s);
    slice_source!(SliceSource, [] &'a Vec<U>, |v: &'a Vec<U>| v.as_slice());
    slice_source!(SliceSource, [, const N: usize] &'a [U; N], |a: &'a [U; N]| a.as_slice());
    slice_source!(SliceSource, [] std::slice::Iter<'a, U>, |it: std::slice::Iter<'a, U>| it.as_slice());
    slice_source!(SliceMutSource, [] &'a mut [U], |s| s);
    slice_source!(SliceMutSource, [] &'a mut Vec<U>, |v: &'a mut Vec<U>| v.as_mut_slice());
    slice_source!(SliceMutSource, [, const N: usize] &'a mut [U; N], |a: &'a mut [U; N]| a.as_mut_slice());
    slice_source!(SliceMutSource, [] std::slice::IterMut<'a, U>, |it: std::slice::IterMut<'a, U>| it.into_slice());

    impl<I: ChunkInt> ForChunksSliceOrRange for &ForChunks<Range<I>>
    where
        Range<I>: Iterator<Item = I>,
    {
        type Source = RangeSource<I>;

        #[inline(always)]
        fn __green_for_chunks(&self) -> RangeSource<I> {
            let range = self.take();
            RangeSource { start: range.start, end: range.end }
        }
    }

    /// Chunks of a shared slice.
    #[derive(Debug)]
    pub struct SliceSource<'a, U> {
        /// The items not handed out yet.
        rest: &'a [U],
    }

    impl<'a, U> Chunks for SliceSource<'a, U> {
        type Chunk<'c>
            = &'a [U]
        where
            Self: 'c;

        // Out of line: a chunk is taken once per budget's worth of items, and a call leaves
        // less code, and fewer branches, beside the user's inner loop (`benches/tick.rs`).
        #[inline(never)]
        fn next_chunk(&mut self) -> Option<&'a [U]> {
            if self.rest.is_empty() {
                return None;
            }
            let len = chunk_len(self.rest.len());
            charge_items(len);
            let (chunk, rest) = self.rest.split_at(len);
            self.rest = rest;
            Some(chunk)
        }
    }

    /// Chunks of a mutable slice.
    #[derive(Debug)]
    pub struct SliceMutSource<'a, U> {
        /// The items not handed out yet.
        rest: &'a mut [U],
    }

    impl<'a, U> Chunks for SliceMutSource<'a, U> {
        type Chunk<'c>
            = &'a mut [U]
        where
            Self: 'c;

        // Out of line, as for `SliceSource`.
        #[inline(never)]
        fn next_chunk(&mut self) -> Option<&'a mut [U]> {
            if self.rest.is_empty() {
                return None;
            }
            let len = chunk_len(self.rest.len());
            charge_items(len);
            let (chunk, rest) = std::mem::take(&mut self.rest).split_at_mut(len);
            self.rest = rest;
            Some(chunk)
        }
    }

    /// An integer type whose ranges are cut into chunks.
    pub trait ChunkInt: Copy + PartialOrd {
        /// For `start < end`: where the chunk that starts at `start` ends, and its length: at
        /// most `most`, itself at most [`CHUNK`].
        fn chunk_end(start: Self, end: Self, most: usize) -> (Self, usize);
    }

    /// Implements [`ChunkInt`] for `$t`, whose unsigned twin is `$u`.
    macro_rules! chunk_int {
        ($($t:ty => $u:ty),* $(,)?) => {$(
            impl ChunkInt for $t {
                #[inline(always)]
                #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss)]
                fn chunk_end(start: $t, end: $t, most: usize) -> ($t, usize) {
                    // The distance, exact in the unsigned twin because start < end.
                    let len = (end as $u).wrapping_sub(start as $u);
                    if len as u128 > most as u128 {
                        // Only reached when the type holds more than `most` values, so
                        // `most` fits in it and start + most < end does not overflow.
                        (start.wrapping_add(most as $t), most)
                    } else {
                        (end, len as usize)
                    }
                }
            }
        )*};
    }

    chunk_int!(
        u8 => u8, u16 => u16, u32 => u32, u64 => u64, u128 => u128, usize => usize,
        i8 => u8, i16 => u16, i32 => u32, i64 => u64, i128 => u128, isize => usize,
    );

    /// Chunks of an integer range.
    #[derive(Debug)]
    pub struct RangeSource<I> {
        /// The first value not handed out yet.
        start: I,
        /// The end of the range (excluded).
        end: I,
    }

    impl<I: ChunkInt> Chunks for RangeSource<I>
    where
        Range<I>: Iterator<Item = I>,
    {
        type Chunk<'c>
            = Range<I>
        where
            Self: 'c;

        // Out of line, as for `SliceSource`.
        #[inline(never)]
        fn next_chunk(&mut self) -> Option<Range<I>> {
            if self.start >= self.end {
                return None;
            }
            let (end, len) = I::chunk_end(self.start, self.end, chunk_len(usize::MAX));
            charge_items(len);
            let chunk = self.start..end;
            self.start = end;
            Some(chunk)
        }
    }

    /// Chunks of any other iterator.
    #[derive(Debug)]
    pub struct AnySource<I> {
        /// The loop's iterator.
        iter: I,
        /// Whether `iter` returned `None`: it is not called again.
        done: bool,
    }

    impl<I: Iterator> Chunks for AnySource<I> {
        type Chunk<'c>
            = AnyChunk<'c, I>
        where
            Self: 'c;

        #[inline]
        fn next_chunk(&mut self) -> Option<AnyChunk<'_, I>> {
            if self.done {
                return None;
            }
            let items = ANY_CHUNK.min(coop::budget_left().max(1));
            coop::tick_n(items);
            Some(AnyChunk { source: self, left: items as usize })
        }
    }

    /// Up to [`ANY_CHUNK`] items of an [`AnySource`].
    #[derive(Debug)]
    pub struct AnyChunk<'c, I> {
        /// The source, whose iterator this chunk advances.
        source: &'c mut AnySource<I>,
        /// Items this chunk may still hand out.
        left: usize,
    }

    impl<I: Iterator> Iterator for AnyChunk<'_, I> {
        type Item = I::Item;

        #[inline]
        fn next(&mut self) -> Option<I::Item> {
            if self.left == 0 {
                return None;
            }
            match self.source.iter.next() {
                Some(item) => {
                    self.left -= 1;
                    Some(item)
                }
                None => {
                    self.source.done = true;
                    None
                }
            }
        }
    }
}
