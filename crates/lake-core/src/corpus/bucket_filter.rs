//! The corpus mint filter: a day (or one shard of it) keeps the mints of its buckets, whole.

use crate::pipeline::part_sink::MintFilter;
use crate::spec::bucket_range::BucketRange;
use crate::spec::candles::MintCandles;
use crate::spec::mint_bucket::mint_bucket_index;

/// Keeps the mints whose bucket lies in the range.
pub(crate) struct BucketFilter(pub BucketRange);

impl MintFilter for BucketFilter {
    type Output = ();

    fn keep(&mut self, candles: MintCandles) -> Option<MintCandles> {
        self.0
            .contains(mint_bucket_index(&candles.mint))
            .then_some(candles)
    }

    fn finish(self) {}
}
