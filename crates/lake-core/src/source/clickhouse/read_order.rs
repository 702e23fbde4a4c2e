//! How a query asks for its rows' order: the cheapest way a server gives rows in key order.

/// How a query asks for its rows' order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOrder {
    /// No `ORDER BY`: the server sends the table's key order on its own (checked on every row).
    Key,
    /// `ORDER BY` a prefix of the sorting key, which the server answers by reading in key order.
    InOrder(String),
    /// `ORDER BY` that the server answers by sorting each query's rows in memory (bounded per query).
    Sorted(String),
}

impl ReadOrder {
    /// True when rows are trusted to arrive in key order without being asked.
    pub fn trusted(&self) -> bool {
        matches!(self, Self::Key)
    }

    /// True when the server holds a query's rows in memory to sort them, so queries must stay small.
    pub fn sorts(&self) -> bool {
        matches!(self, Self::Sorted(_))
    }

    /// The `ORDER BY` list, if the query asks for one.
    pub(crate) fn order_by(&self) -> Option<&str> {
        match self {
            Self::Key => None,
            Self::InOrder(list) | Self::Sorted(list) => Some(list),
        }
    }
}
