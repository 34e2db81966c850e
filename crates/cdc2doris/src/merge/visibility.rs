//! Wait until PostgreSQL shows every transaction a batch's events come from.
//!
//! A CDC event can reach Kafka before its transaction is visible to other sessions: PostgreSQL writes (and, with a
//! synchronous standby, replicates) the commit record first and removes the transaction from its list of running
//! ones afterwards. With `synchronous_standby_names` naming the logical walsender (Debezium), the commit even waits
//! for Debezium's confirmation, which Debezium gives after it has published the event. A merge read in that window
//! sees the old row; when the transaction becomes visible no further event follows, and Doris would stay stale.
//!
//! So before a batch is merged, the worker takes a snapshot and checks that it sees every transaction id the batch's
//! events carry (Debezium `source.txId`, unwrapped `__txId`); if one is not visible yet it waits and looks again.
//! Snapshots on a primary only move forward: a transaction visible in this snapshot is visible in every snapshot
//! taken later, so the merge queries that follow (each in a snapshot of its own) see it too.
//!
//! Transaction ids in events are 32 bits (Debezium's `txId` is PostgreSQL's `xid`); they are widened to the 64-bit
//! `xid8` of the snapshot's epoch: the value nearest to the snapshot's `xmax` with the same low 32 bits.
//!
//! An id that cannot belong to this server — "in the future" for PostgreSQL, or aborted (no event of an aborted
//! transaction is ever published) — is not waited for: it is counted and logged, since waiting would stall the
//! pipeline forever on input it cannot fix (events of another database cluster, a hand-written message).

use deadpool_postgres::ClientWrapper;

use super::postgres::MergeError;

/// The snapshot query: `xmin`, `xmax`, the running ids, and whether the server is a standby.
const SNAPSHOT_SQL: &str =
    "SELECT pg_snapshot_xmin(s)::text::int8, pg_snapshot_xmax(s)::text::int8, \
     ARRAY(SELECT x::text::int8 FROM pg_snapshot_xip(s) AS x), pg_is_in_recovery() \
     FROM pg_current_snapshot() AS s";

/// What a snapshot sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Ids below are finished.
    pub xmin: u64,
    /// Ids from here on are not visible.
    pub xmax: u64,
    /// Ids between `xmin` and `xmax` still running, sorted.
    pub xip: Vec<u64>,
    /// The server is a hot standby (its snapshots list no running ids: nothing here holds there).
    pub in_recovery: bool,
}

impl Snapshot {
    /// Reads the current snapshot of `client`'s session.
    pub async fn current(client: &ClientWrapper) -> Result<Snapshot, MergeError> {
        let pg = |source| MergeError::Postgres {
            stage: "reading the current snapshot",
            source,
        };
        let stmt = client.prepare_cached(SNAPSHOT_SQL).await.map_err(pg)?;
        let row = client.query_one(&stmt, &[]).await.map_err(pg)?;
        let xmin: i64 = row.try_get(0).map_err(pg)?;
        let xmax: i64 = row.try_get(1).map_err(pg)?;
        let xip: Vec<i64> = row.try_get(2).map_err(pg)?;
        let in_recovery: bool = row.try_get(3).map_err(pg)?;
        let mut xip: Vec<u64> = xip
            .into_iter()
            .filter_map(|x| u64::try_from(x).ok())
            .collect();
        xip.sort_unstable();
        Ok(Snapshot {
            xmin: u64::try_from(xmin).unwrap_or(0),
            xmax: u64::try_from(xmax).unwrap_or(0),
            xip,
            in_recovery,
        })
    }

    /// Whether the (64-bit) transaction id is finished in this snapshot, hence visible when it committed.
    pub fn sees(&self, xid: u64) -> bool {
        xid < self.xmin || (xid < self.xmax && self.xip.binary_search(&xid).is_err())
    }

    /// The ids of `txids` (as events carry them) this snapshot does not see, widened to 64 bits.
    pub fn invisible(&self, txids: &[u64]) -> Vec<u64> {
        txids
            .iter()
            .map(|&t| widen(t, self.xmax))
            .filter(|&x| !self.sees(x))
            .collect()
    }
}

