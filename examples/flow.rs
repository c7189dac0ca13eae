//! The whole mimi-onion flow on the crate's public API, party by party:
//! a hub with its keys and load balancer, a client that verifies the hub's
//! configuration through the group, a registration, an application
//! message, a proposal and a commit, fan-out to the followers and a member
//! who opens what they carry.
//!
//! The MLS side (the group, its GroupInfo, the protected PrivateMessages)
//! comes from `test_utils::room::Room`, a two-member group built from the
//! official RFC 9420 vectors with real signatures; it stands in for an MLS
//! stack. Everything else is what an application would write.
//!
//! Run: `cargo run --example flow --features test-utils`

use ed25519_dalek::SigningKey;
use mimi_onion::balancer::{LoadBalancer, Route};
use mimi_onion::config::{
    find_app_data_dictionary, HubConfigStore, HubSigningKey, KeyUse, SignedHubConfiguration,
};
use mimi_onion::hub::HubFrontEnd;
use mimi_onion::keylayer;
use mimi_onion::keys::HubKeyPair;
use mimi_onion::member::{Delivery, Member};
use mimi_onion::mls::message::ContentType;
use mimi_onion::response::Status;
use mimi_onion::sender::{SealOptions, Sender};
use mimi_onion::state::InMemoryHubStore;
use mimi_onion::suite::HpkeSuite;
use mimi_onion::test_utils::room::Room;
use mimi_onion::token::{TokenKey, TokenKeys};
use mimi_onion::Res;
use rand::RngExt as _;

/// Shards of this hub; shard 0 answers messages that name no group.
const SHARDS: u32 = 16;
/// Follower providers the room fans out to.
const FOLLOWERS: usize = 2;

