//! Group commit on SQLite: write units from concurrent callers run back to back in one transaction and
//! share its commit, so a burst of callbacks costs one disk sync instead of one each.
//!
//! SQLite has one writer at a time, so a unit that had to wait for the writer gains nothing by taking a
//! transaction of its own. A single task owns the writing: it takes every unit waiting when it becomes
//! free (at most [`MAX_BATCH`]), runs them in order in one transaction, commits, and only then answers
//! each caller. No unit is acknowledged before the commit that makes it durable; a burst forms while the
//! previous commit is syncing, so batching adds no waiting of its own.
//!
//! Units see the writes of the units before them in the batch, exactly as if they had committed first
//! (a replayed nonce in the same batch is a replay). If any unit fails or panics, the batch is rolled
//! back and every unit in it runs again alone, in its own transaction, so one bad unit costs the others
//! only time. Units must therefore be safe to run again, which callbacks already are: KooGallery resends
//! a call whose answer it did not get.
//!
//! A caller that stops waiting (its callback timed out and was answered as failed) must not have its
//! unit committed behind its back: a unit not yet started is skipped, a running one is cancelled, and a
//! batch holding a finished one is rolled back and its other units run alone.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use crate::backend::Pools;
use crate::error::StoreError;
use crate::tx::Tx;

/// Units committed together at most; bounds the latency one batch adds to its last unit.
const MAX_BATCH: usize = 128;

/// Units waiting for the writer at most; beyond that, callers wait to hand theirs over.
const QUEUE: usize = 4096;

/// What a write unit returns: a future borrowing the transaction it runs in.
pub type WriteFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 't>>;

/// The sending side of the writer task; cheap to clone.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    sender: mpsc::Sender<Unit>,
}

type AnyValue = Box<dyn Any + Send>;

enum Failure {
    Store(StoreError),
    /// The unit panicked; the payload is rethrown in the caller's task, where it would have been raised
    /// without batching.
    Panic(AnyValue),
}

struct Unit {
    work: Box<dyn ErasedWork>,
    reply: oneshot::Sender<Result<AnyValue, Failure>>,
}

/// A unit with its result type erased, so units of different types share one queue.
trait ErasedWork: Send + Sync {
    fn run<'t>(&'t self, tx: &'t mut Tx) -> WriteFuture<'t, AnyValue>;
}

struct Typed<F, T>(F, PhantomData<fn() -> T>);

impl<F, T> ErasedWork for Typed<F, T>
where
    F: for<'t> Fn(&'t mut Tx) -> WriteFuture<'t, T> + Send + Sync,
    T: Send + 'static,
{
    fn run<'t>(&'t self, tx: &'t mut Tx) -> WriteFuture<'t, AnyValue> {
        // The closure is called inside the future, so a panic before it returns its own future is
        // caught with the rest instead of unwinding through the writer task.
        Box::pin(async move { (self.0)(tx).await.map(|value| Box::new(value) as AnyValue) })
    }
}

tokio::task_local! {
    /// Set while the writer task runs units: a unit that called `Store::write` itself would wait for
    /// the writer forever.
    static IN_WRITER: ();
}

impl GroupCommit {
    /// Starts the writer task on the current Tokio runtime. It ends when the last handle is dropped.
    pub(crate) fn start(pools: Pools) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(IN_WRITER.scope((), write_loop(pools, receiver)));
        Self { sender }
    }

    /// False once the writer task has stopped (it should not: units cannot unwind through it).
    pub(crate) fn is_running(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Runs `work` in a transaction shared with other waiting units and returns its value once that
    /// transaction has committed.
    pub(crate) async fn submit<F, T>(&self, work: F) -> Result<T, StoreError>
    where
        F: for<'t> Fn(&'t mut Tx) -> WriteFuture<'t, T> + Send + Sync + 'static,
        T: Send + 'static,
    {
        if IN_WRITER.try_with(|_| ()).is_ok() {
            return Err(StoreError::NestedWrite);
        }
        let (reply, answer) = oneshot::channel();
        let unit = Unit { work: Box::new(Typed(work, PhantomData)), reply };
        self.sender.send(unit).await.map_err(|_| stopped())?;
        match answer.await.map_err(|_| stopped())? {
            Ok(value) => Ok(*value.downcast::<T>().expect("a unit answers with its own type")),
            Err(Failure::Store(error)) => Err(error),
            Err(Failure::Panic(payload)) => std::panic::resume_unwind(payload),
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable(sqlx::Error::PoolClosed)
}

/// How running one unit ended.
enum Ran {
    Done(AnyValue),
    Failed(Failure),
    /// The caller stopped waiting (its callback timed out and was refused): the unit was cancelled
    /// where it stood, as the caller's own timeout would have cancelled it without batching.
    Abandoned,
}

async fn run_unit(unit: &mut Unit, tx: &mut Tx) -> Ran {
    let work = AssertUnwindSafe(unit.work.run(tx)).catch_unwind();
    tokio::select! {
        outcome = work => match outcome {
            Ok(Ok(value)) => Ran::Done(value),
            Ok(Err(error)) => Ran::Failed(Failure::Store(error)),
            Err(payload) => Ran::Failed(Failure::Panic(payload)),
        },
        () = unit.reply.closed() => Ran::Abandoned,
    }
}

async fn write_loop(pools: Pools, mut receiver: mpsc::Receiver<Unit>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // A caller that stopped waiting is not applied late.
        batch.retain(|unit| !unit.reply.is_closed());
        if !batch.is_empty() {
            metrics::histogram!("koogate_db_group_commit_units").record(batch.len() as f64);
        }
        match batch.len() {
            0 => {}
            1 => run_alone(&pools, batch.pop().expect("one unit")).await,
            _ => run_together(&pools, std::mem::take(&mut batch)).await,
        }
        batch.clear();
    }
}

