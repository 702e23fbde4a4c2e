//! The ClickHouse candle source: connection settings, safe SQL, streaming Native decode and error mapping.

pub mod candle_query;
pub mod connection;
pub mod day_mints;
pub mod fetch;
pub mod http_client;
pub mod native;
pub mod server_error;
pub mod table_schema;

pub use connection::{ClickHouseConfig, Connection, ServerInfo};
pub use fetch::CandleSource;
pub use native::FetchedMint;
pub use table_schema::{load_table_schema, TableSchema};
