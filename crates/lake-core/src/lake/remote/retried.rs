//! Every request to the object store, asked again after a transient failure within `object_store.retries`.
//!
//! The client retries one HTTP request on its own (5xx, throttling, a connection that failed before the
//! request went out), but not a conditional write whose connection broke after it was sent (it may have
//! happened), nor a read whose answer broke off mid-stream, nor anything once its three quick retries are
//! spent. Those are asked again here, with the same backoff as ClickHouse requests. A conditional write
//! asked again may find its own earlier success: its callers tell it from another writer's by content (the
//! manifest's bytes, the lease's attempt id), see `commit` and `lease`.

use std::future::Future;

use bytes::Bytes;
use object_store::{ObjectMeta, ObjectStoreExt, PutMode, PutPayload, UpdateVersion};

use crate::error::Result;
use crate::lake::remote::location::RemoteLake;
use crate::lake::remote::store::store_error;
use crate::task::cancel::CancelFlag;

/// A failure that is the store's answer to the request, for its caller to judge: no such object, or a
/// condition that did not hold.
fn is_answer(err: &object_store::Error) -> bool {
    use object_store::Error as E;
    matches!(
        err,
        E::NotFound { .. }
            | E::AlreadyExists { .. }
            | E::Precondition { .. }
            | E::NotModified { .. }
    )
}

impl RemoteLake {
    /// Runs `op` (one request, or one read with its whole answer) until it succeeds, the store answers
    /// with a missing object or a failed condition (the inner `Err`, for the caller to judge), or a failure
    /// that asking again cannot mend or that outlasts the budget (the outer `Err`: coded, saying it was
    /// `what` on `rel`, with the attempts it took).
    pub async fn retried<T, F, Fut>(
        &self,
        what: &str,
        rel: &str,
        mut op: F,
    ) -> Result<std::result::Result<T, object_store::Error>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, object_store::Error>>,
    {
        // An export's object-store work is its publish, which runs after the export's last cancellation check so
        // that a Ctrl-C never leaves a commit between its steps; verify and status have nothing to cancel.
        let never = CancelFlag::new();
        let mut attempts = self.retrier().request();
        loop {
            match op().await {
                Ok(value) => return Ok(Ok(value)),
                Err(e) if is_answer(&e) => return Ok(Err(e)),
                Err(e) => {
                    let err = store_error(what, &self.url(rel), &e);
                    attempts.after(err, &never).await?;
                }
            }
        }
    }
}

/// What a conditional create found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The object is ours: created now, or by an earlier attempt whose answer was lost on the way (the object
    /// holds exactly our bytes). Its ETag, for conditional replaces.
    Ours(Option<String>),
    /// Another writer's object is there.
    Theirs,
}

impl RemoteLake {
    /// Creates `rel` holding `bytes` unless an object is there (`If-None-Match: *`). An attempt whose
    /// connection broke may have created it before the retry found it existing; an object with exactly
    /// `bytes` is therefore taken as ours. The bytes must say who wrote them (the lease's attempt id, the
    /// manifest's creation time and seal) for that to tell two writers apart.
    pub async fn create(&self, what: &str, rel: &str, bytes: Bytes) -> Result<Created> {
        let key = self.key(rel);
        let store = self.store();
        for _ in 0..3 {
            let payload = PutPayload::from(bytes.clone());
            let put = self
                .retried(what, rel, || {
                    store.put_opts(&key, payload.clone(), PutMode::Create.into())
                })
                .await?;
            match put {
                Ok(done) => return Ok(Created::Ours(done.e_tag)),
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {}
                Err(e) => return Err(store_error(what, &self.url(rel), &e)),
            }
            match self.read_back(rel).await? {
                Ok((meta, held)) if held == bytes => return Ok(Created::Ours(meta.e_tag)),
                Ok(_) => return Ok(Created::Theirs),
                // Deleted since: create it again.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(store_error("read", &self.url(rel), &e)),
            }
        }
        Ok(Created::Theirs)
    }
}

impl RemoteLake {
    /// Replaces `rel` with `bytes` if it is still the version `e_tag` (`If-Match`). Like [`RemoteLake::create`],
    /// an object that already holds exactly `bytes` is ours (an earlier attempt replaced it and its answer was
    /// lost); anything else there, or nothing, is [`Created::Theirs`].
    pub async fn replace(
        &self,
        what: &str,
        rel: &str,
        bytes: Bytes,
        e_tag: Option<String>,
    ) -> Result<Created> {
        let key = self.key(rel);
        let store = self.store();
        let payload = PutPayload::from(bytes.clone());
        let version = UpdateVersion {
            e_tag,
            version: None,
        };
        let put = self
            .retried(what, rel, || {
                let mode = PutMode::Update(version.clone());
                store.put_opts(&key, payload.clone(), mode.into())
            })
            .await?;
        match put {
            Ok(done) => return Ok(Created::Ours(done.e_tag)),
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(store_error(what, &self.url(rel), &e)),
        }
        match self.read_back(rel).await? {
            Ok((meta, held)) if held == bytes => Ok(Created::Ours(meta.e_tag)),
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(Created::Theirs),
            Err(e) => Err(store_error("read", &self.url(rel), &e)),
        }
    }

    /// The metadata and the bytes of `rel`; `NotFound` as the inner error.
    pub async fn read_back(
        &self,
        rel: &str,
    ) -> Result<std::result::Result<(ObjectMeta, Bytes), object_store::Error>> {
        let key = self.key(rel);
        let store = self.store();
        self.retried("read", rel, || async {
            let got = store.get(&key).await?;
            let meta = got.meta.clone();
            Ok((meta, got.bytes().await?))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_conditional_write_knows_its_own_earlier_success_from_another_writer() {
        let lake = RemoteLake::in_memory();
        let ours = Bytes::from_static(b"attempt a");
        let Created::Ours(first) = lake
            .create("commit", "x/m.json", ours.clone())
            .await
            .unwrap()
        else {
            panic!("an empty place is created");
        };
        // The answer to that create was lost; the retry finds the object holding exactly our bytes.
        assert_eq!(
            lake.create("commit", "x/m.json", ours.clone())
                .await
                .unwrap(),
            Created::Ours(first.clone())
        );
        assert_eq!(
            lake.create("commit", "x/m.json", Bytes::from_static(b"attempt b"))
                .await
                .unwrap(),
            Created::Theirs
        );

        let renewed = Bytes::from_static(b"attempt a, renewed");
        let Created::Ours(second) = lake
            .replace("renew", "x/m.json", renewed.clone(), first.clone())
            .await
            .unwrap()
        else {
            panic!("the version we hold is replaced");
        };
        // Asked again on the old ETag: the object already holds our bytes.
        assert_eq!(
            lake.replace("renew", "x/m.json", renewed, first.clone())
                .await
                .unwrap(),
            Created::Ours(second)
        );
        assert_eq!(
            lake.replace("renew", "x/m.json", Bytes::from_static(b"c"), first)
                .await
                .unwrap(),
            Created::Theirs
        );
        assert_eq!(
            lake.replace("renew", "x/gone.json", Bytes::from_static(b"c"), None)
                .await
                .unwrap(),
            Created::Theirs
        );
    }
}
