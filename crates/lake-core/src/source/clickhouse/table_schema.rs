//! The candle table's engine, sorting key and columns, checked once per export, and what they mean for the
//! queries: which expressions select the candle columns, and how rows can come in key order most cheaply.

use crate::error::{ErrorCode, LakeError, Result};

use super::connection::Connection;
use super::read_order::ReadOrder;

/// What the export needs to know about the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// Engine name, e.g. `ReplacingMergeTree`.
    pub engine: String,
    /// `ingested_at` when present: the version that decides between duplicates without `FINAL`.
    pub version_column: Option<String>,
    /// The version column's type as the server names it, e.g. `DateTime` or `DateTime('UTC')`.
    pub version_type: Option<String>,
    /// The sorting key's columns, e.g. `token_address, chain, timestamp, interval_seconds`.
    pub sorting_key: Vec<String>,
    /// Type of each candle column (`token_address`, `timestamp`, then open…volume), as the server names it.
    pub column_types: Vec<String>,
    /// The engine's arguments as the server prints them (`engine_full`), e.g. `["ingested_at"]`.
    pub engine_args: Vec<String>,
    /// The partition key as the server prints it, e.g. `toYYYYMM(timestamp)`; empty without one.
    pub partition_key: String,
    /// True when the table has a `TTL` clause (its merges delete rows).
    pub ttl: bool,
}

/// Columns the export reads, with the type families it accepts.
const REQUIRED: [(&str, &[&str]); 9] = [
    (
        "token_address",
        &["String", "LowCardinality(String)", "FixedString"],
    ),
    (
        "chain",
        &["String", "LowCardinality(String)", "FixedString", "Enum"],
    ),
    ("timestamp", &["DateTime"]),
    ("interval_seconds", &["UInt", "Int"]),
    ("open", &["Float", "Decimal", "UInt", "Int"]),
    ("high", &["Float", "Decimal", "UInt", "Int"]),
    ("low", &["Float", "Decimal", "UInt", "Int"]),
    ("close", &["Float", "Decimal", "UInt", "Int"]),
    ("volume", &["Float", "Decimal", "UInt", "Int"]),
];
/// The candle columns in the order the queries select them (after the mint and the time).
const VALUES: [&str; 5] = ["open", "high", "low", "close", "volume"];

fn bare(ty: &str) -> &str {
    ty.strip_prefix("Nullable(")
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(ty)
}

/// The arguments inside the engine's parentheses in `engine_full` (`ReplacingMergeTree(ingested_at) ORDER BY …`),
/// split at top-level commas; empty without parentheses.
fn engine_args(engine_full: &str) -> Vec<String> {
    let Some(open) = engine_full.find('(') else {
        return Vec::new();
    };
    let (mut depth, mut quoted, mut args, mut current) = (0u32, false, Vec::new(), String::new());
    let mut chars = engine_full[open + 1..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                current.push(c);
                current.extend(chars.next());
                continue;
            }
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth == 0 => break,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                args.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        args.push(current.trim().to_owned());
    }
    args
}

impl TableSchema {
    /// True when a day's candles under `FINAL` are exactly its distinct (mint, time) keys and their largest
    /// version the largest of all its rows, so both can be counted without `FINAL`: a `ReplacingMergeTree`
    /// whose version is the version column (no `is_deleted`, which `FINAL` would drop) and whose key is the
    /// candle key (chain and interval are fixed by the query's filter).
    pub fn final_is_distinct_keys(&self) -> bool {
        let replacing = matches!(
            self.engine.as_str(),
            "ReplacingMergeTree" | "ReplicatedReplacingMergeTree" | "SharedReplacingMergeTree"
        );
        // Replicated engines lead with their ZooKeeper path and replica name, both string literals.
        let args: Vec<&str> = self
            .engine_args
            .iter()
            .map(|a| a.trim_matches('`'))
            .filter(|a| !a.starts_with('\''))
            .collect();
        let key_ok = self.sorting_key.iter().any(|c| c == "token_address")
            && self.sorting_key.iter().any(|c| c == "timestamp")
            && self.sorting_key.iter().all(|c| {
                matches!(
                    c.as_str(),
                    "token_address" | "chain" | "timestamp" | "interval_seconds"
                )
            });
        replacing && key_ok && args.len() == 1 && Some(args[0]) == self.version_column.as_deref()
    }