/// The 64-bit id of a transaction id as an event carries it: values of 2^32 and above are taken as 64-bit already;
/// a 32-bit value becomes the id nearest to `xmax` (the snapshot's, 64-bit) with the same low 32 bits.
pub fn widen(txid: u64, xmax: u64) -> u64 {
    if txid > u64::from(u32::MAX) {
        return txid;
    }
    let low = xmax & 0xFFFF_FFFF;
    let base = xmax - low;
    let candidate = base + txid;
    // Nearest of candidate - 2^32, candidate, candidate + 2^32 to xmax.
    const WRAP: u64 = 1 << 32;
    if candidate > xmax && candidate - xmax > WRAP / 2 && candidate >= WRAP {
        candidate - WRAP
    } else if candidate < xmax && xmax - candidate > WRAP / 2 {
        candidate + WRAP
    } else {
        candidate
    }
}

/// What PostgreSQL says of a transaction id the snapshot does not see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// Committed or still committing: it becomes visible; wait.
    Pending,
    /// Aborted, beyond the server's next id, or unknown to it: no event can come from it here; do not wait.
    Impossible(&'static str),
}

/// Asks PostgreSQL (`pg_xact_status`) about a transaction the snapshot does not see.
pub async fn status(client: &ClientWrapper, xid: u64) -> Result<TxStatus, MergeError> {
    let Ok(signed) = i64::try_from(xid) else {
        return Ok(TxStatus::Impossible("beyond any transaction id"));
    };
    match client
        .query_one(
            "SELECT pg_xact_status($1::text::xid8)",
            &[&signed.to_string()],
        )
        .await
    {
        Ok(row) => {
            let s: Option<String> = row.try_get(0).map_err(|source| MergeError::Postgres {
                stage: "reading a transaction's status",
                source,
            })?;
            Ok(match s.as_deref() {
                Some("aborted") => TxStatus::Impossible("aborted"),
                Some(_) => TxStatus::Pending,
                // PostgreSQL knows nothing of it (an id of a far epoch): not a transaction that is committing here.
                None => TxStatus::Impossible("unknown to this server"),
            })
        }
        // 22023: "transaction ID … is in the future".
        Err(e) if e.code().is_some_and(|c| c.code() == "22023") => {
            Ok(TxStatus::Impossible("in the future for this server"))
        }
        Err(source) => Err(MergeError::Postgres {
            stage: "reading a transaction's status",
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_picks_the_id_nearest_to_xmax() {
        // Epoch 0.
        assert_eq!(widen(100, 1_000), 100);
        assert_eq!(widen(1_005, 1_000), 1_005);
        // Epoch 1: xmax = 2^32 + 10.
        let xmax = (1u64 << 32) + 10;
        assert_eq!(widen(5, xmax), (1 << 32) + 5);
        assert_eq!(widen(20, xmax), (1 << 32) + 20);
        // Just before the wrap, seen from just after it: the previous epoch.
        assert_eq!(widen(u64::from(u32::MAX) - 3, xmax), (1 << 32) - 4);
        // Already 64-bit.
        assert_eq!(widen((3 << 32) + 7, xmax), (3 << 32) + 7);
        // Near the top of epoch 0, an id just past the wrap is in epoch 1.
        let xmax = (1u64 << 32) - 10;
        assert_eq!(widen(5, xmax), (1 << 32) + 5);
        assert_eq!(
            widen(u64::from(u32::MAX) - 20, xmax),
            u64::from(u32::MAX) - 20
        );
    }

    #[test]
    fn a_snapshot_sees_finished_ids_only() {
        let s = Snapshot {
            xmin: 100,
            xmax: 110,
            xip: vec![100, 104],
            in_recovery: false,
        };
        assert!(s.sees(50) && s.sees(99) && s.sees(101) && s.sees(109));
        assert!(!s.sees(100) && !s.sees(104) && !s.sees(110) && !s.sees(5_000));
        assert_eq!(s.invisible(&[50, 104, 105, 110]), vec![104, 110]);
    }
}
