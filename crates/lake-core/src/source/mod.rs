//! Where candles come from: a ClickHouse server, or the lake's own sealed corpus, behind one feed.

pub(crate) mod clickhouse;
pub(crate) mod corpus;
pub(crate) mod corpus_freshness;
pub(crate) mod corpus_mirror;
pub(crate) mod feed;
pub(crate) mod fetched_mint;