    /// The expression that reads each row's version as `UInt32` epoch seconds alongside its candle, where the rows
    /// read can give a day's source fingerprint (`source::clickhouse::row_prints`): a `DateTime` version column,
    /// whose `toString` the client can reproduce, or none (`0`, unused). `None` for other version types, whose
    /// fingerprint the server computes.
    pub fn row_version_expr(&self) -> Option<String> {
        match (&self.version_column, self.version_type.as_deref()) {
            (None, _) => Some("toUInt32(0)".to_owned()),
            (Some(column), Some(ty)) if ty == "DateTime" || ty.starts_with("DateTime('") => {
                Some(format!("toUInt32(`{column}`)"))
            }
            _ => None,
        }
    }

    /// The time zone the version column's `toString` prints in: its type's own (`DateTime('UTC')`), else `None`
    /// (the server's).
    pub fn version_time_zone(&self) -> Option<&str> {
        self.version_type
            .as_deref()?
            .strip_prefix("DateTime('")?
            .strip_suffix("')")
    }

    /// True when ClickHouse's background merges never change the rows an export reads: a plain `MergeTree`
    /// (read as stored) or an engine read under `FINAL` (whose answer is what merging would make), without a
    /// `TTL` (whose merges delete rows). Only then do the rows of parts listed before a read stay the rows read.
    pub fn merges_keep_rows(&self) -> bool {
        let plain = matches!(
            self.engine.as_str(),
            "MergeTree" | "ReplicatedMergeTree" | "SharedMergeTree"
        );
        (plain || self.supports_final()) && !self.ttl
    }

    /// True when block numbers come from a shared log (replicated engines): a part can appear on this replica
    /// after parts with larger numbers, so a part is known only by the parts it was merged from.
    pub fn replicated(&self) -> bool {
        self.engine.starts_with("Replicated") || self.engine.starts_with("Shared")
    }

    /// True when the parts' `min_time` / `max_time` are the range of their `timestamp`: the partition key uses
    /// no other column of a date or time (only `timestamp` and the candle key's text and number columns).
    pub fn parts_know_time(&self) -> bool {
        let key = self.partition_key.as_bytes();
        let mut columns = Vec::new();
        let mut i = 0;
        while i < key.len() {
            if key[i].is_ascii_alphabetic() || key[i] == b'_' {
                let start = i;
                while i < key.len() && (key[i].is_ascii_alphanumeric() || key[i] == b'_') {
                    i += 1;
                }
                // A name followed by `(` is a function's.
                if key.get(i) != Some(&b'(') {
                    columns.push(&self.partition_key[start..i]);
                }
            } else if key[i].is_ascii_digit() {
                while i < key.len() && key[i].is_ascii_alphanumeric() {
                    i += 1;
                }
            } else {
                i += 1;
            }
        }
        columns.contains(&"timestamp")
            && columns.iter().all(|c| {
                matches!(
                    *c,
                    "timestamp" | "token_address" | "chain" | "interval_seconds"
                )
            })
    }

    /// `FINAL` collapses duplicates exactly as the engine's merges would; other engines reject it (error 181).
    pub fn supports_final(&self) -> bool {
        matches!(
            self.engine.as_str(),
            "ReplacingMergeTree"
                | "CollapsingMergeTree"
                | "VersionedCollapsingMergeTree"
                | "ReplicatedReplacingMergeTree"
                | "ReplicatedCollapsingMergeTree"
                | "ReplicatedVersionedCollapsingMergeTree"
                | "SharedReplacingMergeTree"
        )
    }

    fn column_type(&self, i: usize) -> &str {
        self.column_types.get(i).map_or("String", String::as_str)
    }

    /// The expression that yields the mint as a plain `String`.
    pub fn mint_expr(&self) -> String {
        let ty = self.column_type(0);
        let col = if ty.starts_with("Nullable(") {
            "assumeNotNull(token_address)"
        } else {
            "token_address"
        };
        match bare(ty) {
            "String" => col.to_owned(),
            t if t.starts_with("FixedString") => format!("toStringCutToZero({col})"),
            _ => format!("CAST({col} AS String)"),
        }
    }

