//! A mimi-onion room on real openmls groups, end to end: Alice at provider
//! A creates a room at hub H and registers it; Bob and Carol at provider B
//! send KeyPackages and join by Welcome (a message that reaches them
//! before it waits in their buffers); messages go both ways; a proposal
//! and a commit change the epoch. Every byte goes through the core's
//! sender, load balancer, hub front-end (with the openmls `PublicGroup`
//! tracker) and fan-out, the followers' queues, and the member's onion
//! part before openmls processes it. Each party's view is printed.
//!
//! Run: `cargo run -p mimi-onion-openmls --example room`
//!
//! The integration test `tests/room.rs` runs this same code (it includes
//! this file) and checks what it returns.

use std::collections::VecDeque;

use ed25519_dalek::SigningKey;
use mimi_onion::balancer::{LoadBalancer, Route};
use mimi_onion::config::{HubConfigStore, HubSigningKey, KeyUse, SignedHubConfiguration};
use mimi_onion::hub::{HubFrontEnd, HubView};
use mimi_onion::keys::HubKeyPair;
use mimi_onion::mls::message::MessageInfo;
use mimi_onion::response::Status;
use mimi_onion::state::{HubStore, InMemoryHubStore};
use mimi_onion::suite::HpkeSuite;
use mimi_onion::token::{TokenKey, TokenKeys};
use mimi_onion_openmls::hub::PublicGroupTracker;
use mimi_onion_openmls::{room_capabilities, room_create_config, room_signing_key};
use mimi_onion_openmls::{Event, OpenMlsClient, OpenMlsMember, Sealed};
use openmls::prelude::tls_codec::DeserializeBytes as _;
use openmls::prelude::{
    BasicCredential, Ciphersuite, CredentialWithKey, GroupId, KeyPackage, KeyPackageIn,
    LeafNodeIndex, MlsGroup, MlsMessageBodyIn, MlsMessageIn, MlsMessageOut, ProtocolVersion,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::OpenMlsProvider as _;

/// The room's MLS cipher suite.
pub const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
/// Shards of hub H; shard 0 answers messages that name no group.
const SHARDS: u32 = 16;
/// The follower providers of the room: A (index 0) and B (index 1).
pub const PROVIDERS: [&str; 2] = ["A", "B"];

/// The example's failures: this crate's, the core's, or a step that did
/// not go as the protocol says.
pub type Failure = Box<dyn std::error::Error>;

/// One client: its openmls provider (crypto and storage), signature key,
/// credential, mimi-onion sender and member.
pub struct Party {
    /// Its name.
    pub name: &'static str,
    /// Index of its provider in [`PROVIDERS`].
    pub provider_index: usize,
    /// Its openmls provider (crypto and storage).
    pub provider: OpenMlsRustCrypto,
    /// Its signature key pair.
    pub signer: SignatureKeyPair,
    /// Its credential.
    pub credential: CredentialWithKey,
    /// Its mimi-onion client.
    pub client: OpenMlsClient,
    /// Its member side.
    pub member: OpenMlsMember,
    /// The MLS messages delivered to it, byte for byte, in order.
    pub delivered: Vec<Vec<u8>>,
    /// What it saw, one line each.
    pub view: Vec<String>,
}

/// One MLS message sent to the room: its bytes and who was a member of
/// its epoch (each of whom must get it once).
#[derive(Debug, Clone)]
pub struct Sent {
    /// What it was.
    pub what: String,
    /// The MLS message.
    pub message: Vec<u8>,
    /// Names of the members of its epoch.
    pub recipients: Vec<&'static str>,
}

/// Everything the example did, for the test to check.
pub struct Report {
    /// The room.
    pub group_id: Vec<u8>,
    /// Every envelope as the sender's provider forwarded it.
    pub envelopes: Vec<Vec<u8>>,
    /// Every MLS message sealed into an envelope, with its envelope index.
    pub sealed: Vec<(usize, Vec<u8>)>,
    /// Every fan-out message, with the MLS message it carries.
    pub fanouts: Vec<(Vec<u8>, Vec<u8>)>,
    /// The room messages.
    pub sent: Vec<Sent>,
    /// The parties at the end.
    pub parties: Vec<Party>,
    /// What the hub front-end saw of each envelope.
    pub hub_views: Vec<HubView>,
}

/// Hub H and the network: load balancer, front-end over the store `S`,
/// followers' queues.
pub struct World<S: HubStore = InMemoryHubStore> {
    /// The hub front-end.
    pub hub: HubFrontEnd<S>,
    balancer: LoadBalancer,
    /// The hub's configuration-signing key (its public part), which the
    /// room's GroupContext carries.
    pub signing_key: HubSigningKey,
    served: Vec<u8>,
    now: u64,
    queues: Vec<VecDeque<Vec<u8>>>,
    report: Report,
}

impl World {
    /// Hub H with its keys, a load balancer, and the in-memory store.
    pub fn new() -> Result<Self, Failure> {
        World::with_store(InMemoryHubStore::new())
    }
}

impl<S: HubStore> World<S> {
    /// Hub H with its keys, a load balancer, and `store` for its state.
    pub fn with_store(store: S) -> Result<Self, Failure> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let not_after = now + 30 * 24 * 3600;
        let seed = |n: u8| -> [u8; 32] {
            let mut s = [0u8; 32];
            rand::fill(&mut s);
            s[0] ^= n;
            s
        };
        let suites = [HpkeSuite::X25519Aes128Gcm];
        let hub_key = HubKeyPair::derive(1, KeyUse::Hub, &suites, &seed(1), not_after)?;
        let policy_key = HubKeyPair::derive(1, KeyUse::Policy, &suites, &seed(2), not_after)?;
        let tokens = TokenKeys::new(vec![TokenKey::new(
            0,
            seed(3)[..16].try_into()?,
            not_after,
        )?])?;
        let balancer = LoadBalancer::new(tokens.clone(), SHARDS);
        let mut hub = HubFrontEnd::new(vec![hub_key, policy_key], tokens, SHARDS, 0, store)?;
        // The hub follows every commit with openmls's PublicGroup.
        hub.set_tracker(Box::new(PublicGroupTracker::new()));
        let key = SigningKey::from_bytes(&seed(4));
        let signing_key = HubSigningKey::ed25519(&key.verifying_key());
        hub.set_signing_key(signing_key.clone());
        let served = hub.configuration(1).sign(&key)?.to_bytes()?;
        Ok(World {
            hub,
            balancer,
            signing_key,
            served,
            now,
            queues: vec![VecDeque::new(); PROVIDERS.len()],
            report: Report {
                group_id: Vec::new(),
                envelopes: Vec::new(),
                sealed: Vec::new(),
                fanouts: Vec::new(),
                sent: Vec::new(),
                parties: Vec::new(),
                hub_views: Vec::new(),
            },
        })
    }

    /// A client at provider `provider_index` that trusts `signing_key` as
    /// the hub's configuration-signing key (the room's, or for a client
    /// not in the room yet, the one its invitation names) and verifies the
    /// configuration the hub serves under it.
    pub fn party(
        &self,
        name: &'static str,
        provider_index: usize,
        signing_key: &HubSigningKey,
    ) -> Result<Party, Failure> {
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(SUITE.signature_algorithm())?;
        signer.store(provider.storage())?;
        let credential = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.public().into(),
        };
        let mut store = HubConfigStore::new();
        let verified = store
            .accept(
                &SignedHubConfiguration::from_bytes(&self.served)?,
                signing_key,
                self.now,
            )?
            .clone();
        let mut client = OpenMlsClient::new(verified);
        // Tokens for messages that name no group (KeyPackage, Welcome,
        // registration).
        client
            .sender_mut()
            .add_tokens(None, &self.hub.issue_tokens(None));
        Ok(Party {
            name,
            provider_index,
            provider,
            signer,
            credential,
            client,
            member: OpenMlsMember::default(),
            delivered: Vec::new(),
            view: Vec::new(),
        })
    }

    /// The sender's provider forwards the envelope; the load balancer
    /// routes it; the front-end judges it; the sender opens the response.
    pub fn send(&mut self, party: &mut Party, sealed: Sealed) -> Result<HubView, Failure> {
        let Sealed {
            envelope: sealed,
            message,
        } = sealed;
        let message = message.as_slice();
        let route = self.balancer.route(&sealed.bytes);
        let outcome = self.hub.handle(&sealed.bytes, self.now);
        let response = party
            .client
            .sender_mut()
            .open_response(&sealed.pending, &outcome.response)?;
        let view = outcome.view.ok_or("the hub did not open the envelope")?;
        let info = MessageInfo::parse(message)?;
        party.view.push(format!(
            "sent {:?}{}: {} bytes in an envelope of {}, balancer {}, hub {:?}",
            info.wire_format,
            info.content_type
                .map(|c| format!(" {}", c.name()))
                .unwrap_or_default(),
            message.len(),
            sealed.bytes.len(),
            match route {
                Route::Shard(s) => format!("shard {s}"),
                Route::Unroutable => "unroutable".into(),
            },
            response.status
        ));
        if response.status != Status::Accepted {
            return Err(
                format!("hub refused {:?}: {:?}", info.wire_format, response.status).into(),
            );
        }
        if view.message.as_slice() != message {
            return Err("the hub recovered other bytes".into());
        }
        self.report
            .sealed
            .push((self.report.envelopes.len(), message.to_vec()));
        self.report.envelopes.push(sealed.bytes);
        self.report.hub_views.push(view.clone());
        Ok(view)
    }

    /// Fans an accepted room message out to every follower's queue and
    /// records who must get it.
    pub fn fan_out(
        &mut self,
        what: &str,
        message: &[u8],
        recipients: Vec<&'static str>,
    ) -> Result<(), Failure> {
        let info = MessageInfo::parse(message)?;
        let group_id = info.group_id.ok_or("not a room message")?;
        let epoch = info.epoch.ok_or("not a room message")?;
        let fans = self
            .hub
            .fan_out(group_id, epoch, message, PROVIDERS.len())?;
        for (queue, fan) in self.queues.iter_mut().zip(fans) {
            self.report.fanouts.push((message.to_vec(), fan.clone()));
            queue.push_back(fan);
        }
        self.report.sent.push(Sent {
            what: what.to_string(),
            message: message.to_vec(),
            recipients,
        });
        Ok(())
    }

    /// Each provider hands every fan-out message in its queue to each of
    /// its clients, which open and process it.
    pub fn deliver(&mut self, parties: &mut [&mut Party]) -> Result<(), Failure> {
        for (p, queue) in self.queues.iter_mut().enumerate() {
            while let Some(fan) = queue.pop_front() {
                for party in parties.iter_mut().filter(|x| x.provider_index == p) {
                    let events = party.member.receive(&party.provider, &fan);
                    for event in events {
                        party.record(event?);
                    }
                }
            }
        }
        Ok(())
    }
}

