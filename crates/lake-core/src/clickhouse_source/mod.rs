//! The ClickHouse candle source: connection settings, safe SQL, streaming RowBinary decode and error mapping.

pub mod candle_query;
pub mod connection;
pub mod day_mints;
pub mod fetch;
pub mod row_binary;
pub mod server_error;
pub mod table_schema;

pub use connection::{ClickHouseConfig, Connection, ServerInfo};
pub use fetch::{CandleSource, FetchedBucket};
pub use table_schema::{load_table_schema, TableSchema};
