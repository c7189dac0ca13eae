//! A follower provider's endpoint.
//!
//! - `POST /v1/deliveries` ([`media::FANOUT`], with
//!   [`media::QUEUES_HEADER`] and [`media::IDEMPOTENCY_HEADER`]; or
//!   [`media::FANOUT_BATCH`], several in order): appends each fan-out
//!   message, unchanged, to each named recipient queue (FAN-4: FIFO per
//!   queue) and answers `204`. A delivery whose key was seen before is
//!   acknowledged again and stored no second time (FAN-7: the hub's key is
//!   its store id and the entry's sequence number, the same for every
//!   redelivery).
//! - `GET /v1/queues/<queue>[?from=N]`: the queue's messages from the
//!   `N`-th on, as a [`media::FANOUT_LIST`].
//! - `GET /v1/stats`: deliveries, duplicates, queue lengths (JSON).
//!
//! The queues live in memory (a follower's own storage is its business);
//! `--fail-acks N` stores the first `N` delivery requests but answers
//! `503`, as a lost acknowledgement would, so that tests see the hub retry and the
//! follower keep one copy.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use mimi_onion::wire::MAX_ENVELOPE_LEN;
use serde_json::json;

use crate::http::{self, Resp};
use crate::media;
use crate::Result;

/// How a follower process runs.
#[derive(Clone, Debug)]
pub struct FollowerOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Answer `503` to the first this many (stored) deliveries.
    pub fail_acks: u64,
    /// Where to write the bound URL once listening.
    pub ready_file: Option<PathBuf>,
}

#[derive(Default)]
struct State {
    seen: HashSet<String>,
    queues: BTreeMap<String, Vec<Vec<u8>>>,
    received: u64,
    duplicates: u64,
    failed_acks: u64,
}

struct Follower {
    state: Mutex<State>,
    fail_acks: u64,
}

/// Runs a follower until it is killed.
pub async fn run(opts: FollowerOptions) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(opts.listen).await?;
    let url = format!("http://{}", listener.local_addr()?);
    if let Some(p) = &opts.ready_file {
        crate::write_ready_file(p, &url)?;
    }
    eprintln!("follower listening on {url}");
    let me = Arc::new(Follower {
        state: Mutex::new(State::default()),
        fail_acks: opts.fail_acks,
    });
    let handler: http::Handler = Arc::new(move |req| {
        let me = me.clone();
        Box::pin(async move { me.route(req).await })
    });
    http::serve(listener, None, handler).await;
    Ok(())
}

fn valid_queue(q: &str) -> bool {
    !q.is_empty()
        && q.len() <= 128
        && q.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._@".contains(&b))
}

impl Follower {
    async fn route(self: Arc<Self>, req: Request<Incoming>) -> Resp {
        let path = req.uri().path().to_string();
        if path == media::DELIVERIES_PATH {
            if req.method() != Method::POST {
                return http::method_not_allowed("POST");
            }
            return self.deliver(req).await;
        }
        if path == media::STATS_PATH {
            return self.stats();
        }
        if let Some(q) = path.strip_prefix(media::QUEUES_PREFIX) {
            if req.method() != Method::GET {
                return http::method_not_allowed("GET");
            }
            let from: usize = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("from="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            return self.queue(q, from);
        }
        http::text(StatusCode::NOT_FOUND, "not found\n")
    }

    async fn deliver(&self, req: Request<Incoming>) -> Resp {
        let batch = http::has_media_type(&req, media::FANOUT_BATCH);
        if !batch && !http::has_media_type(&req, media::FANOUT) {
            return http::text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a fan-out message\n",
            );
        }
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let single = (
            header(media::IDEMPOTENCY_HEADER),
            header(media::QUEUES_HEADER),
        );
        let body = match http::read_body(req.into_body(), MAX_ENVELOPE_LEN, Duration::from_secs(30))
            .await
        {
            Ok(b) => b,
            Err(e) => return e.response(),
        };
        // (key, queues, message) of every delivery, all checked before
        // any is stored.
        let items: Vec<(String, Vec<String>, Vec<u8>)> = if batch {
            let Some(list) = media::decode_list(&body) else {
                return http::text(StatusCode::BAD_REQUEST, "bad batch\n");
            };
            let mut items = Vec::new();
            for item in list {
                let parts = media::decode_list(&item).unwrap_or_default();
                let [key, queues, message] = <[Vec<u8>; 3]>::try_from(parts).unwrap_or_default();
                let (Ok(key), Ok(queues)) = (String::from_utf8(key), String::from_utf8(queues))
                else {
                    return http::text(StatusCode::BAD_REQUEST, "bad batch item\n");
                };
                items.push((
                    key,
                    queues.split(',').map(str::to_string).collect(),
                    message,
                ));
            }
            items
        } else {
            let (Some(key), queues) = single else {
                return http::text(StatusCode::BAD_REQUEST, "idempotency-key required\n");
            };
            let queues = queues
                .unwrap_or_default()
                .split(',')
                .map(str::to_string)
                .collect();
            vec![(key, queues, body.to_vec())]
        };
        for (key, queues, _) in &items {
            if key.is_empty() || key.len() > 200 {
                return http::text(StatusCode::BAD_REQUEST, "idempotency-key required\n");
            }
            if queues.is_empty() || !queues.iter().all(|q| valid_queue(q)) {
                return http::text(StatusCode::BAD_REQUEST, "bad recipient queues\n");
            }
        }
        let Ok(mut st) = self.state.lock() else {
            return http::text(StatusCode::INTERNAL_SERVER_ERROR, "follower\n");
        };
        for (key, queues, message) in items {
            if !st.seen.insert(key) {
                st.duplicates += 1;
                continue;
            }
            st.received += 1;
            for q in queues {
                st.queues.entry(q).or_default().push(message.clone());
            }
        }
        if st.failed_acks < self.fail_acks {
            st.failed_acks += 1;
            return http::text(StatusCode::SERVICE_UNAVAILABLE, "try again\n");
        }
        let mut r = http::text(StatusCode::NO_CONTENT, "");
        *r.body_mut() = http_body_util::Full::new(bytes::Bytes::new());
        r
    }

    fn queue(&self, q: &str, from: usize) -> Resp {
        let Ok(st) = self.state.lock() else {
            return http::text(StatusCode::INTERNAL_SERVER_ERROR, "follower\n");
        };
        let items = st.queues.get(q).map(Vec::as_slice).unwrap_or_default();
        let body = media::encode_list(items.iter().skip(from).map(Vec::as_slice));
        http::bytes(StatusCode::OK, media::FANOUT_LIST, body)
    }

    fn stats(&self) -> Resp {
        let Ok(st) = self.state.lock() else {
            return http::text(StatusCode::INTERNAL_SERVER_ERROR, "follower\n");
        };
        let queues: BTreeMap<&String, usize> =
            st.queues.iter().map(|(k, v)| (k, v.len())).collect();
        http::json(&json!({
            "received": st.received,
            "duplicates": st.duplicates,
            "failed_acks": st.failed_acks,
            "queues": queues,
        }))
    }
}
