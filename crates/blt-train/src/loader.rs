//! An epoch-aware data loader for Burn's Learner. Batches are planned once (row groups); the
//! order is an endless stream of seeded permutations of the groups, and epoch `e` takes the
//! stream's items `[e·n, (e+1)·n)`. The order therefore depends only on the seed and the epoch
//! index, so a resumed run sees exactly the batches an uninterrupted one would.
//!
//! Consecutive runs of `accumulation` batches of the stream make one optimizer step; each batch
//! is built knowing the target bytes of its whole step (see [`crate::step::StepBatch`]).
//!
//! # Several devices
//!
//! Burn's multi-device strategy splits a loader with [`DataLoader::slice`] into one equal
//! share per device and runs one batch of every share per round, summing the devices'
//! gradients. A loader told the number of devices ([`EpochLoader::with_shards`]) slices into
//! interleaved shares of the same stream: share `d` of `n` takes the positions `≡ d (mod n)`
//! of each epoch, so each round runs `n` consecutive batches of the stream, the same batches
//! one device would run, with the same step targets.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use blt_data::{Row, permutation};
use burn::{
    data::dataloader::{DataLoader, DataLoaderIterator, Progress},
    tensor::backend::Backend,
};

/// Where a batch sits in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPlace {
    /// Its position in the endless stream (`step × accumulation + micro-batch`, counting
    /// resumed steps).
    pub position: usize,
    /// Target bytes of every batch of the optimizer step it belongs to.
    pub step_targets: usize,
}

/// Builds one batch from rows on a device, knowing its place in the stream.
pub type MakeBatch<B, O> = Arc<
    dyn Fn(&[Row], BatchPlace, &<B as burn::tensor::backend::BackendTypes>::Device) -> O
        + Send
        + Sync,
>;

/// Target bytes of a group of rows.
fn targets(rows: &[Row]) -> usize {
    rows.iter().map(Row::num_targets).sum()
}

/// The loader.
pub struct EpochLoader<B: Backend, O> {
    groups: Arc<Vec<Vec<Row>>>,
    make: MakeBatch<B, O>,
    per_epoch: usize,
    /// Batches of the whole stream (none: endless).
    total: Option<usize>,
    accumulation: usize,
    seed: Option<u64>,
    next_epoch: Arc<AtomicUsize>,
    device: B::Device,
    /// Devices the stream is shared by, and this loader's share (`None`: the whole stream).
    shards: usize,
    share: Option<usize>,
}

impl<B: Backend, O> EpochLoader<B, O> {
    /// A loader over `groups`, `per_epoch` batches per `iter()` call, shuffled with `seed` (or
    /// in order when `None`), starting at epoch `first_epoch` (0-based; > 0 when resuming).
    /// `accumulation` batches make one optimizer step; `per_epoch` should be a multiple of it.
    pub fn new(
        groups: Vec<Vec<Row>>,
        make: MakeBatch<B, O>,
        per_epoch: usize,
        seed: Option<u64>,
        first_epoch: usize,
        device: B::Device,
    ) -> Self {
        Self {
            groups: Arc::new(groups),
            make,
            per_epoch,
            total: None,
            accumulation: 1,
            seed,
            next_epoch: Arc::new(AtomicUsize::new(first_epoch)),
            device,
            shards: 1,
            share: None,
        }
    }

    /// Sets the number of devices Burn will split this loader over (default 1);
    /// `per_epoch` and the total must be multiples of it.
    pub fn with_shards(mut self, shards: usize) -> Self {
        self.shards = shards.max(1);
        self
    }

    /// Positions between consecutive batches of this loader, and the first one's offset.
    fn stride(&self) -> (usize, usize) {
        match self.share {
            Some(share) => (self.shards, share),
            None => (1, 0),
        }
    }

    /// A copy sharing the groups, on `device`, taking `share` of the stream, with its own
    /// epoch counter when it is a share.
    fn copy(&self, device: &B::Device, share: Option<usize>) -> Self {
        Self {
            groups: self.groups.clone(),
            make: self.make.clone(),
            per_epoch: self.per_epoch,
            total: self.total,
            accumulation: self.accumulation,
            seed: self.seed,
            next_epoch: if share == self.share {
                self.next_epoch.clone()
            } else {
                Arc::new(AtomicUsize::new(self.next_epoch.load(Ordering::SeqCst)))
            },
            device: device.clone(),
            shards: self.shards,
            share,
        }
    }

    /// Sets the micro-batches per optimizer step (default 1).
    pub fn with_accumulation(mut self, accumulation: usize) -> Self {
        self.accumulation = accumulation.max(1);
        self
    }