impl Party {
    /// The room messages delivered and what they were.
    fn record(&mut self, event: Event) {
        let (line, message) = match event {
            Event::Buffered => ("buffered a fan-out message".to_string(), None),
            Event::Application {
                epoch,
                sender_leaf,
                data,
                message,
                ..
            } => (
                format!(
                    "epoch {epoch}: leaf {sender_leaf} says {:?}",
                    String::from_utf8_lossy(&data)
                ),
                Some(message),
            ),
            Event::Proposal { epoch, message, .. } => {
                (format!("epoch {epoch}: a proposal, queued"), Some(message))
            }
            Event::Commit {
                new_epoch,
                own,
                message,
                ..
            } => (
                format!(
                    "{} commit merged: now in epoch {new_epoch}",
                    if own { "own" } else { "a" }
                ),
                Some(message),
            ),
            Event::Own { epoch, message, .. } => {
                (format!("epoch {epoch}: own message back"), Some(message))
            }
            Event::Removed { message, .. } => ("removed from the room".to_string(), Some(message)),
        };
        self.view.push(line);
        if let Some(m) = message {
            self.delivered.push(m);
        }
    }

    /// A KeyPackage that lists the room's capabilities.
    fn key_package(&self) -> Result<KeyPackage, Failure> {
        Ok(KeyPackage::builder()
            .leaf_node_capabilities(room_capabilities())
            .build(SUITE, &self.provider, &self.signer, self.credential.clone())?
            .key_package()
            .clone())
    }

