//! A sink that fingerprints the mints passing through it on their way to the sink that writes them, so that a
//! batch's source fingerprints are those of exactly the rows it wrote.

use crate::error::Result;
use crate::pipeline::sink::MintSink;
use crate::source::clickhouse::row_prints::RowPrints;
use crate::source::fetched_mint::FetchedMint;

/// `inner`, with the mints' rows counted into `prints` (when the fetch reads versions).
pub struct PrintingSink<S> {
    inner: S,
    prints: Option<RowPrints>,
}

impl<S> PrintingSink<S> {
    /// Wraps `inner`; `prints` is `None` where the server computes the fingerprints.
    pub fn new(inner: S, prints: Option<RowPrints>) -> Self {
        Self { inner, prints }
    }
}

impl<S: MintSink> MintSink for PrintingSink<S> {
    type Output = (S::Output, Option<RowPrints>);

    fn add(&mut self, mint: FetchedMint) -> Result<()> {
        if let Some(p) = &mut self.prints {
            p.note(&mint);
        }
        self.inner.add(mint)
    }

    fn finish(self) -> Result<Self::Output> {
        Ok((self.inner.finish()?, self.prints))
    }
}
