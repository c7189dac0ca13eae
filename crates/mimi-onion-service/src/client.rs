//! The client: fetches the hub's signed configuration and accepts it only
//! under the configuration-signing key its room's GroupContext carries
//! (CFG-1 to CFG-4, [`HubConfigStore::accept`]); seals with
//! [`Sender`], POSTs, opens the fixed-size response and refills its token
//! pools from it (TOK-5, RSP-5).
//!
//! The rooms are the demo rooms of the core's fixtures
//! ([`mimi_onion::test_utils::room::Room`], MLS suite 1, real signatures
//! and key schedule, two leaves, epochs 0 and 1) under a `group_id` of the
//! client's choosing, which by ADM-2 starts with its provider's name and a
//! slash. [`verify_queue`] reads a follower queue as a member would.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mimi_onion::config::{
    HubConfigStore, HubSigningKey, KeyConfig, KeyUse, SignedHubConfiguration,
};
use mimi_onion::keylayer;
use mimi_onion::member::{Delivery, Member};
use mimi_onion::mls::message::ContentType;
use mimi_onion::response::{HubResponse, Status};
use mimi_onion::sender::{SealOptions, Sender};
use mimi_onion::suite::HpkeSuite;
use mimi_onion::test_utils::room::Room;
use mimi_onion::test_utils::to_hex;
use serde_json::{json, Value};

use crate::http::{Client, ClientResponse};
use crate::media;
use crate::{Error, Result};

/// Fetches and verifies the configuration (CFG-1 to CFG-4). Returns the
/// store that accepted it and the HTTP response (for its headers).
pub fn fetch_configuration(
    http: &mut Client,
    signing_key: &HubSigningKey,
    store: &mut HubConfigStore,
) -> Result<ClientResponse> {
    let r = http.request("GET", media::CONFIGURATION_PATH, &[], &[])?;
    if r.status != 200 || r.header("content-type") != Some(media::CONFIGURATION) {
        return Err(Error::Protocol(format!(
            "configuration: status {} type {:?}",
            r.status,
            r.header("content-type")
        )));
    }
    let signed = SignedHubConfiguration::from_bytes(&r.body)?;
    store.accept(&signed, signing_key, crate::unix_now())?;
    Ok(r)
}

/// A client of one hub through one HTTP connection.
pub struct HubClient {
    http: Client,
    sender: Sender,
    policy_key: KeyConfig,
    provider: Option<String>,
    /// The sizes of every response received.
    pub response_sizes: BTreeSet<usize>,
    /// Responses received.
    pub responses: u64,
    /// The status and headers of the last envelope's HTTP response.
    pub last_http: Option<(u16, Vec<(String, String)>)>,
}

impl HubClient {
    /// Connects to `url` (a balancer or a hub), fetches and verifies the
    /// configuration under `signing_key`. `provider` is sent as
    /// [`media::PROVIDER_HEADER`], as the provider's gateway would.
    pub fn connect(url: &str, signing_key: &HubSigningKey, provider: Option<&str>) -> Result<Self> {
        let mut http = Client::new(url)?;
        let mut store = HubConfigStore::new();
        fetch_configuration(&mut http, signing_key, &mut store)?;
        let config = store
            .current()
            .ok_or(Error::Protocol("no configuration".into()))?
            .clone();
        let policy_key = config
            .current(KeyUse::Policy)
            .ok_or(Error::Protocol("no policy key".into()))?
            .clone();
        Ok(HubClient {
            http,
            sender: Sender::new(config),
            policy_key,
            provider: provider.map(str::to_string),
            response_sizes: BTreeSet::new(),
            responses: 0,
            last_http: None,
        })
    }

    /// Tokens pooled for a group (`None`: the lobby pool).
    pub fn pool_len(&self, group_id: Option<&[u8]>) -> usize {
        self.sender.pool_len(group_id)
    }

    /// POSTs raw envelope bytes, returns the HTTP response.
    pub fn post(&mut self, envelope: &[u8]) -> Result<ClientResponse> {
        let mut headers = vec![("content-type", media::ENVELOPE)];
        if let Some(p) = &self.provider {
            headers.push((media::PROVIDER_HEADER, p.as_str()));
        }
        Ok(self
            .http
            .request("POST", media::ENVELOPE_PATH, &headers, envelope)?)
    }

