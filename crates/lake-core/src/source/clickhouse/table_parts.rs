//! The candle table's active data parts (docs/lake-format.md, "Refresh"): listed before a corpus day is read
//! and kept in its fingerprint, they let a later check find what changed since without reading the day.
//!
//! A part's name is `<partition>_<min block>_<max block>_<level>[_<mutation>]`. Merges only combine parts, and
//! where the table's merges keep the rows an export reads ([`TableSchema::merges_keep_rows`]) a part made only of
//! blocks that were listed holds rows already read. A plain table numbers its blocks when they become visible, so
//! every block up to the largest listed number was listed; a replicated one numbers them before a replica has
//! them, so there a part is known only when listed parts tile its blocks. Two changes no scan of new rows can
//! show make the check give up (the day is fingerprinted as before): a mutation since (its rows may be gone) and
//! a listed part that no current part contains (dropped or detached).

use crate::error::{ErrorCode, Result};
use crate::lake::fingerprint::SourceParts;

use super::fetch::CandleSource;
use super::table_schema::TableSchema;

/// Most parts a day records; a table with more lets its days be fingerprinted as before.
const MAX_PARTS_PER_DAY: usize = 5_000;

/// A parsed part name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartName {
    partition: String,
    min: i64,
    max: i64,
    /// Merges the part went through (checked by the parse, else unused).
    level: u32,
    /// The mutation the part's rows reflect, 0 for none.
    mutation: i64,
}

impl PartName {
    /// `None` for a name of another shape (a partition id with `_`, a patch part): never known.
    fn parse(name: &str) -> Option<Self> {
        // Patch parts (lightweight updates) change rows a scan of them does not show.
        if name.starts_with("patch") {
            return None;
        }
        let mut f = name.split('_');
        let partition = f.next()?.to_owned();
        let min = f.next()?.parse().ok()?;
        let max = f.next()?.parse().ok()?;
        let level = f.next()?.parse().ok()?;
        let mutation = f.next().map_or(Some(0), |m| m.parse().ok())?;
        if f.next().is_some() || partition.is_empty() || min > max {
            return None;
        }
        Some(Self {
            partition,
            min,
            max,
            level,
            mutation,
        })
    }

    fn contains(&self, other: &PartName) -> bool {
        self.partition == other.partition && self.min <= other.min && other.max <= self.max
    }
}

/// One active part.
#[derive(Debug, Clone)]
struct ActivePart {
    text: String,
    name: Option<PartName>,
    rows: u64,
    /// `min_time` / `max_time` as epoch seconds (both 0 when the partition key has no time).
    time: (u32, u32),
}

/// What changed in the parts that could hold a sealed day's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartsChange {
    /// Every such part holds only rows read for the day.
    Same,
    /// These parts may hold rows not read (inserted since): their rows tell which mints to ask about.
    New(Vec<String>),
    /// The parts cannot tell (a mutation or a dropped part since, unreadable names, or the new parts hold most
    /// of the rows): the day must be fingerprinted whole.
    Unknown,
}

/// The table's active parts at one moment.
#[derive(Debug, Clone)]
pub struct TableParts {
    parts: Vec<ActivePart>,
    max_block: i64,
    know_time: bool,
    replicated: bool,
}

/// The active parts of the source's table, or `None` where parts cannot tell what changed: merges that change
/// the rows read, or a server that will not list them (a profile without access to `system.parts`).
pub async fn list_parts(source: &CandleSource) -> Result<Option<TableParts>> {
    let schema = &source.schema;
    if !schema.merges_keep_rows() {
        return Ok(None);
    }
    let cfg = source.conn.config();
    let text = source
        .conn
        .query_text(
            source
                .conn
                .client()
                .query(
                    "SELECT name, rows, toUInt32(min_time), toUInt32(max_time) FROM system.parts \
                     WHERE database = ? AND table = ? AND active ORDER BY name",
                )
                .bind(cfg.database.as_str())
                .bind(cfg.table.as_str()),
        )
        .await;
    let text = match text {
        Err(e) if e.code() == ErrorCode::ClickhouseQuery => return Ok(None),
        other => other?,
    };
    Ok(parse_listing(&text, schema))
}

fn parse_listing(text: &str, schema: &TableSchema) -> Option<TableParts> {
    let mut parts = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let [name, rows, lo, hi] = f.as_slice() else {
            return None;
        };
        parts.push(ActivePart {
            text: (*name).to_owned(),
            name: PartName::parse(name),
            rows: rows.parse().ok()?,
            time: (lo.parse().ok()?, hi.parse().ok()?),
        });
    }
    // A table without parts (a view, a `Distributed` table) has nothing to tell.
    if parts.is_empty() {
        return None;
    }
    let max_block = parts
        .iter()
        .filter_map(|p| p.name.as_ref())
        .map(|n| n.max.max(n.mutation))
        .max()
        .unwrap_or(0);
    Some(TableParts {
        parts,
        max_block,
        know_time: schema.parts_know_time(),
        replicated: schema.replicated(),
    })
}