    /// Ends the stream after `total` batches: the epoch that reaches it is cut short there, and
    /// later epochs are empty. A stage of `max_steps` steps trains exactly that many, even when
    /// `max_steps` is not a multiple of the epoch length.
    pub fn with_total(mut self, total: usize) -> Self {
        self.total = Some(total);
        self
    }

    /// Batches of the epoch that starts at stream position `start`.
    fn epoch_len(&self, start: usize) -> usize {
        self.total.map_or(self.per_epoch, |t| {
            self.per_epoch.min(t.saturating_sub(start))
        })
    }

    /// Target bytes of the optimizer step holding stream position `s`.
    fn step_targets(&self, s: usize, cache: &mut Option<(usize, Vec<usize>)>) -> usize {
        let first = s - s % self.accumulation;
        (first..first + self.accumulation)
            .map(|p| targets(&self.groups[self.group_at(p, cache)]))
            .sum()
    }

    /// The group index at position `s` of the endless stream.
    fn group_at(&self, s: usize, cache: &mut Option<(usize, Vec<usize>)>) -> usize {
        let n = self.groups.len();
        let (pass, offset) = (s / n, s % n);
        match self.seed {
            None => offset,
            Some(seed) => {
                if cache.as_ref().is_none_or(|(p, _)| *p != pass) {
                    let pass_seed =
                        seed.wrapping_add((pass as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    *cache = Some((pass, permutation(n, pass_seed)));
                }
                cache.as_ref().expect("just filled").1[offset]
            }
        }
    }
}

struct EpochIter<'a, B: Backend, O> {
    loader: &'a EpochLoader<B, O>,
    start: usize,
    len: usize,
    done: usize,
    cache: Option<(usize, Vec<usize>)>,
}

impl<B: Backend, O> Iterator for EpochIter<'_, B, O> {
    type Item = O;

    fn next(&mut self) -> Option<O> {
        if self.done >= self.len || self.loader.groups.is_empty() {
            return None;
        }
        let (stride, offset) = self.loader.stride();
        let position = self.start + self.done * stride + offset;
        let group = self.loader.group_at(position, &mut self.cache);
        let step_targets = self.loader.step_targets(position, &mut self.cache);
        self.done += 1;
        Some((self.loader.make)(
            &self.loader.groups[group],
            BatchPlace {
                position,
                step_targets,
            },
            &self.loader.device,
        ))
    }
}

impl<B: Backend, O> DataLoaderIterator<O> for EpochIter<'_, B, O> {
    fn progress(&self) -> Progress {
        Progress {
            items_processed: self.done,
            items_total: self.len,
        }
    }
}