    /// Seals `message`, sends it, opens the response (a failure to open
    /// is an error; a `503` from a shard that is down is retried with the
    /// identical envelope, as HUB-5 allows).
    pub fn send(&mut self, message: &[u8], opts: SealOptions<'_>) -> Result<HubResponse> {
        let sealed = self.sender.seal(message, opts)?;
        let mut attempts = 0;
        let r = loop {
            let r = self.post(&sealed.bytes)?;
            attempts += 1;
            if r.status == 503 && attempts < 20 {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            break r;
        };
        if r.status != 200 || r.header("content-type") != Some(media::RESPONSE) {
            return Err(Error::Protocol(format!("envelope: status {}", r.status)));
        }
        self.responses += 1;
        self.response_sizes.insert(r.body.len());
        self.last_http = Some((r.status, r.headers.clone()));
        Ok(self.sender.open_response(&sealed.pending, &r.body)?)
    }
}

/// A demo room and what its sender sent.
pub struct DemoRoom {
    /// The room (keys and epochs from the core's fixtures).
    pub room: Room,
    /// Every message the hub accepted, in order.
    pub accepted: Vec<Vec<u8>>,
    /// The status of every message sent, in order.
    pub statuses: Vec<String>,
}

fn status_name(s: Status) -> String {
    match s {
        Status::Accepted => "accepted".into(),
        Status::Rejected(r) => r.name().into(),
    }
}

impl DemoRoom {
    /// The room with `group_id`, whose GroupContext names `signing_key`.
    pub fn new(group_id: &[u8], signing_key: &HubSigningKey) -> Result<Self> {
        Ok(Self::of(Room::with_group_id(
            1,
            signing_key,
            Some(group_id.to_vec()),
        )?))
    }

    /// The test vectors' demo room of MLS suite 1: the group of
    /// `key-layer.json` (its `group_id`, no provider namespace), whose F
    /// of epoch 0 `fanout.json` publishes, when `signing_key` is the key
    /// of `hub-configuration.json`.
    pub fn vectors(signing_key: &HubSigningKey) -> Result<Self> {
        Ok(Self::of(Room::new(1, signing_key)?))
    }

    fn of(room: Room) -> Self {
        DemoRoom {
            room,
            accepted: Vec::new(),
            statuses: Vec::new(),
        }
    }

    fn note(&mut self, message: Vec<u8>, status: Status, fan_out: bool) {
        if status == Status::Accepted && fan_out {
            self.accepted.push(message);
        }
        self.statuses.push(status_name(status));
    }

    /// Registers the room at epoch 0 (HUB-6): its GroupInfo and F.
    pub fn register(&mut self, client: &mut HubClient) -> Result<Status> {
        let gi = self.room.group_info(0)?;
        let r = client.send(
            &gi,
            SealOptions {
                fanout_key: Some(self.room.epoch(0)?.f.clone()),
                ..SealOptions::default()
            },
        )?;
        self.note(gi, r.status, false);
        Ok(r.status)
    }

    /// Sends one message of `epoch`: application data, the vectors'
    /// proposal or the commit that opens `epoch + 1` (with its key layer
    /// and F).
    pub fn send(
        &mut self,
        client: &mut HubClient,
        epoch: u64,
        content_type: ContentType,
        data: &[u8],
    ) -> Result<Status> {
        let protected = self.room.protect(epoch, content_type, data)?;
        let key_layer = match &protected.key_layer {
            Some(content) => Some(keylayer::seal(
                &client.policy_key,
                HpkeSuite::MANDATORY,
                self.room.suite.code(),
                &protected.message,
                content,
            )?),
            None => None,
        };
        let membership = self.room.membership_keys(epoch)?;
        let fanout_key = match content_type {
            ContentType::Commit => Some(self.room.epoch(epoch + 1)?.f.clone()),
            _ => None,
        };
        let r = client.send(
            &protected.message,
            SealOptions {
                key_layer: key_layer.as_deref(),
                fanout_key,
                membership: Some(&membership),
                fanout_key_signature: None,
            },
        )?;
        self.note(protected.message, r.status, true);
        Ok(r.status)
    }