async fn run_together(pools: &Pools, mut batch: Vec<Unit>) {
    let Ok(mut tx) = Tx::begin(pools).await else {
        return run_each_alone(pools, batch).await;
    };
    let mut values = Vec::with_capacity(batch.len());
    for unit in &mut batch {
        match run_unit(unit, &mut tx).await {
            Ran::Done(value) => values.push(value),
            // Dropping the transaction rolls the whole batch back; every unit still waited for then
            // runs alone.
            Ran::Failed(_) | Ran::Abandoned => {
                drop(tx);
                return run_each_alone(pools, batch).await;
            }
        }
    }
    // A caller that left after its unit ran must not have it committed behind its back (it was told
    // the call failed); the others run again alone.
    if batch.iter().any(|unit| unit.reply.is_closed()) {
        drop(tx);
        return run_each_alone(pools, batch).await;
    }
    if tx.commit().await.is_err() {
        // Nothing of the batch is durable. Running each alone gives every caller its own outcome.
        return run_each_alone(pools, batch).await;
    }
    for (unit, value) in batch.into_iter().zip(values) {
        let _ = unit.reply.send(Ok(value));
    }
}

async fn run_each_alone(pools: &Pools, batch: Vec<Unit>) {
    // When the database is failing, each of these may take up to the pool's acquire timeout; callers
    // that stopped waiting meanwhile are skipped so the queue behind them is not held up further.
    for unit in batch.into_iter().filter(|unit| !unit.reply.is_closed()) {
        run_alone(pools, unit).await;
    }
}

async fn run_alone(pools: &Pools, mut unit: Unit) {
    let mut tx = match Tx::begin(pools).await {
        Ok(tx) => tx,
        Err(error) => {
            let _ = unit.reply.send(Err(Failure::Store(error)));
            return;
        }
    };
    let reply = match run_unit(&mut unit, &mut tx).await {
        Ran::Done(value) if unit.reply.is_closed() => {
            drop((tx, value));
            return;
        }
        Ran::Done(value) => tx.commit().await.map(|()| value).map_err(Failure::Store),
        Ran::Failed(failure) => Err(failure),
        Ran::Abandoned => return,
    };
    let _ = unit.reply.send(reply);
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use crate::backend::{Backend, PoolSettings, Store};
    use crate::error::StoreError;
    use crate::testing::TestDatabase;

    /// Read through a connection of its own: only what was really committed is there.
    async fn visible_elsewhere(db: &TestDatabase, nonce: &str) -> bool {
        let mut conn = sqlx::SqliteConnection::connect(db.url().as_str()).await.unwrap();
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM nonces WHERE nonce = $1")
            .bind(nonce)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        count == 1
    }

    async fn claim(store: &Store, nonce: &'static str, fail: bool) -> Result<bool, StoreError> {
        store
            .write(move |tx| {
                Box::pin(async move {
                    let claimed = tx.claim_nonce("t", nonce, i64::MAX).await?;
                    if fail {
                        return Err(StoreError::Corrupt("refused by the test".into()));
                    }
                    Ok(claimed)
                })
            })
            .await
    }

    #[tokio::test]
    async fn a_transaction_sqlite_rolled_back_by_itself_does_not_swallow_later_commits() {
        let db = TestDatabase::create_on(Backend::Sqlite).await;
        let store = Store::connect(db.url(), &PoolSettings::default()).await.unwrap();
        store.migrate().await.unwrap();
        // SQLite ends the transaction itself, as it does on a full disk or an I/O error.
        let outcome = store
            .write(|tx| {
                Box::pin(async move {
                    tx.claim_nonce("t", "x", i64::MAX).await?;
                    on_conn!(tx, c => sqlx::query(
                        "INSERT OR ROLLBACK INTO nonces (scope, nonce, expires_at_ms) VALUES ('t', 'x', 1)"
                    )
                    .execute(c)
                    .await
                    .map(|_| ())?);
                    Ok(())
                })
            })
            .await;
        assert!(outcome.is_err());
        assert!(claim(&store, "first", false).await.unwrap());
        assert!(claim(&store, "failing", true).await.is_err());
        for nonce in ["second", "third"] {
            assert!(claim(&store, nonce, false).await.unwrap());
        }
        for nonce in ["first", "second", "third"] {
            assert!(visible_elsewhere(&db, nonce).await, "{nonce} was acknowledged but not committed");
        }
        assert!(!visible_elsewhere(&db, "failing").await);
    }
}
