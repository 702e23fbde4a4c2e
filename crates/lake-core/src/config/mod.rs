//! What both export configs share: their defaults and limits, and how wire JSON is read.

pub(crate) mod facts;
pub(crate) mod wire;