    /// A room's life: registration; `apps` application messages in epoch
    /// 0; a proposal; the commit to epoch 1; `apps` application messages
    /// in epoch 1.
    pub fn life(&mut self, client: &mut HubClient, apps: usize) -> Result<()> {
        self.register(client)?;
        for i in 0..apps {
            self.send(
                client,
                0,
                ContentType::Application,
                format!("epoch 0 message {i}").as_bytes(),
            )?;
        }
        self.send(client, 0, ContentType::Proposal, b"")?;
        self.send(client, 0, ContentType::Commit, b"")?;
        for i in 0..apps {
            self.send(
                client,
                1,
                ContentType::Application,
                format!("epoch 1 message {i}").as_bytes(),
            )?;
        }
        Ok(())
    }
}

/// Fetches a follower queue (all of it).
pub fn fetch_queue(url: &str, queue: &str) -> Result<Vec<Vec<u8>>> {
    let mut c = Client::new(url)?;
    let r = c.request("GET", &format!("{}{queue}", media::QUEUES_PREFIX), &[], &[])?;
    if r.status != 200 {
        return Err(Error::Protocol(format!("queue: status {}", r.status)));
    }
    media::decode_list(&r.body).ok_or(Error::Protocol("queue: not a fan-out list".into()))
}

/// What a member made of a queue.
#[derive(Debug, Default)]
pub struct QueueCheck {
    /// The MLS messages delivered, in order.
    pub delivered: Vec<Vec<u8>>,
    /// Items that did not deliver (a reason each).
    pub failures: Vec<String>,
}

/// Reads a queue as a member of `rooms` (epoch 0 held; a delivered commit
/// moves its room to epoch 1, and what was buffered for it is delivered
/// then).
pub fn verify_queue(rooms: &[&Room], items: &[Vec<u8>]) -> Result<QueueCheck> {
    let mut member = Member::default();
    for room in rooms {
        let _ = member.enter_epoch(room.suite, room.member_state(0)?);
    }
    let mut check = QueueCheck::default();
    let mut pending: Vec<core::result::Result<Delivery, String>> = Vec::new();
    for item in items {
        pending.push(member.receive(item).map_err(|e| format!("{e}")));
        while let Some(outcome) = pending.pop() {
            match outcome {
                Ok(Delivery::Delivered(r)) => {
                    if r.content_type == ContentType::Commit {
                        if let Some(room) = rooms.iter().find(|x| x.group_id == r.group_id) {
                            for d in member.enter_epoch(room.suite, room.member_state(r.epoch + 1)?)
                            {
                                pending.push(d.map_err(|e| format!("{e}")));
                            }
                        }
                    }
                    check.delivered.push(r.message);
                }
                Ok(Delivery::Buffered) => {}
                Ok(Delivery::ForMlsStack { .. }) => check.failures.push("for the MLS stack".into()),
                Err(e) => check.failures.push(e),
            }
        }
    }
    if member.buffered() > 0 {
        check
            .failures
            .push(format!("{} left in the buffer", member.buffered()));
    }
    Ok(check)
}

/// Counts of a queue against what was accepted: (each accepted message
/// delivered exactly once, missing, duplicated, unknown).
pub fn tally(accepted: &[Vec<u8>], delivered: &[Vec<u8>]) -> (usize, usize, usize, usize) {
    let mut once = 0;
    let mut missing = 0;
    let mut duplicated = 0;
    for m in accepted {
        match delivered.iter().filter(|d| *d == m).count() {
            0 => missing += 1,
            1 => once += 1,
            _ => duplicated += 1,
        }
    }
    let unknown = delivered.iter().filter(|d| !accepted.contains(d)).count();
    (once, missing, duplicated, unknown)
}

/// The `client life` run: every room's life, then each `(url, queue)`
/// read as a member of all the rooms. Returns the JSON report.
pub fn life(
    url: &str,
    signing_key: &HubSigningKey,
    provider: Option<&str>,
    group_ids: &[Vec<u8>],
    apps: usize,
    queues: &[(String, String)],
    settle: Duration,
) -> Result<Value> {
    let mut client = HubClient::connect(url, signing_key, provider)?;
    let mut rooms = Vec::new();
    for g in group_ids {
        let mut room = DemoRoom::new(g, signing_key)?;
        room.life(&mut client, apps)?;
        rooms.push(room);
    }
    let accepted: Vec<Vec<u8>> = rooms.iter().flat_map(|r| r.accepted.clone()).collect();
    let deadline = Instant::now() + settle;
    let mut reports = Vec::new();
    for (furl, q) in queues {
        // Fan-out is asynchronous: wait until the queue holds what was
        // accepted (or the deadline passes), then judge.
        let mut items = fetch_queue(furl, q)?;
        while items.len() < accepted.len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            items = fetch_queue(furl, q)?;
        }
        let refs: Vec<&Room> = rooms.iter().map(|r| &r.room).collect();
        let check = verify_queue(&refs, &items)?;
        let (once, missing, duplicated, unknown) = tally(&accepted, &check.delivered);
        reports.push(json!({
            "follower": furl, "queue": q, "items": items.len(),
            "delivered": check.delivered.len(), "exactly_once": once,
            "missing": missing, "duplicated": duplicated, "unknown": unknown,
            "failures": check.failures,
        }));
    }
    Ok(json!({
        "rooms": rooms.iter().map(|r| json!({
            "group_id": to_hex(&r.room.group_id),
            "statuses": r.statuses,
            "accepted": r.accepted.len(),
        })).collect::<Vec<_>>(),
        "responses": client.responses,
        "response_sizes": client.response_sizes.iter().collect::<Vec<_>>(),
        "accepted": accepted.len(),
        "queues": reports,
    }))
}

