//! Running one query body against whichever backend is open.
//!
//! sqlx types every query by its database, so code shared by SQLite and PostgreSQL must be compiled once
//! per backend. These macros write the body once and expand it into one match arm per backend; the SQL
//! text is the same in both arms.

/// Runs `$body` with `$conn` bound to the transaction's connection.
macro_rules! on_conn {
    ($tx:expr, $conn:ident => $body:expr) => {
        match &mut $tx.inner {
            $crate::tx::TxInner::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::tx::TxInner::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}

/// Runs `$body` with `$pool` bound to the pool for `write` or `read` access (SQLite keeps a single
/// writer connection apart from its readers; PostgreSQL has one pool).
macro_rules! on_pool {
    ($store:expr, $access:ident, $pool:ident => $body:expr) => {
        match &$store.pools {
            $crate::backend::Pools::Sqlite { writer, reader } => {
                let $pool = if on_pool!(@writes $access) { writer } else { reader };
                $body
            }
            $crate::backend::Pools::Postgres(pool) => {
                let $pool = pool;
                $body
            }
        }
    };
    (@writes write) => { true };
    (@writes read) => { false };
}