impl TableParts {
    /// The parts that could hold rows of `[start_s, end_s)`: all of them unless their time ranges are the
    /// rows' (see [`TableSchema::parts_know_time`]).
    fn of_range(&self, (start_s, end_s): (u32, u32)) -> impl Iterator<Item = &ActivePart> {
        self.parts.iter().filter(move |p| {
            !self.know_time || p.time == (0, 0) || (p.time.1 >= start_s && p.time.0 < end_s)
        })
    }

    /// What a day of `[start_s, end_s)` records; `None` when too many parts could hold its rows.
    pub fn for_day(&self, range: (u32, u32)) -> Option<SourceParts> {
        let names: Vec<String> = self.of_range(range).map(|p| p.text.clone()).collect();
        (names.len() <= MAX_PARTS_PER_DAY).then_some(SourceParts {
            max_block: self.max_block,
            names,
        })
    }

    /// What changed for a day of `[start_s, end_s)` since `sealed` was listed.
    pub fn change(&self, sealed: &SourceParts, range: (u32, u32)) -> PartsChange {
        let Some(listed) = sealed
            .names
            .iter()
            .map(|n| PartName::parse(n))
            .collect::<Option<Vec<_>>>()
        else {
            return PartsChange::Unknown;
        };
        // Most listed parts are still there by name; only the others are looked for inside merged ones.
        let active: std::collections::HashSet<&str> =
            self.parts.iter().map(|p| p.text.as_str()).collect();
        let current: Vec<&PartName> = self.parts.iter().filter_map(|p| p.name.as_ref()).collect();
        let mut gone = sealed
            .names
            .iter()
            .zip(&listed)
            .filter(|(n, _)| !active.contains(n.as_str()));
        if !gone.all(|(_, l)| current.iter().any(|c| c.contains(l))) {
            return PartsChange::Unknown;
        }
        let (mut new, mut new_rows, mut rows) = (Vec::new(), 0u64, 0u64);
        for p in self.of_range(range) {
            rows += p.rows;
            if sealed.names.binary_search(&p.text).is_ok() {
                continue;
            }
            let Some(name) = &p.name else {
                return PartsChange::Unknown;
            };
            let known = if self.replicated {
                tiled(name, &listed)
            } else {
                name.max <= sealed.max_block && name.mutation <= sealed.max_block
            };
            if known {
                continue;
            }
            let mutated_since = if self.replicated {
                name.mutation != 0
            } else {
                name.mutation > sealed.max_block
            };
            if mutated_since {
                return PartsChange::Unknown;
            }
            new.push(p.text.clone());
            new_rows += p.rows;
        }
        if new.is_empty() {
            PartsChange::Same
        } else if new_rows.saturating_mul(2) > rows {
            // Scanning them and then asking about their mints would read more than the day's fingerprint query.
            PartsChange::Unknown
        } else {
            PartsChange::New(new)
        }
    }

    /// True when every part of `names` is still active: a part merged away before a query that names it was
    /// not read by it.
    pub fn all_active(&self, names: &[String]) -> bool {
        names
            .iter()
            .all(|n| self.parts.iter().any(|p| &p.text == n))
    }
}