/// The `client vectors-room` run: registers [`DemoRoom::vectors`] at
/// epoch 0 and reports its group_id and the status. Returns the JSON
/// report.
pub fn register_vectors_room(
    url: &str,
    signing_key: &HubSigningKey,
    provider: Option<&str>,
) -> Result<Value> {
    let mut client = HubClient::connect(url, signing_key, provider)?;
    let mut room = DemoRoom::vectors(signing_key)?;
    let status = room.register(&mut client)?;
    Ok(json!({
        "group_id": to_hex(&room.room.group_id),
        "status": status_name(status),
    }))
}

/// The `client load` run: one thread per room (each its own connection,
/// sender and token pools), registration first, then `count` application
/// messages spread over the rooms, timed from the first to the last
/// response. Returns the JSON report.
pub fn load(
    url: &str,
    signing_key: &HubSigningKey,
    provider: Option<&str>,
    group_ids: &[Vec<u8>],
    count: usize,
    limit: Duration,
) -> Result<Value> {
    if group_ids.is_empty() {
        return Err(Error::Usage("load needs at least one room"));
    }
    let per = count.div_ceil(group_ids.len());
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(group_ids.len() + 1));
    let mut threads = Vec::new();
    for (t, g) in group_ids.iter().enumerate() {
        let url = url.to_string();
        let key = signing_key.clone();
        let provider = provider.map(str::to_string);
        let g = g.clone();
        let barrier = barrier.clone();
        let n = per.min(count.saturating_sub(t * per));
        threads.push(std::thread::spawn(
            move || -> Result<(usize, usize, BTreeSet<usize>)> {
                let prepared = (|| {
                    let mut client = HubClient::connect(&url, &key, provider.as_deref())?;
                    let mut room = DemoRoom::new(&g, &key)?;
                    let status = room.register(&mut client)?;
                    Ok::<_, Error>((client, room, status))
                })();
                barrier.wait();
                let (mut client, mut room, status) = prepared?;
                if status != Status::Accepted {
                    return Err(Error::Protocol(format!(
                        "registration: {}",
                        status_name(status)
                    )));
                }
                let start = Instant::now();
                let mut accepted = 0;
                let mut sent = 0;
                for i in 0..n {
                    if start.elapsed() > limit {
                        break;
                    }
                    sent += 1;
                    let s = room.send(
                        &mut client,
                        0,
                        ContentType::Application,
                        format!("load {t} {i}").as_bytes(),
                    )?;
                    if s == Status::Accepted {
                        accepted += 1;
                    }
                }
                Ok((sent, accepted, client.response_sizes.clone()))
            },
        ));
    }
    barrier.wait();
    let start = Instant::now();
    let mut sent = 0;
    let mut accepted = 0;
    let mut sizes = BTreeSet::new();
    for t in threads {
        let (n, a, s) = t
            .join()
            .map_err(|_| Error::Protocol("load thread panicked".into()))??;
        sent += n;
        accepted += a;
        sizes.extend(s);
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(json!({
        "sent": sent,
        "accepted": accepted,
        "elapsed_s": elapsed,
        "envelopes_per_s": if elapsed > 0.0 { accepted as f64 / elapsed } else { 0.0 },
        "response_sizes": sizes.iter().collect::<Vec<_>>(),
        "threads": group_ids.len(),
    }))
}