    fn group(&self, group_id: &[u8]) -> Result<&MlsGroup, Failure> {
        Ok(self.member.group(group_id).ok_or("not in the room")?)
    }

    /// Sends an application message to the room.
    fn say<S: HubStore>(
        &mut self,
        world: &mut World<S>,
        group_id: &[u8],
        text: &str,
    ) -> Result<Vec<u8>, Failure> {
        let group = self.member.group_mut(group_id).ok_or("not in the room")?;
        let out = group.create_message(&self.provider, &self.signer, text.as_bytes())?;
        let group = self.member.group(group_id).ok_or("not in the room")?;
        let sealed = self
            .client
            .seal_application(group, self.provider.crypto(), &out)?;
        let bytes = sealed.message.clone();
        world.send(self, sealed)?;
        Ok(bytes)
    }
}

/// The names of the members of a group, by their credential.
fn members(group: &MlsGroup) -> Vec<&'static str> {
    let mut names = Vec::new();
    for m in group.members() {
        let id = BasicCredential::try_from(m.credential)
            .map(|c| c.identity().to_vec())
            .unwrap_or_default();
        for name in ["alice", "bob", "carol"] {
            if id == name.as_bytes() {
                names.push(name);
            }
        }
    }
    names
}

/// A KeyPackage as the hub recovered it, validated by the receiving
/// client's openmls.
fn key_package_in(bytes: &[u8], party: &Party) -> Result<KeyPackage, Failure> {
    let MlsMessageBodyIn::KeyPackage(kp) =
        MlsMessageIn::tls_deserialize_exact_bytes(bytes)?.extract()
    else {
        return Err("not a KeyPackage".into());
    };
    let kp: KeyPackageIn = kp;
    Ok(kp.validate(party.provider.crypto(), ProtocolVersion::Mls10)?)
}

