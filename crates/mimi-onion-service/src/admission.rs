//! The hub's registration admission (spec "Registration Admission",
//! ADM-1 to ADM-4): [`QuotaAdmission`] admits a registration only from an
//! authenticated provider (ADM-1), only for a room in that provider's
//! namespace (ADM-2), and only while the provider holds fewer rooms than
//! its quota (ADM-3). Its ledger of admitted rooms is a SQLite file that
//! every shard of the hub on one machine shares (`--ledger`), written once
//! a registration was accepted, so quotas hold across shards and
//! restarts. Two shards admitting a provider's last room at the same
//! instant may both accept: the quota can be exceeded by at most the
//! number of shards less one.
//!
//! A room whose `group_id` has no namespace can still be admitted for one
//! provider when the operator names the pair ([`QuotaAdmission::adopted`],
//! the hub's `--adopt`): the exception of the hub's own policy that ADM-2
//! leaves to a hub taking over such a group (the test vectors' demo rooms
//! are such groups). It still needs that provider authenticated (ADM-1)
//! and counts against its quota (ADM-3).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mimi_onion::admission::{room_of_provider, Admission, AdmissionRequest};
use rusqlite::{params, Connection};

use crate::Result;

/// Rooms admitted per provider.
#[derive(Debug)]
pub struct Ledger {
    db: Connection,
}

impl Ledger {
    /// The ledger in `path` (created if missing), or in memory.
    pub fn open(path: Option<&Path>) -> Result<Self> {
        let db = match path {
            Some(p) => Connection::open(p)?,
            None => Connection::open_in_memory()?,
        };
        db.busy_timeout(Duration::from_secs(5))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS admitted (
                 provider TEXT NOT NULL,
                 group_id BLOB NOT NULL,
                 PRIMARY KEY (provider, group_id));",
        )?;
        Ok(Ledger { db })
    }

    /// Rooms `provider` holds (a failing database counts as full).
    pub fn count(&self, provider: &str) -> usize {
        self.db
            .query_row(
                "SELECT COUNT(*) FROM admitted WHERE provider = ?1",
                params![provider],
                |r| r.get::<_, i64>(0),
            )
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Records an accepted registration.
    pub fn record(&mut self, provider: &str, group_id: &[u8]) -> Result<()> {
        self.db.execute(
            "INSERT OR IGNORE INTO admitted (provider, group_id) VALUES (?1, ?2)",
            params![provider, group_id],
        )?;
        Ok(())
    }
}

/// ADM-1 to ADM-3 over a shared [`Ledger`].
#[derive(Clone, Debug)]
pub struct QuotaAdmission {
    /// Rooms one provider may hold on this hub (ADM-3).
    pub quota: usize,
    /// The ledger, which the hub server updates after an accepted
    /// registration.
    pub ledger: Arc<Mutex<Ledger>>,
    /// Rooms outside every namespace that the operator admits for one
    /// provider each: (provider, group_id). ADM-1 and ADM-3 still apply.
    pub adopted: Vec<(String, Vec<u8>)>,
}

impl Admission for QuotaAdmission {
    fn admit(&self, request: &AdmissionRequest<'_>) -> bool {
        // ADM-1: no authenticated provider, no registration.
        let Some(provider) = request.provider else {
            return false;
        };
        // ADM-2: the room is in the provider's namespace, or the operator
        // gave it to this provider.
        let adopted = self
            .adopted
            .iter()
            .any(|(p, g)| p == provider && g.as_slice() == request.group_id);
        if !adopted && !room_of_provider(provider, request.group_id) {
            return false;
        }
        // ADM-3: under the provider's quota.
        let Ok(ledger) = self.ledger.lock() else {
            return false;
        };
        ledger.count(provider) < self.quota
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(provider: Option<&'a str>, gid: &'a [u8]) -> AdmissionRequest<'a> {
        AdmissionRequest {
            provider,
            group_id: gid,
            group_info: &[],
        }
    }

    /// ADM-1, ADM-2, ADM-3 and the ledger across a reopen.
    #[test]
    fn quota_namespace_and_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger");
        let ledger = Arc::new(Mutex::new(Ledger::open(Some(&path)).unwrap()));
        let adm = QuotaAdmission {
            quota: 2,
            ledger: ledger.clone(),
            adopted: vec![("b.example".into(), b"no-namespace".to_vec())],
        };
        assert!(!adm.admit(&req(None, b"a.example/r1")));
        assert!(!adm.admit(&req(Some("a.example"), b"b.example/r1")));
        assert!(adm.admit(&req(Some("a.example"), b"a.example/r1")));
        // The operator's exception: that room, for that provider only.
        assert!(adm.admit(&req(Some("b.example"), b"no-namespace")));
        assert!(!adm.admit(&req(Some("a.example"), b"no-namespace")));
        assert!(!adm.admit(&req(None, b"no-namespace")));
        ledger
            .lock()
            .unwrap()
            .record("a.example", b"a.example/r1")
            .unwrap();
        ledger
            .lock()
            .unwrap()
            .record("a.example", b"a.example/r2")
            .unwrap();
        assert!(!adm.admit(&req(Some("a.example"), b"a.example/r3")));
        assert!(adm.admit(&req(Some("b.example"), b"b.example/r1")));
        drop(ledger);
        let reopened = Ledger::open(Some(&path)).unwrap();
        assert_eq!(reopened.count("a.example"), 2);
    }
}