    /// Expressions for the seven columns the candle queries select: mint, time (UInt32 seconds), OHLCV (Float64).
    pub fn select_exprs(&self) -> Vec<String> {
        let ts = if self.column_type(1).starts_with("Nullable(") {
            "toUInt32(assumeNotNull(timestamp))"
        } else {
            "toUInt32(timestamp)"
        };
        let mut out = vec![self.mint_expr(), ts.to_owned()];
        for (k, name) in VALUES.iter().enumerate() {
            let ty = self.column_type(2 + k);
            out.push(if ty == "Float64" {
                (*name).to_owned()
            } else if ty.starts_with("Nullable(") {
                // A missing price or volume is not a number, never a made-up zero.
                format!("ifNull(toFloat64({name}), nan)")
            } else {
                format!("toFloat64({name})")
            });
        }
        out
    }

    /// Rows whose mint or time is NULL are not candles.
    pub fn not_null_filter(&self) -> Option<String> {
        let mut terms = Vec::new();
        for (i, name) in ["token_address", "timestamp"].iter().enumerate() {
            if self.column_type(i).starts_with("Nullable(") {
                terms.push(format!("isNotNull({name})"));
            }
        }
        (!terms.is_empty()).then(|| terms.join(" AND "))
    }

    /// The sorting key's columns up to `timestamp`, when that prefix orders rows by (mint, time) once chain and
    /// interval are fixed — `ORDER BY` that prefix lets a current server read in key order instead of sorting.
    pub fn key_prefix(&self) -> Option<Vec<String>> {
        let mut prefix = Vec::new();
        for column in &self.sorting_key {
            prefix.push(column.clone());
            match column.as_str() {
                "timestamp" => {
                    return prefix
                        .iter()
                        .any(|c| c == "token_address")
                        .then_some(prefix);
                }
                "token_address" | "chain" | "interval_seconds" => {}
                _ => return None,
            }
        }
        None
    }

    /// The cheapest way to get rows in (mint, time) order from a server of major version `server_major`.
    ///
    /// ClickHouse 18/19 send `FINAL` in key order on their own, and sort in memory when asked (measured on
    /// 18.16: twice the work). Later servers read `FINAL` in parallel streams (unordered) but read in key order,
    /// at a few percent more, when asked to `ORDER BY` a prefix of the key. Engines without `FINAL` are ordered
    /// so that the newest version of a duplicate comes first.
    pub fn read_order(&self, server_major: u32) -> ReadOrder {
        if !self.supports_final() {
            let mut list = String::from("token_address, timestamp");
            if let Some(version) = &self.version_column {
                list.push_str(&format!(", `{version}` DESC"));
            }
            list.push_str(", open DESC, high DESC, low DESC, close DESC, volume DESC");
            return ReadOrder::Sorted(list);
        }
        match self.key_prefix() {
            Some(_) if old_server(server_major) => ReadOrder::Key,
            Some(prefix) => ReadOrder::InOrder(prefix.join(", ")),
            None => ReadOrder::Sorted("token_address, timestamp".to_owned()),
        }
    }

    /// The order to fall back to when a server trusted with [`ReadOrder::Key`] broke it: it will sort.
    pub fn sorted_order(&self) -> ReadOrder {
        ReadOrder::Sorted(
            self.key_prefix()
                .map_or_else(|| "token_address, timestamp".to_owned(), |p| p.join(", ")),
        )
    }
}

/// ClickHouse 18 and 19 merge `FINAL` in one stream; 0 is a version we could not read.
fn old_server(major: u32) -> bool {
    (1..=19).contains(&major)
}

fn schema_error(conn: &Connection, what: String) -> LakeError {
    LakeError::new(
        ErrorCode::ClickhouseSchema,
        format!(
            "{} at {}: {what}; the table needs token_address String, chain String, timestamp DateTime, \
             interval_seconds UInt32 and open/high/low/close/volume Float64",
            conn.quoted_table(),
            conn.endpoint()
        ),
    )
}