/// The whole example over the in-memory store. `print`: print each
/// party's view.
pub fn run(print: bool) -> Result<Report, Failure> {
    run_with(World::new()?, print)
}

/// The whole example with hub H's state in `world`'s store.
pub fn run_with<S: HubStore>(mut world: World<S>, print: bool) -> Result<Report, Failure> {
    let hub_key = world.signing_key.clone();
    let mut alice = world.party("alice", 0, &hub_key)?;
    // Bob's and Carol's invitations name the room's hub and its signing
    // key; each verifies the hub's configuration under it, and checks the
    // room's component once it joined.
    let mut bob = world.party("bob", 1, &hub_key)?;
    let mut carol = world.party("carol", 1, &hub_key)?;

    // --- Alice creates the room and registers it (GroupInfo, tree, F). ---
    let group = MlsGroup::new_with_group_id(
        &alice.provider,
        &alice.signer,
        &room_create_config(SUITE, &hub_key)?,
        GroupId::from_slice(b"mimi-onion openmls example room"),
        alice.credential.clone(),
    )?;
    let group_id = group.group_id().as_slice().to_vec();
    world.report.group_id = group_id.clone();
    let sealed = alice
        .client
        .seal_registration(&group, alice.provider.crypto(), &alice.signer)?;
    world.send(&mut alice, sealed)?;
    for e in alice.member.add_group(&alice.provider, group)? {
        alice.record(e?);
    }

    // --- Bob and Carol send KeyPackages through the hub to Alice. -------
    let mut key_packages = Vec::new();
    for p in [&mut bob, &mut carol] {
        let kp = MlsMessageOut::from(p.key_package()?);
        let sealed = p.client.seal_key_package(&kp)?;
        let view = world.send(p, sealed)?;
        key_packages.push(key_package_in(view.message.as_slice(), &alice)?);
    }

    // --- Alice adds them: the commit (F of epoch 1, signed) and Welcome. --
    let group = alice.member.group_mut(&group_id).ok_or("no room")?;
    let (commit, welcome, _) = group.add_members(&alice.provider, &alice.signer, &key_packages)?;
    let group = alice.member.group(&group_id).ok_or("no room")?;
    let recipients = members(group);
    let sealed =
        alice
            .client
            .seal_commit(group, alice.provider.crypto(), &alice.signer, &commit)?;
    let commit = sealed.message.clone();
    world.send(&mut alice, sealed)?;
    world.fan_out("alice's commit adding bob and carol", &commit, recipients)?;
    world.deliver(&mut [&mut alice, &mut bob, &mut carol])?;
    // Alice writes in epoch 1 at once; provider B holds it for Bob and
    // Carol before their Welcome is processed: it waits in their buffers
    // (MEM-6) and the rescan at the join delivers it.
    let recipients = members(alice.group(&group_id)?);
    let early = alice.say(&mut world, &group_id, "welcome, both")?;
    world.fan_out("alice: welcome, both", &early, recipients)?;
    world.deliver(&mut [&mut alice, &mut bob, &mut carol])?;
    let sealed = alice.client.seal_welcome(&welcome)?;
    let view = world.send(&mut alice, sealed)?;
    for p in [&mut bob, &mut carol] {
        // Provider B hands the Welcome the hub accepted to its clients.
        let (gid, rescanned) = p
            .member
            .join_from_welcome(&p.provider, view.message.as_slice())?;
        if gid != group_id || room_signing_key(p.group(&gid)?)? != hub_key {
            return Err("joined another room".into());
        }
        p.view.push(format!(
            "joined by Welcome, epoch {}",
            p.group(&gid)?.epoch().as_u64()
        ));
        for e in rescanned {
            p.record(e?);
        }
        // Tokens for the room come with responses; the first from the hub.
        p.client
            .sender_mut()
            .add_tokens(Some(&group_id), &world.hub.issue_tokens(Some(&group_id)));
    }
    alice
        .client
        .sender_mut()
        .add_tokens(Some(&group_id), &world.hub.issue_tokens(Some(&group_id)));

    // --- Messages both ways in epoch 1. ---------------------------------
    for (who, text) in [
        ("alice", "hello, Bob and Carol"),
        ("bob", "hello, Alice"),
        ("carol", "hi both"),
    ] {
        let p = match who {
            "alice" => &mut alice,
            "bob" => &mut bob,
            _ => &mut carol,
        };
        let recipients = members(p.group(&group_id)?);
        let m = p.say(&mut world, &group_id, text)?;
        world.fan_out(&format!("{who}: {text}"), &m, recipients)?;
        world.deliver(&mut [&mut alice, &mut bob, &mut carol])?;
    }

    // --- Bob proposes to remove Carol; Alice commits (epoch 1 -> 2). -----
    let group = bob.member.group_mut(&group_id).ok_or("no room")?;
    let (proposal, _) =
        group.propose_remove_member(&bob.provider, &bob.signer, LeafNodeIndex::new(2))?;
    let group = bob.member.group(&group_id).ok_or("no room")?;
    let recipients = members(group);
    let sealed = bob
        .client
        .seal_proposal(group, bob.provider.crypto(), &proposal)?;
    let proposal = sealed.message.clone();
    world.send(&mut bob, sealed)?;
    world.fan_out("bob's proposal to remove carol", &proposal, recipients)?;
    world.deliver(&mut [&mut alice, &mut bob, &mut carol])?;

    let group = alice.member.group_mut(&group_id).ok_or("no room")?;
    let (commit, _, _) = group.commit_to_pending_proposals(&alice.provider, &alice.signer)?;
    let group = alice.member.group(&group_id).ok_or("no room")?;
    let recipients = members(group);
    let sealed =
        alice
            .client
            .seal_commit(group, alice.provider.crypto(), &alice.signer, &commit)?;
    let commit = sealed.message.clone();
    world.send(&mut alice, sealed)?;
    world.fan_out("alice's commit removing carol", &commit, recipients)?;
    world.deliver(&mut [&mut alice, &mut bob, &mut carol])?;

    // --- Epoch 2: Alice and Bob. -----------------------------------------
    for (who, text) in [("bob", "just us now"), ("alice", "yes, in epoch 2")] {
        let p = if who == "alice" { &mut alice } else { &mut bob };
        let recipients = members(p.group(&group_id)?);
        let m = p.say(&mut world, &group_id, text)?;
        world.fan_out(&format!("{who}: {text}"), &m, recipients)?;
        world.deliver(&mut [&mut alice, &mut bob, &mut carol])?;
    }

    if print {
        for p in [&alice, &bob, &carol] {
            println!("{} (provider {}):", p.name, PROVIDERS[p.provider_index]);
            for line in &p.view {
                println!("  {line}");
            }
        }
        println!(
            "hub H: {} envelopes accepted, {} fan-out messages; the policy engine read {} key layers",
            world.report.envelopes.len(),
            world.report.fanouts.len(),
            world.hub.policy().audit().len()
        );
    }
    let mut report = world.report;
    report.parties = vec![alice, bob, carol];
    Ok(report)
}

#[allow(dead_code)]
fn main() -> Result<(), Failure> {
    run(true).map(|_| ())
}