fn main() -> Res<()> {
    // The caller owns the clock: the hub and the client judge key expiry
    // against the `now` they are given.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let not_after = now + 30 * 24 * 3600;
    let mut rng = rand::rng();

    // --- The hub operator: HPKE keys, token keys, signing key. ----------
    let hub_key = HubKeyPair::derive(
        1,
        KeyUse::Hub,
        &[HpkeSuite::X25519Aes128Gcm],
        &rng.random::<[u8; 32]>(),
        not_after,
    )?;
    let policy_key = HubKeyPair::derive(
        1,
        KeyUse::Policy,
        &[HpkeSuite::X25519Aes128Gcm],
        &rng.random::<[u8; 32]>(),
        not_after,
    )?;
    // The token key is shared with the load balancers only.
    let tokens = TokenKeys::new(vec![TokenKey::new(0, rng.random(), not_after)?])?;
    let balancer = LoadBalancer::new(tokens.clone(), SHARDS);
    let mut hub = HubFrontEnd::new(
        vec![hub_key, policy_key],
        tokens,
        SHARDS,
        0,
        InMemoryHubStore::new(),
    )?;
    let signing_key = SigningKey::from_bytes(&rng.random());
    let component = HubSigningKey::ed25519(&signing_key.verifying_key());
    hub.set_signing_key(component.clone());
    // What the hub serves to clients (through their providers).
    let served = hub.configuration(1).sign(&signing_key)?.to_bytes()?;

    // --- The room, made by Alice's MLS stack. -----------------------------
    // Its GroupContext carries the hub's signing key, which is how clients
    // know which configuration to trust.
    let mut room = Room::with_group_id(1, &component, Some(b"example room".to_vec()))?;

    // --- Alice's client: verify the configuration through the group. -----
    let context = &room.epoch(0)?.context;
    let dictionary = find_app_data_dictionary(&context.extensions)
        .ok_or(mimi_onion::Error::Config("no hub component in the group"))?;
    let trusted = HubSigningKey::from_app_data_dictionary(dictionary)?;
    let mut store = HubConfigStore::new();
    let verified = store
        .accept(&SignedHubConfiguration::from_bytes(&served)?, &trusted, now)?
        .clone();
    let policy_config = verified
        .current(KeyUse::Policy)
        .ok_or(mimi_onion::Error::Config("no policy key"))?
        .clone();
    let mut alice = Sender::new(verified);
    // Tokens for messages that name no group yet (here: the registration).
    alice.add_tokens(None, &hub.issue_tokens(None));

    // --- 1. Registration: the GroupInfo and F of epoch 0. -----------------
    let group_info = room.group_info(0)?;
    let sealed = alice.seal(
        &group_info,
        SealOptions {
            fanout_key: Some(room.epoch(0)?.f.clone()),
            ..SealOptions::default()
        },
    )?;
    let route = balancer.route(&sealed.bytes);
    let outcome = hub.handle(&sealed.bytes, now);
    let response = alice.open_response(&sealed.pending, &outcome.response)?;
    println!(
        "registration: {} bytes, load balancer {}, hub {:?}",
        sealed.bytes.len(),
        route_name(route),
        response.status
    );
    // Alice got fresh tokens for the lobby; tokens for the new group come
    // with her next envelopes' responses (here, from the hub directly, as
    // when a client joins).
    alice.add_tokens(
        Some(&room.group_id),
        &hub.issue_tokens(Some(&room.group_id)),
    );

    // Bob, a member at another provider, holds epoch 0.
    let mut bob = Member::default();
    bob.enter_epoch(room.suite, room.member_state(0)?);

    // --- 2. to 4. An application message, a proposal, a commit. ----------
    for (epoch, content_type, text) in [
        (0, ContentType::Application, "hello, Bob"),
        (0, ContentType::Proposal, ""),
        (0, ContentType::Commit, ""),
        (1, ContentType::Application, "hello in epoch 1"),
    ] {
        // The MLS stack protects the message; for a proposal or commit the
        // hook also gives the key layer's content (key, nonce, leaf).
        let protected = room.protect(epoch, content_type, text.as_bytes())?;
        let key_layer = match &protected.key_layer {
            Some(content) => Some(keylayer::seal(
                &policy_config,
                HpkeSuite::MANDATORY,
                room.suite.code(),
                &protected.message,
                content,
            )?),
            None => None,
        };
        // A commit carries F of the epoch it opens.
        let fanout_key = match content_type {
            ContentType::Commit => Some(room.epoch(epoch + 1)?.f.clone()),
            _ => None,
        };
        let membership = room.membership_keys(epoch)?;
        let sealed = alice.seal(
            &protected.message,
            SealOptions {
                key_layer: key_layer.as_deref(),
                fanout_key,
                membership: Some(&membership),
                fanout_key_signature: None,
            },
        )?;

        // The sender's provider forwards the bytes; the load balancer reads
        // the token; the front-end (and, for handshakes, the policy engine)
        // judges and answers.
        let route = balancer.route(&sealed.bytes);
        let outcome = hub.handle(&sealed.bytes, now);
        let response = alice.open_response(&sealed.pending, &outcome.response)?;
        let view = outcome.view.as_ref().expect("the hub opened it");
        println!(
            "{} in epoch {epoch}: {} bytes, load balancer {}, front-end saw {:?} \
             (key layer {} bytes), hub {:?}",
            content_type.name(),
            sealed.bytes.len(),
            route_name(route),
            view.content_type.map(ContentType::name),
            view.key_layer_len,
            response.status
        );
        assert_eq!(response.status, Status::Accepted);

        // Fan-out: one message per follower, each under F of the epoch.
        let fanouts = hub.fan_out(&room.group_id, epoch, &protected.message, FOLLOWERS)?;
        // Bob's provider hands him its copy; he finds the group by its
        // hint, checks, opens and verifies.
        match bob.receive(&fanouts[0]) {
            Ok(Delivery::Delivered(received)) => {
                assert_eq!(received.message, protected.message);
                println!(
                    "  Bob: {} from leaf {}: {} bytes",
                    received.content_type.name(),
                    received.sender_leaf,
                    received.content.len()
                );
            }
            other => panic!("Bob could not read it: {other:?}"),
        }
        if content_type == ContentType::Commit {
            // The commit opened epoch 1 at the hub; Bob's MLS stack moves too.
            bob.enter_epoch(room.suite, room.member_state(1)?);
        }
    }
    println!(
        "policy engine read {} handshake messages; the front-end never saw their keys",
        hub.policy().audit().len()
    );
    Ok(())
}

fn route_name(route: Route) -> String {
    match route {
        Route::Shard(s) => format!("shard {s}"),
        Route::Unroutable => "unroutable".into(),
    }
}