/// True when listed parts of `part`'s partition cover each of its blocks, and it reflects no mutation they do
/// not.
fn tiled(part: &PartName, listed: &[PartName]) -> bool {
    let mut tiles: Vec<&PartName> = listed.iter().filter(|l| part.contains(l)).collect();
    tiles.sort_by_key(|t| (t.min, t.max));
    let mut next = part.min;
    for t in &tiles {
        if t.min > next {
            return false;
        }
        next = next.max(t.max + 1);
    }
    let mutation = tiles.iter().map(|t| t.mutation).max().unwrap_or(0);
    next > part.max && part.mutation <= mutation
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(engine: &str, partition_key: &str) -> TableSchema {
        TableSchema {
            engine: engine.into(),
            version_column: Some("ingested_at".into()),
            version_type: Some("DateTime".into()),
            sorting_key: vec!["token_address".into(), "timestamp".into()],
            column_types: Vec::new(),
            engine_args: vec!["ingested_at".into()],
            partition_key: partition_key.into(),
            ttl: false,
        }
    }

    /// A listing of `(name, rows, min_time, max_time)`.
    fn listing(parts: &[(&str, u64, u32, u32)], s: &TableSchema) -> TableParts {
        let text: Vec<String> = parts
            .iter()
            .map(|(n, r, lo, hi)| format!("{n}\t{r}\t{lo}\t{hi}"))
            .collect();
        parse_listing(&text.join("\n"), s).unwrap()
    }

    const DAY: (u32, u32) = (86_400, 2 * 86_400);

    #[test]
    fn names_parse_and_odd_ones_are_never_known() {
        let n = PartName::parse("202501_1_4_1_5").unwrap();
        assert_eq!(
            (n.partition.as_str(), n.min, n.max, n.level, n.mutation),
            ("202501", 1, 4, 1, 5)
        );
        assert_eq!(PartName::parse("all_3_3_0").unwrap().mutation, 0);
        for odd in [
            "a_b_1_1_0",
            "all_1_1",
            "all_2_1_0",
            "patch-x_1_1_0_1_2",
            "_1_1_0",
        ] {
            assert_eq!(PartName::parse(odd), None, "{odd}");
        }
    }

    #[test]
    fn a_plain_table_knows_every_block_up_to_the_listed_largest() {
        let s = schema("ReplacingMergeTree", "");
        let then = listing(&[("all_1_1_0", 100, 0, 0), ("all_3_3_0", 100, 0, 0)], &s);
        let sealed = then.for_day(DAY).unwrap();
        assert_eq!(sealed.max_block, 3);
        assert_eq!(then.change(&sealed, DAY), PartsChange::Same);
        // Merged, even across the block another partition took: known.
        let merged = listing(&[("all_1_3_1", 200, 0, 0)], &s);
        assert_eq!(merged.change(&sealed, DAY), PartsChange::Same);
        let late = listing(&[("all_1_3_1", 200, 0, 0), ("all_4_4_0", 7, 0, 0)], &s);
        assert_eq!(
            late.change(&sealed, DAY),
            PartsChange::New(vec!["all_4_4_0".into()])
        );
        // A new block merged into old ones: the merged part is scanned, if it is not most of the rows.
        let folded = listing(&[("all_1_1_0", 100, 0, 0), ("all_3_4_1", 107, 0, 0)], &s);
        assert_eq!(folded.change(&sealed, DAY), PartsChange::Unknown);
        let mutated = listing(&[("all_1_1_0_5", 90, 0, 0), ("all_3_3_0_5", 100, 0, 0)], &s);
        assert_eq!(mutated.change(&sealed, DAY), PartsChange::Unknown);
        let dropped = listing(&[("all_1_1_0", 100, 0, 0), ("all_4_4_0", 7, 0, 0)], &s);
        assert_eq!(dropped.change(&sealed, DAY), PartsChange::Unknown);
    }

    #[test]
    fn a_replicated_table_knows_only_parts_its_listed_parts_tile() {
        let s = schema("ReplicatedReplacingMergeTree", "");
        let then = listing(&[("all_0_5_1", 600, 0, 0), ("all_7_7_0", 100, 0, 0)], &s);
        let sealed = then.for_day(DAY).unwrap();
        // Block 6 reached this replica after 7: not read, though below the largest listed number.
        let fetched = listing(
            &[
                ("all_0_5_1", 600, 0, 0),
                ("all_6_6_0", 10, 0, 0),
                ("all_7_7_0", 100, 0, 0),
            ],
            &s,
        );
        assert_eq!(
            fetched.change(&sealed, DAY),
            PartsChange::New(vec!["all_6_6_0".into()])
        );
        let merged = listing(&[("all_0_7_2", 710, 0, 0)], &s);
        assert_eq!(
            merged.change(&sealed, DAY),
            PartsChange::Unknown,
            "block 6 folded in"
        );
        let tiled = listing(&[("all_0_5_1", 600, 0, 0), ("all_7_7_0", 100, 0, 0)], &s);
        assert_eq!(tiled.change(&sealed, DAY), PartsChange::Same);
        let then = listing(
            &[
                ("all_0_5_1", 600, 0, 0),
                ("all_6_6_0", 10, 0, 0),
                ("all_7_7_0", 100, 0, 0),
            ],
            &s,
        );
        let sealed = then.for_day(DAY).unwrap();
        assert_eq!(
            merged.change(&sealed, DAY),
            PartsChange::Same,
            "every block listed"
        );
    }

    #[test]
    fn parts_of_other_times_are_neither_recorded_nor_asked_about() {
        let s = schema("MergeTree", "toYYYYMM(timestamp)");
        let then = listing(
            &[
                ("197001_1_1_0", 100, 0, 3 * 86_400),
                ("197002_2_2_0", 100, 40 * 86_400, 50 * 86_400),
            ],
            &s,
        );
        let sealed = then.for_day(DAY).unwrap();
        assert_eq!(sealed.names, vec!["197001_1_1_0".to_owned()]);
        let later = listing(
            &[
                ("197001_1_1_0", 100, 0, 3 * 86_400),
                ("197002_2_3_1", 150, 40 * 86_400, 50 * 86_400),
                ("197001_4_4_0", 5, 86_400, 86_400),
            ],
            &s,
        );
        assert_eq!(
            later.change(&sealed, DAY),
            PartsChange::New(vec!["197001_4_4_0".into()])
        );
        assert_eq!(
            later.change(&sealed, (10 * 86_400, 11 * 86_400)),
            PartsChange::Same
        );
        // Without a time partition every part could hold the day's rows.
        let plain = listing(
            &[("all_1_1_0", 100, 0, 86_399)],
            &schema("MergeTree", "toYYYYMM(ingested_at)"),
        );
        assert_eq!(
            plain
                .for_day((10 * 86_400, 11 * 86_400))
                .unwrap()
                .names
                .len(),
            1
        );
        assert!(later.all_active(&["197001_4_4_0".into()]));
        assert!(!later.all_active(&["197002_2_2_0".into()]));
    }
}