impl<B: Backend, O: Send + 'static> DataLoader<B, O> for EpochLoader<B, O> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<O> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        let start = epoch * self.per_epoch;
        let (stride, offset) = self.stride();
        Box::new(EpochIter {
            loader: self,
            start,
            len: self
                .epoch_len(start)
                .saturating_sub(offset)
                .div_ceil(stride),
            done: 0,
            cache: None,
        })
    }

    fn num_items(&self) -> usize {
        self.per_epoch / self.stride().0
    }

    fn to_device(&self, device: &B::Device) -> Arc<dyn DataLoader<B, O>> {
        Arc::new(self.copy(device, self.share))
    }

    /// Share `start / (end − start)` of the stream, as Burn's split asks for it: `shards` equal
    /// ranges of this loader's items (see the [module docs](self)).
    ///
    /// # Panics
    /// If this loader is already a share, or the range is not one of `shards` equal parts of
    /// an epoch: the split Burn's multi-device strategy makes always is.
    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<B, O>> {
        let len = self.per_epoch / self.shards;
        assert!(
            self.share.is_none() && len > 0 && end - start == len && start.is_multiple_of(len),
            "the loader splits into {} equal shares of an epoch, not {start}..{end}",
            self.shards
        );
        Arc::new(self.copy(&self.device, Some(start / len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    fn loader(first_epoch: usize) -> EpochLoader<NdArray, usize> {
        let groups: Vec<Vec<Row>> = (0..7).map(|i| vec![Row::new(i, i, b"a", false)]).collect();
        let make: MakeBatch<NdArray, usize> = Arc::new(|rows, _, _| rows[0].index);
        EpochLoader::new(groups, make, 5, Some(3), first_epoch, Default::default())
    }

    #[test]
    fn resumed_epochs_see_the_same_batches() {
        let full = loader(0);
        let epochs: Vec<Vec<usize>> = (0..4).map(|_| full.iter().collect()).collect();
        let resumed = loader(2);
        assert_eq!(resumed.iter().collect::<Vec<_>>(), epochs[2]);
        assert_eq!(resumed.iter().collect::<Vec<_>>(), epochs[3]);
        // Every group appears once per pass of 7 items.
        let stream: Vec<usize> = epochs.concat();
        let mut first_pass = stream[..7].to_vec();
        first_pass.sort();
        assert_eq!(first_pass, (0..7).collect::<Vec<_>>());
    }

    #[test]
    fn batches_know_the_targets_of_their_step() {
        // Group i holds one row of i + 2 ids (BOS and i + 1 bytes), so i + 1 targets.
        let groups: Vec<Vec<Row>> = (0..5)
            .map(|i| vec![Row::new(i, i, &vec![b'x'; i + 1], false)])
            .collect();
        let make: MakeBatch<NdArray, (usize, usize)> =
            Arc::new(|rows, place, _| (rows[0].index, place.step_targets));
        let loader: EpochLoader<NdArray, _> =
            EpochLoader::new(groups, make, 4, None, 0, Default::default()).with_accumulation(2);
        let epoch: Vec<(usize, usize)> = loader.iter().collect();
        // Steps {0, 1} and {2, 3}: (1 + 2) and (3 + 4) targets.
        assert_eq!(epoch, [(0, 3), (1, 3), (2, 7), (3, 7)]);
        // The next epoch wraps around the 5 groups: {4, 0} and {1, 2}.
        let epoch: Vec<(usize, usize)> = loader.iter().collect();
        assert_eq!(epoch, [(4, 6), (0, 6), (1, 5), (2, 5)]);
    }

    #[test]
    fn the_stream_ends_at_its_total_inside_an_epoch() {
        // 12 batches in epochs of 5: 5, 5, then 2, then nothing; the same items as the
        // endless stream's first 12, and a resumed loader cuts at the same place.
        let endless = loader(0);
        let stream: Vec<usize> = (0..3)
            .flat_map(|_| endless.iter().collect::<Vec<_>>())
            .collect();
        let capped = loader(0).with_total(12);
        let epochs: Vec<Vec<usize>> = (0..4).map(|_| capped.iter().collect()).collect();
        assert_eq!(
            epochs.iter().map(Vec::len).collect::<Vec<_>>(),
            [5, 5, 2, 0]
        );
        assert_eq!(epochs.concat(), stream[..12]);
        let resumed = loader(2).with_total(12);
        let mut last = resumed.iter();
        assert_eq!(last.progress().items_total, 2);
        assert_eq!(last.by_ref().collect::<Vec<_>>(), epochs[2]);
    }

    /// Two shares, interleaved round by round as Burn's multi-device strategy runs them, give
    /// the unsliced stream: the same batches at the same positions with the same step targets,
    /// epoch after epoch, and a resumed loader's shares continue where an uninterrupted one's
    /// do.
    #[test]
    fn shares_interleave_into_the_whole_stream() {
        let groups = |n: usize| -> Vec<Vec<Row>> {
            (0..n)
                .map(|i| vec![Row::new(i, i, &vec![b'x'; i + 1], false)])
                .collect()
        };
        let make: MakeBatch<NdArray, (usize, BatchPlace)> =
            Arc::new(|rows, place, _| (rows[0].index, place));
        let loader = |first_epoch: usize, shards: usize| {
            EpochLoader::<NdArray, _>::new(
                groups(7),
                make.clone(),
                8,
                Some(5),
                first_epoch,
                Default::default(),
            )
            .with_accumulation(4)
            .with_total(20)
            .with_shards(shards)
        };
        let whole = loader(0, 1);
        let stream: Vec<_> = (0..4)
            .flat_map(|_| whole.iter().collect::<Vec<_>>())
            .collect();
        assert_eq!(stream.len(), 20);
        for (i, (_, place)) in stream.iter().enumerate() {
            assert_eq!(place.position, i);
        }
        for first_epoch in [0, 1] {
            let split = loader(first_epoch, 2);
            assert_eq!(split.num_items(), 8, "Burn splits the unsliced length");
            let shares = [split.slice(0, 4), split.slice(4, 8)];
            assert!(shares.iter().all(|s| s.num_items() == 4));
            let mut interleaved = Vec::new();
            for _ in first_epoch..4 {
                let mut iters: Vec<_> = shares.iter().map(|s| s.iter()).collect();
                loop {
                    let round: Vec<_> = iters.iter_mut().filter_map(Iterator::next).collect();
                    if round.is_empty() {
                        break;
                    }
                    interleaved.extend(round);
                }
            }
            assert_eq!(
                interleaved,
                stream[first_epoch * 8..],
                "from epoch {first_epoch}"
            );
        }
    }

    #[test]
    #[should_panic(expected = "equal shares")]
    fn uneven_slices_are_refused() {
        let _ = loader(0).with_shards(2).slice(0, 3);
    }
}
