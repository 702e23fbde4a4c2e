//! The ClickHouse candle source: connection settings, safe SQL, streaming RowBinary decode and error mapping.

pub mod connection;
pub mod server_error;

pub use connection::{ClickHouseConfig, Connection, ServerInfo};
