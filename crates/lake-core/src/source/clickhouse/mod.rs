//! The ClickHouse candle source: connection settings, safe SQL, streaming Native decode and error mapping.

pub(crate) mod city_hash;
pub(crate) mod connection;
pub(crate) mod day_mints;
pub(crate) mod fetch;
pub(crate) mod fingerprint;
pub(crate) mod http_client;
pub(crate) mod native;
pub(crate) mod part_prints;
pub(crate) mod read_order;
pub(crate) mod row_prints;
pub(crate) mod server_error;
pub(crate) mod sql;
pub(crate) mod table_parts;
pub(crate) mod table_schema;
pub(crate) mod tls;

pub use crate::task::retry::{RetryNotice, RetryObserver};
pub use connection::{ClickHouseConfig, Connection, ServerInfo};
pub use fetch::CandleSource;
pub use read_order::ReadOrder;
pub use table_schema::load_table_schema;