/// Reads the engine, sorting key and columns from `system.tables` / `system.columns` and checks them.
pub async fn load_table_schema(conn: &Connection) -> Result<TableSchema> {
    let cfg = conn.config();
    let table = conn
        .query_text(
            conn.client()
                .query(
                    "SELECT engine, sorting_key, engine_full, partition_key FROM system.tables \
                     WHERE database = ? AND name = ?",
                )
                .bind(cfg.database.as_str())
                .bind(cfg.table.as_str()),
        )
        .await?;
    let line = table.lines().next().unwrap_or_default();
    let mut fields = line.split('\t');
    let (engine, sorting_key, engine_full, partition_key) = (
        fields.next().unwrap_or_default(),
        fields.next().unwrap_or_default(),
        fields.next().unwrap_or_default(),
        fields.next().unwrap_or_default(),
    );
    if engine.trim().is_empty() {
        return Err(schema_error(conn, "the table does not exist".to_owned()));
    }
    let columns = conn
        .query_text(
            conn.client()
                .query("SELECT name, type FROM system.columns WHERE database = ? AND table = ? ORDER BY name")
                .bind(cfg.database.as_str())
                .bind(cfg.table.as_str()),
        )
        .await?;
    // TabSeparated escapes the quotes of `DateTime('UTC')`.
    let columns = columns.replace("\\'", "'");
    let columns: Vec<(&str, &str)> = columns.lines().filter_map(|l| l.split_once('\t')).collect();
    let type_of = |name: &str| columns.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
    let mut column_types = Vec::new();
    for (name, families) in REQUIRED {
        match type_of(name) {
            None => return Err(schema_error(conn, format!("column {name} is missing"))),
            Some(ty) => {
                if !families.iter().any(|f| bare(ty).starts_with(f)) {
                    return Err(schema_error(conn, format!("column {name} has type {ty}")));
                }
                if !matches!(name, "chain" | "interval_seconds") {
                    column_types.push(ty.to_owned());
                }
            }
        }
    }
    Ok(TableSchema {
        engine: engine.trim().to_owned(),
        version_column: type_of("ingested_at").map(|_| "ingested_at".to_owned()),
        version_type: type_of("ingested_at").map(str::to_owned),
        sorting_key: sorting_key
            .split(',')
            .map(|c| c.trim().trim_matches('`').to_owned())
            .filter(|c| !c.is_empty())
            .collect(),
        column_types,
        engine_args: engine_args(&engine_full.replace("\\'", "'")),
        partition_key: partition_key.replace("\\'", "'"),
        ttl: engine_full.split_whitespace().any(|w| w == "TTL"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(engine: &str, key: &str, types: &[&str]) -> TableSchema {
        TableSchema {
            engine: engine.into(),
            version_column: Some("ingested_at".into()),
            version_type: Some("DateTime".into()),
            sorting_key: key.split(", ").map(str::to_owned).collect(),
            column_types: types.iter().map(|t| (*t).to_owned()).collect(),
            engine_args: vec!["ingested_at".into()],
            partition_key: String::new(),
            ttl: false,
        }
    }

    #[test]
    fn parts_tell_rows_only_where_merges_keep_them_and_tell_time_by_timestamp_only() {
        let key = "token_address, chain, timestamp, interval_seconds";
        for engine in [
            "MergeTree",
            "ReplacingMergeTree",
            "ReplicatedReplacingMergeTree",
        ] {
            assert!(schema(engine, key, &PLAIN).merges_keep_rows(), "{engine}");
        }
        for engine in ["SummingMergeTree", "AggregatingMergeTree", "Memory"] {
            assert!(!schema(engine, key, &PLAIN).merges_keep_rows(), "{engine}");
        }
        let ttl = TableSchema {
            ttl: true,
            ..schema("ReplacingMergeTree", key, &PLAIN)
        };
        assert!(!ttl.merges_keep_rows());
        assert!(schema("ReplicatedMergeTree", key, &PLAIN).replicated());
        assert!(!schema("ReplacingMergeTree", key, &PLAIN).replicated());
        let by = |partition: &str| TableSchema {
            partition_key: partition.into(),
            ..schema("MergeTree", key, &PLAIN)
        };
        assert!(by("toYYYYMM(timestamp)").parts_know_time());
        assert!(by("(chain, toDate(timestamp))").parts_know_time());
        assert!(by("toStartOfInterval(timestamp, toIntervalDay(7))").parts_know_time());
        assert!(!by("").parts_know_time());
        assert!(!by("toYYYYMM(ingested_at)").parts_know_time());
        assert!(!by("(toYYYYMM(timestamp), toYYYYMM(ingested_at))").parts_know_time());
    }

    #[test]
    fn only_a_replacing_engine_on_the_version_and_the_candle_key_counts_without_final() {
        let key = "token_address, chain, timestamp, interval_seconds";
        assert!(schema("ReplacingMergeTree", key, &PLAIN).final_is_distinct_keys());
        let replicated = TableSchema {
            engine_args: engine_args(
                "ReplicatedReplacingMergeTree('/ch/{shard}/t', '{replica}', ingested_at) ORDER BY x",
            ),
            ..schema("ReplicatedReplacingMergeTree", key, &PLAIN)
        };
        assert_eq!(
            replicated.engine_args,
            vec!["'/ch/{shard}/t'", "'{replica}'", "ingested_at"]
        );
        assert!(replicated.final_is_distinct_keys());
        let cases = [
            (
                "ReplacingMergeTree(ingested_at, is_deleted) ORDER BY x",
                key,
            ),
            ("ReplacingMergeTree ORDER BY x", key),
            ("ReplacingMergeTree(other_version) ORDER BY x", key),
            (
                "ReplacingMergeTree(ingested_at) ORDER BY x",
                "token_address, source, timestamp",
            ),
        ];
        for (full, key) in cases {
            let s = TableSchema {
                engine_args: engine_args(full),
                ..schema("ReplacingMergeTree", key, &PLAIN)
            };
            assert!(!s.final_is_distinct_keys(), "{full} / {key}");
        }
        assert!(!schema("CollapsingMergeTree", key, &PLAIN).final_is_distinct_keys());
        assert_eq!(engine_args("Memory"), Vec::<String>::new());
    }

    const PLAIN: [&str; 7] = [
        "String", "DateTime", "Float64", "Float64", "Float64", "Float64", "Float64",
    ];

    #[test]
    fn read_order_follows_the_server_and_the_key() {
        let quantbot = schema(
            "ReplacingMergeTree",
            "token_address, chain, timestamp, interval_seconds",
            &PLAIN,
        );
        assert_eq!(quantbot.read_order(18), ReadOrder::Key);
        assert_eq!(
            quantbot.read_order(25),
            ReadOrder::InOrder("token_address, chain, timestamp".into())
        );
        assert!(
            !quantbot.read_order(0).trusted(),
            "an unknown version is not trusted"
        );
        let chain_first = schema(
            "ReplacingMergeTree",
            "chain, token_address, timestamp",
            &PLAIN,
        );
        assert_eq!(chain_first.read_order(18), ReadOrder::Key);
        let time_first = schema("ReplacingMergeTree", "timestamp, token_address", &PLAIN);
        assert_eq!(
            time_first.read_order(18),
            ReadOrder::Sorted("token_address, timestamp".into())
        );
        let computed = schema(
            "ReplacingMergeTree",
            "token_address, toDate(timestamp)",
            &PLAIN,
        );
        assert_eq!(computed.key_prefix(), None);
        let plain = schema("MergeTree", "token_address, chain, timestamp", &PLAIN);
        assert!(
            matches!(plain.read_order(25), ReadOrder::Sorted(o) if o.contains("`ingested_at` DESC"))
        );
        assert_eq!(
            quantbot.sorted_order(),
            ReadOrder::Sorted("token_address, chain, timestamp".into())
        );
    }

    #[test]
    fn expressions_normalise_column_types() {
        let plain = schema("MergeTree", "token_address", &PLAIN);
        assert_eq!(
            plain.select_exprs(),
            [
                "token_address",
                "toUInt32(timestamp)",
                "open",
                "high",
                "low",
                "close",
                "volume"
            ]
        );
        assert_eq!(plain.not_null_filter(), None);
        let odd = schema(
            "MergeTree",
            "token_address",
            &[
                "Nullable(FixedString(44))",
                "Nullable(DateTime)",
                "Decimal(18, 9)",
                "Nullable(Float64)",
                "Float32",
                "Float64",
                "UInt64",
            ],
        );
        let exprs = odd.select_exprs();
        assert_eq!(exprs[0], "toStringCutToZero(assumeNotNull(token_address))");
        assert_eq!(exprs[1], "toUInt32(assumeNotNull(timestamp))");
        assert_eq!(exprs[2], "toFloat64(open)");
        assert_eq!(exprs[3], "ifNull(toFloat64(high), nan)");
        assert_eq!(
            odd.not_null_filter().as_deref(),
            Some("isNotNull(token_address) AND isNotNull(timestamp)")
        );
        let lc = schema("MergeTree", "token_address", &["LowCardinality(String)"]);
        assert_eq!(lc.mint_expr(), "CAST(token_address AS String)");
    }
}
