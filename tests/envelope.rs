//! Envelope core, end to end: sender, load balancer, hub front-end and the
//! response, on real envelopes. Each test names the spec requirement it
//! checks.

mod common;

use common::{private_message, seal, world};
use mimi_onion::balancer::Route;
use mimi_onion::mls::message::ContentType;
use mimi_onion::profile::HandshakeProfile;
use mimi_onion::response::{response_len, RejectReason, Status};
use mimi_onion::sender::SealOptions;
use mimi_onion::suite::HpkeSuite;
use mimi_onion::test_utils::NOW;
use mimi_onion::test_utils::{self, DemoWorld};
use mimi_onion::token::UNROUTABLE_CODEPOINT;
use mimi_onion::wire::{Envelope, HEADER_LEN};
use mimi_onion::Error;

const GROUP: &[u8] = b"0123456789abcdef0123456789abcdef";

fn provisioned(group: &[u8], epoch: u64) -> (DemoWorld, mimi_onion::sender::Sender) {
    let (mut world, mut client) = world();
    common::provision(&mut world, &mut client, group, epoch);
    (world, client)
}

/// Round trip for every HPKE suite, application data from 0 B to 1 MiB:
/// the hub recovers the message byte for byte and the sender opens an
/// "accepted" response.
#[test]
fn round_trip_every_suite_and_size() {
    for suite in HpkeSuite::ALL {
        let (mut world, mut client) = provisioned(GROUP, 7);
        for app_len in [0usize, 1, 100, 1000, 65_536, 1 << 20] {
            let msg = private_message(GROUP, 7, ContentType::Application, app_len);
            let sealed = seal(&world, &mut client, &msg, ContentType::Application, suite);
            let out = world.hub.handle(&sealed.bytes, NOW);
            let view = out.view.expect("hub opens the envelope");
            assert_eq!(view.message, msg, "{suite:?} {app_len}");
            assert_eq!(view.suite, suite);
            assert_eq!(out.response.len(), response_len(suite));
            let resp = client
                .open_response(&sealed.pending, &out.response)
                .unwrap();
            assert_eq!(resp.status, Status::Accepted);
        }
    }
}

/// The demo's real RFC 9420 messages (every wire format) through all layers.
#[test]
fn demo_messages_round_trip() {
    let records = test_utils::run(NOW).unwrap();
    assert_eq!(records.len(), 10);
    for rec in records {
        let view = rec.outcome.view.expect("opened");
        assert_eq!(view.message, rec.message, "{}", rec.name);
        let expected = match rec.name.as_str() {
            "group_info" => Status::Rejected(RejectReason::RegistrationRefused),
            _ => Status::Accepted,
        };
        assert_eq!(rec.status, expected, "{}", rec.name);
        assert!(matches!(rec.route, Route::Shard(_)), "{}", rec.name);
    }
}

/// OUT-1, OUT-2, OUT-3, OUT-4, RSP-2: every proper prefix and every single-bit flip of a
/// valid envelope is rejected, never a panic, and answered with random
/// bytes of the response size.
#[test]
fn every_prefix_and_bit_flip_is_rejected() {
    let (world, mut client) = provisioned(GROUP, 1);
    let msg = private_message(GROUP, 1, ContentType::Application, 0);
    let sealed = seal(
        &world,
        &mut client,
        &msg,
        ContentType::Application,
        HpkeSuite::MANDATORY,
    );
    let env = sealed.bytes;
    // A hub that never saw the valid envelope, so nothing is answered from
    // its cache: every variant below is opened from scratch.
    let (mut hub_world, _) = provisioned(GROUP, 1);
    let expected_len = response_len(HpkeSuite::MANDATORY);
    for n in 0..env.len() {
        assert!(Envelope::parse(&env[..n]).is_err(), "prefix {n} parses");
        let out = hub_world.hub.handle(&env[..n], NOW);
        assert!(out.view.is_none(), "prefix {n} opened");
        assert_eq!(out.response.len(), expected_len);
    }
    let mut flipped = env.clone();
    for byte in 0..env.len() {
        for bit in 0..8 {
            flipped[byte] ^= 1 << bit;
            let out = hub_world.hub.handle(&flipped, NOW);
            assert!(out.view.is_none(), "flip {byte}.{bit} opened");
            assert!(!out.from_cache);
            // A flip in the AEAD id of the header makes it name another
            // supported suite or none; the answer has that suite's size.
            assert!(out.response.len() == expected_len || (19..HEADER_LEN).contains(&byte));
            flipped[byte] ^= 1 << bit;
        }
    }
    // And the untouched envelope opens on that hub.
    assert!(hub_world.hub.handle(&env, NOW).view.is_some());
}

/// OUT-4: the token and the key id are bound to the hub layer. Swapping
/// either between two envelopes makes the hub reject both.
#[test]
fn swapping_token_or_key_id_is_rejected() {
    let (mut world, mut client) = provisioned(GROUP, 1);
    let m1 = private_message(GROUP, 1, ContentType::Application, 10);
    let m2 = private_message(GROUP, 1, ContentType::Application, 10);
    let a = seal(
        &world,
        &mut client,
        &m1,
        ContentType::Application,
        HpkeSuite::MANDATORY,
    )
    .bytes;
    let b = seal(
        &world,
        &mut client,
        &m2,
        ContentType::Application,
        HpkeSuite::MANDATORY,
    )
    .bytes;
    let mut a2 = a.clone();
    let mut b2 = b.clone();
    a2[1..18].copy_from_slice(&b[1..18]);
    b2[1..18].copy_from_slice(&a[1..18]);
    assert!(world.hub.handle(&a2, NOW).view.is_none());
    assert!(world.hub.handle(&b2, NOW).view.is_none());
    // Key id: envelopes to hub key 1 (X25519) relabelled as key 2 and back.
    let c = seal(
        &world,
        &mut client,
        &m1,
        ContentType::Application,
        HpkeSuite::MANDATORY,
    )
    .bytes;
    let mut c2 = c.clone();
    c2[18] = 2;
    assert!(world.hub.handle(&c2, NOW).view.is_none());
    // The originals still open: nothing was spent by the rejected copies.
    assert!(world.hub.handle(&a, NOW).view.is_some());
    assert!(world.hub.handle(&b, NOW).view.is_some());
}

/// Contract, sender's provider and load balancer: the outer bytes carry no
/// encoding of group_id or epoch; the token yields the shard and nothing
/// else; the hub front-end recovers the message exactly.
#[test]
fn contract_rows_provider_balancer_front_end() {
    let epoch: u64 = 0x0102_0304_0506_0708;
    let (mut world, mut client) = provisioned(GROUP, epoch);
    let shard = world.hub.group(GROUP).unwrap().unwrap().shard;
    for ct in [
        ContentType::Application,
        ContentType::Proposal,
        ContentType::Commit,
    ] {
        let msg = private_message(GROUP, epoch, ct, 50);
        let sealed = seal(&world, &mut client, &msg, ct, HpkeSuite::MANDATORY);
        let env = &sealed.bytes;
        for needle in [
            GROUP,
            &epoch.to_be_bytes(),
            &epoch.to_le_bytes(),
            &GROUP[..8],
        ] {
            assert!(
                !contains(env, needle),
                "{ct:?}: outer bytes contain {needle:02x?}"
            );
        }
        // The balancer learns the shard and only the shard.
        assert_eq!(world.balancer.route(env), Route::Shard(shard));
        let out = world.hub.handle(env, NOW);
        let view = out.view.unwrap();
        assert_eq!(view.message, msg);
        assert_eq!(view.group_id.as_deref(), Some(GROUP));
        assert_eq!(view.epoch, Some(epoch));
        assert_eq!(view.content_type, Some(ct));
        let resp = client
            .open_response(&sealed.pending, &out.response)
            .unwrap();
        // These synthetic handshake messages carry a well-formed key layer
        // over keys that decrypt nothing: the policy engine refuses them
        // (tests/handshake.rs covers real ones).
        let expected = match ct {
            ContentType::Application => Status::Accepted,
            _ => Status::Rejected(RejectReason::PolicyRejected),
        };
        assert_eq!(resp.status, expected, "{ct:?}");
    }
}

/// Tokens for one shard share nothing but what the balancer decodes from
/// them: two tokens of the same group differ in every position that is not
/// the config byte's codepoint with overwhelming probability, and decode to
/// the same shard with different nonces.
#[test]
fn tokens_are_unlinkable_beyond_the_shard() {
    let (world, _) = provisioned(GROUP, 1);
    let tokens = world.hub.issue_tokens(Some(GROUP));
    let keys = mimi_onion::token::TokenKeys::new(vec![]).unwrap();
    assert!(keys.decode(&tokens[0].0).is_none());
    for (i, a) in tokens.iter().enumerate() {
        for b in &tokens[i + 1..] {
            assert_ne!(a.0[1..], b.0[1..]);
            let equal = a.0[1..]
                .iter()
                .zip(&b.0[1..])
                .filter(|(x, y)| x == y)
                .count();
            assert!(equal < 8, "tokens share {equal} of 16 block bytes");
        }
    }
}

/// View equality: envelopes for different groups, group_id lengths,
/// epochs and types, whose MLS messages have equal length, have equal
/// length and differ only in fresh random fields (token block, enc,
/// ciphertext).
#[test]
fn view_equality() {
    let (mut world, mut client) = world();
    let groups: [&[u8]; 3] = [b"g", b"a somewhat longer group id", &[7u8; 64]];
    let mut envelopes = Vec::new();
    let target_len = 400;
    for (gi, g) in groups.iter().enumerate() {
        let epoch = [0u64, 1 << 40, 99][gi];
        common::provision(&mut world, &mut client, g, epoch);
        for ct in [
            ContentType::Application,
            ContentType::Proposal,
            ContentType::Commit,
        ] {
            // Pick the application length so the message has target_len bytes.
            let msg = (0..target_len)
                .map(|n| private_message(g, epoch, ct, n))
                .find(|m| m.len() == target_len)
                .unwrap();
            let env = seal(&world, &mut client, &msg, ct, HpkeSuite::MANDATORY).bytes;
            envelopes.push(env);
        }
    }
    let first = &envelopes[0];
    for env in &envelopes {
        assert_eq!(env.len(), first.len());
        assert_eq!(env[0], first[0], "version");
        assert_eq!(
            env[18..HEADER_LEN],
            first[18..HEADER_LEN],
            "key id and suite"
        );
        let n_enc = HpkeSuite::MANDATORY.n_enc();
        assert_eq!(
            env[HEADER_LEN + n_enc..HEADER_LEN + n_enc + 2],
            first[HEADER_LEN + n_enc..HEADER_LEN + n_enc + 2],
            "length prefix"
        );
        // Token codepoint is the hub's current one for every routable token.
        assert_eq!(env[1] >> 5, first[1] >> 5);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// CFG-1: a configuration not signed by the key in the group's component
/// is refused, so a provider cannot substitute its own hub key; ERR-1: the
/// refusal is the one cryptographic error, whatever was wrong.
#[test]
fn configuration_not_signed_by_group_key_is_refused() {
    let world = DemoWorld::new().unwrap();
    let mut forged = world.signed_config.clone();
    forged.configuration.serial += 1;
    let component =
        mimi_onion::config::HubSigningKey::from_app_data_dictionary(&world.app_data_dictionary)
            .unwrap();
    assert_eq!(forged.verify(&component, NOW), Err(Error::Crypto));
    let provider_key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let substituted = world.hub.configuration(2).sign(&provider_key).unwrap();
    assert_eq!(substituted.verify(&component, NOW), Err(Error::Crypto));
    assert!(world.signed_config.verify(&component, NOW).is_ok());
}

/// OUT-2 and CFG-2 by the caller's clock: at the demo keys' `not_after`
/// the hub opens nothing under them (an unopenable envelope's random
/// answer) and a client refuses the configuration; one second earlier both
/// work. Nothing reads the wall clock, so this holds on any day.
#[test]
fn expired_keys_open_nothing_at_the_callers_time() {
    use mimi_onion::test_utils::NOT_AFTER;
    let (mut world, mut alice) = provisioned(GROUP, 1);
    let msg = common::private_message(GROUP, 1, ContentType::Application, 64);
    let keys = common::keys_of(GROUP, 1);
    let late = alice
        .seal(
            &msg,
            SealOptions {
                membership: Some(&keys),
                ..Default::default()
            },
        )
        .unwrap();
    let out = world.hub.handle(&late.bytes, NOT_AFTER);
    assert!(out.view.is_none());
    assert_eq!(out.response.len(), response_len(HpkeSuite::MANDATORY));
    assert!(alice.open_response(&late.pending, &out.response).is_err());
    let in_time = alice
        .seal(
            &msg,
            SealOptions {
                membership: Some(&keys),
                ..Default::default()
            },
        )
        .unwrap();
    let out = world.hub.handle(&in_time.bytes, NOT_AFTER - 1);
    assert_eq!(out.view.unwrap().status, Status::Accepted);
    let component =
        mimi_onion::config::HubSigningKey::from_app_data_dictionary(&world.app_data_dictionary)
            .unwrap();
    assert_eq!(
        world.signed_config.verify(&component, NOT_AFTER),
        Err(Error::Config("key expired"))
    );
    assert!(world
        .signed_config
        .verify(&component, NOT_AFTER - 1)
        .is_ok());
}

/// RSP-3: a response opens only for the sender of that envelope.
#[test]
fn response_opens_only_for_its_sender() {
    let (mut world, mut alice) = provisioned(GROUP, 1);
    let mut bob = world.client().unwrap();
    bob.add_tokens(Some(GROUP), &world.hub.issue_tokens(Some(GROUP)));
    let m = private_message(GROUP, 1, ContentType::Application, 5);
    let a = seal(
        &world,
        &mut alice,
        &m,
        ContentType::Application,
        HpkeSuite::MANDATORY,
    );
    let b = seal(
        &world,
        &mut bob,
        &m,
        ContentType::Application,
        HpkeSuite::MANDATORY,
    );
    let ra = world.hub.handle(&a.bytes, NOW).response;
    let rb = world.hub.handle(&b.bytes, NOW).response;
    assert_eq!(bob.open_response(&b.pending, &ra), Err(Error::Crypto));
    assert_eq!(alice.open_response(&a.pending, &rb), Err(Error::Crypto));
    assert!(alice.open_response(&a.pending, &ra).is_ok());
    assert!(bob.open_response(&b.pending, &rb).is_ok());
}

/// RSP-1, RSP-2: an envelope the hub cannot open gets a response of the
/// same size as a real one, which opens for nobody.
#[test]
fn unopenable_envelope_gets_same_size_response() {
    let (mut world, mut client) = provisioned(GROUP, 1);
    let m = private_message(GROUP, 1, ContentType::Application, 5);
    for suite in HpkeSuite::ALL {
        let s = seal(&world, &mut client, &m, ContentType::Application, suite);
        let mut bad = s.bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let out = world.hub.handle(&bad, NOW);
        assert!(out.view.is_none());
        assert_eq!(out.response.len(), response_len(suite));
        assert_eq!(
            client.open_response(&s.pending, &out.response),
            Err(Error::Crypto)
        );
        let good = world.hub.handle(&s.bytes, NOW);
        assert_eq!(good.response.len(), out.response.len());
    }
    assert_eq!(
        world.hub.handle(b"", NOW).response.len(),
        response_len(HpkeSuite::MANDATORY)
    );
}

/// CFG-5: a client seals every envelope to a hub with one hub key and one
/// suite, whatever the room or message type: the demo's whole run (the
/// official messages of three MLS suites, a registration, three rooms with
/// handshakes) shows a single key id and suite in the clear. A client that
/// implements only some suites gets the newest key offering one of them,
/// and none if no key does.
#[test]
fn cfg5_one_key_and_suite_per_hub() {
    let records = test_utils::run(NOW).unwrap();
    let headers: std::collections::HashSet<(u8, HpkeSuite)> = records
        .iter()
        .map(|r| {
            let h = Envelope::parse(&r.envelope).unwrap().header;
            (h.key_id, h.suite)
        })
        .collect();
    assert_eq!(headers.len(), 1, "{headers:?}");
    assert_eq!(headers.into_iter().next().unwrap().1, HpkeSuite::MANDATORY);

    let (world, client) = world();
    let config = client.configuration().clone();
    assert_eq!(client.suite(), Some(HpkeSuite::MANDATORY));
    for (suites, want) in [
        (
            &[HpkeSuite::X25519ChaCha20Poly1305][..],
            HpkeSuite::X25519ChaCha20Poly1305,
        ),
        (&[HpkeSuite::P256Aes128Gcm][..], HpkeSuite::P256Aes128Gcm),
        (
            &[HpkeSuite::P256Aes128Gcm, HpkeSuite::X25519Aes128Gcm][..],
            HpkeSuite::X25519Aes128Gcm,
        ),
    ] {
        let s = mimi_onion::sender::Sender::with_suites(config.clone(), suites).unwrap();
        assert_eq!(s.suite(), Some(want), "{suites:?}");
    }
    assert!(mimi_onion::sender::Sender::with_suites(config, &[]).is_err());
    drop(world);
}

/// RSP-6: every envelope costs the hub exactly one HPKE decapsulation,
/// whether it opens, fails to open, names an unknown key id, does not
/// decode at all, or is an identical resend; and the refused ones change
/// nothing in the hub's state.
#[test]
fn rsp6_every_envelope_costs_one_decapsulation() {
    let (mut world, mut client) = provisioned(GROUP, 1);
    let m = private_message(GROUP, 1, ContentType::Application, 5);
    let s = seal(
        &world,
        &mut client,
        &m,
        ContentType::Application,
        HpkeSuite::MANDATORY,
    );
    let mut bad_tag = s.bytes.clone();
    let last = bad_tag.len() - 1;
    bad_tag[last] ^= 1;
    let mut unknown_key = s.bytes.clone();
    unknown_key[mimi_onion::wire::KEY_ID_OFFSET] ^= 0x40;
    let garbage = vec![0x5a; s.bytes.len()];
    let before = world.hub.counts().unwrap();
    for (name, env) in [
        ("bad tag", &bad_tag[..]),
        ("unknown key id", &unknown_key[..]),
        ("does not decode", &garbage[..]),
        ("empty", &[][..]),
        ("truncated header", &s.bytes[..HEADER_LEN - 1]),
    ] {
        let n = world.hub.decapsulations();
        let out = world.hub.handle(env, NOW);
        assert!(out.view.is_none(), "{name}");
        assert_eq!(world.hub.decapsulations(), n + 1, "{name}");
    }
    assert_eq!(
        world.hub.counts().unwrap(),
        before,
        "refused envelopes change nothing"
    );
    for name in ["fresh", "identical resend"] {
        let n = world.hub.decapsulations();
        world.hub.handle(&s.bytes, NOW);
        assert_eq!(world.hub.decapsulations(), n + 1, "{name}");
    }
}

/// HUB-5, RSP-4: an identical resend gets the cached response byte for
/// byte; a different envelope reusing the enc gets random bytes.
#[test]
fn identical_resend_gets_cached_response() {
    let (mut world, mut client) = provisioned(GROUP, 1);
    let m = private_message(GROUP, 1, ContentType::Application, 5);
    let s = seal(
        &world,
        &mut client,
        &m,
        ContentType::Application,
        HpkeSuite::MANDATORY,
    );
    let first = world.hub.handle(&s.bytes, NOW);
    let second = world.hub.handle(&s.bytes, NOW);
    assert!(!first.from_cache);
    assert!(second.from_cache);
    assert_eq!(first.response, second.response);
    let r = client.open_response(&s.pending, &second.response).unwrap();
    assert_eq!(r.status, Status::Accepted);
    // The same enc under another header: not a resend; it does not open,
    // and gets random bytes.
    let mut other = s.bytes.clone();
    other[5] ^= 1;
    let out = world.hub.handle(&other, NOW);
    assert!(!out.from_cache && out.view.is_none());
    assert_ne!(out.response, first.response);
    // A body byte changed under the same tag does not open (HUB-5: the hub
    // opens before it looks the `enc` up): random bytes, nothing processed,
    // and the genuine resend still gets the recorded response.
    let mut body = s.bytes.clone();
    let mid = body.len() - 40;
    body[mid] ^= 1;
    let out = world.hub.handle(&body, NOW);
    assert!(!out.from_cache && out.view.is_none());
    assert_ne!(out.response, first.response);
    assert_eq!(world.hub.handle(&s.bytes, NOW).response, first.response);
}

/// TOK-5, TOK-6: a sender spends each token once and falls back to the
/// unroutable codepoint; a spent token on a new envelope is rejected.
#[test]
fn no_token_is_spent_twice() {
    let (mut world, mut client) = provisioned(GROUP, 1);
    let m = private_message(GROUP, 1, ContentType::Application, 5);
    let mut seen = std::collections::HashSet::new();
    // Drain the pool without reading responses: four routable, then unroutable.
    for i in 0..6 {
        let s = seal(
            &world,
            &mut client,
            &m,
            ContentType::Application,
            HpkeSuite::MANDATORY,
        );
        let token: [u8; 17] = s.bytes[1..18].try_into().unwrap();
        assert!(seen.insert(token), "token reused");
        let cp = token[0] >> 5;
        assert_eq!(cp == UNROUTABLE_CODEPOINT, i >= 4, "envelope {i}");
        assert_eq!(world.balancer.route(&s.bytes) == Route::Unroutable, i >= 4);
        let out = world.hub.handle(&s.bytes, NOW);
        assert_eq!(out.view.unwrap().status, Status::Accepted);
    }
    // A client that pools the same token twice: the hub rejects the reuse.
    let tokens = world.hub.issue_tokens(Some(GROUP));
    let mut sloppy = world.client().unwrap();
    sloppy.add_tokens(Some(GROUP), &[tokens[0], tokens[0]]);
    let a = seal(
        &world,
        &mut sloppy,
        &m,
        ContentType::Application,
        HpkeSuite::MANDATORY,
    );
    let b = seal(
        &world,
        &mut sloppy,
        &m,
        ContentType::Application,
        HpkeSuite::MANDATORY,
    );
    assert_eq!(
        world.hub.handle(&a.bytes, NOW).view.unwrap().status,
        Status::Accepted
    );
    let out = world.hub.handle(&b.bytes, NOW);
    assert_eq!(
        out.view.unwrap().status,
        Status::Rejected(RejectReason::TokenReused)
    );
    let r = sloppy.open_response(&b.pending, &out.response).unwrap();
    assert_eq!(r.status, Status::Rejected(RejectReason::TokenReused));
}

/// HUB-1: a key layer or F where the message type forbids it, or missing
/// where it requires it, is refused by the sender and by the hub.
#[test]
fn presence_rules() {
    let (world, mut client) = provisioned(GROUP, 1);
    let commit = private_message(GROUP, 1, ContentType::Commit, 5);
    // No key layer, no F.
    assert!(matches!(
        client.seal(&commit, SealOptions::default()),
        Err(Error::Usage(_))
    ));
    let app = private_message(GROUP, 1, ContentType::Application, 5);
    let opts = SealOptions {
        key_layer: Some(&[1, 2, 3]),
        ..SealOptions::default()
    };
    assert!(matches!(client.seal(&app, opts), Err(Error::Usage(_))));
    drop(world);
}

/// HUB-4: handshake messages must be for the current epoch; application
/// messages for the current or previous one; an accepted commit opens the
/// next epoch; unknown groups are refused. Handshakes are signed
/// PublicMessages of a demo room (HUB-12 checks their signatures).
#[test]
fn epoch_rules() {
    let (mut world, mut client, mut room, _) = common::room_world_with(1, HandshakeProfile::Public);
    let stale = Status::Rejected(RejectReason::StaleEpoch);
    let mut send = |world: &mut DemoWorld,
                    room: &mut mimi_onion::test_utils::room::Room,
                    epoch: u64,
                    ct,
                    aad: &[u8]| {
        let p = match ct {
            ContentType::Application => room.protect(epoch, ct, b"app").unwrap(),
            _ => common::room_public(room, epoch, ct, aad),
        };
        let env = common::seal_room(
            world,
            &mut client,
            room,
            epoch,
            &p,
            HpkeSuite::MANDATORY,
            None,
            None,
        );
        world.hub.handle(&env.bytes, NOW).view.unwrap().status
    };
    assert_eq!(
        send(&mut world, &mut room, 1, ContentType::Application, b""),
        stale
    );
    assert_eq!(
        send(&mut world, &mut room, 1, ContentType::Proposal, b""),
        stale
    );
    assert_eq!(
        send(&mut world, &mut room, 0, ContentType::Commit, b""),
        Status::Accepted
    );
    test_utils::install_epoch(&mut world, &room, 1).unwrap();
    // The commit opened epoch 1; 0 is now the previous epoch.
    assert_eq!(
        send(&mut world, &mut room, 0, ContentType::Commit, b"another"),
        stale
    );
    assert_eq!(
        send(&mut world, &mut room, 0, ContentType::Proposal, b""),
        stale
    );
    assert_eq!(
        send(&mut world, &mut room, 0, ContentType::Application, b""),
        Status::Accepted
    );
    assert_eq!(
        send(&mut world, &mut room, 1, ContentType::Proposal, b""),
        Status::Accepted
    );
    let m = private_message(b"unknown group", 1, ContentType::Application, 5);
    let s = seal(
        &world,
        &mut client,
        &m,
        ContentType::Application,
        HpkeSuite::MANDATORY,
    );
    assert_eq!(
        world.hub.handle(&s.bytes, NOW).view.unwrap().status,
        Status::Rejected(RejectReason::UnknownGroup)
    );
}

/// HUB-7: a handshake message the hub already accepted, sealed again in a
/// new envelope, is rejected as replayed (before the epoch rule);
/// application messages are not subject to it.
#[test]
fn resealed_handshake_is_replayed() {
    let (mut world, mut client, mut room, _) = common::room_world_with(1, HandshakeProfile::Public);
    let replayed = Status::Rejected(RejectReason::ReplayedEnvelope);
    let mut send = |world: &mut DemoWorld,
                    room: &mimi_onion::test_utils::room::Room,
                    epoch: u64,
                    p: &mimi_onion::sender::ProtectedMessage| {
        let env = common::seal_room(
            world,
            &mut client,
            room,
            epoch,
            p,
            HpkeSuite::MANDATORY,
            None,
            None,
        );
        world.hub.handle(&env.bytes, NOW).view.unwrap().status
    };
    let proposal = common::room_public(&mut room, 0, ContentType::Proposal, b"");
    assert_eq!(send(&mut world, &room, 0, &proposal), Status::Accepted);
    assert_eq!(send(&mut world, &room, 0, &proposal), replayed);
    let commit = common::room_public(&mut room, 0, ContentType::Commit, b"");
    assert_eq!(send(&mut world, &room, 0, &commit), Status::Accepted);
    test_utils::install_epoch(&mut world, &room, 1).unwrap();
    // The commit opened epoch 1: resending it is a replay, not "stale".
    assert_eq!(send(&mut world, &room, 0, &commit), replayed);
    let app = room.protect(1, ContentType::Application, b"twice").unwrap();
    assert_eq!(send(&mut world, &room, 1, &app), Status::Accepted);
    assert_eq!(send(&mut world, &room, 1, &app), Status::Accepted);
}

/// HUB-12: a PublicMessage handshake whose signature does not verify, or
/// whose sender is not a member, is refused.
#[test]
fn public_handshakes_need_a_valid_member_signature() {
    let (mut world, mut client, mut room, _) = common::room_world_with(1, HandshakeProfile::Public);
    let good = common::room_public(&mut room, 0, ContentType::Proposal, b"");
    let mut forged = good.message.clone();
    // Inside the signature (the last 33 bytes are the membership tag,
    // which only members can check).
    let last = forged.len() - 40;
    forged[last] ^= 1;
    let forged = mimi_onion::sender::ProtectedMessage {
        message: forged,
        key_layer: None,
    };
    let env = common::seal_room(
        &world,
        &mut client,
        &room,
        0,
        &forged,
        HpkeSuite::MANDATORY,
        None,
        None,
    );
    assert_eq!(
        world.hub.handle(&env.bytes, NOW).view.unwrap().status,
        Status::Rejected(RejectReason::PolicyRejected)
    );
    let env = common::seal_room(
        &world,
        &mut client,
        &room,
        0,
        &good,
        HpkeSuite::MANDATORY,
        None,
        None,
    );
    assert_eq!(
        world.hub.handle(&env.bytes, NOW).view.unwrap().status,
        Status::Accepted
    );
}

/// HUB-3: a PublicMessage carrying application data is malformed.
#[test]
fn public_application_message_is_malformed() {
    let (mut world, mut client) = provisioned(GROUP, 3);
    let mut m = vec![0, 1, 0, 1];
    mimi_onion::codec::put_vec(&mut m, GROUP).unwrap();
    m.extend_from_slice(&3u64.to_be_bytes());
    m.extend_from_slice(&[1, 0, 0, 0, 0]); // sender: member, leaf 0
    m.push(0); // authenticated_data
    m.push(ContentType::Application.code());
    m.extend_from_slice(&[3, 1, 2, 3]);
    let keys = common::keys_of(GROUP, 3);
    let opts = SealOptions {
        membership: Some(&keys),
        ..SealOptions::default()
    };
    let s = client.seal(&m, opts).unwrap();
    let out = world.hub.handle(&s.bytes, NOW);
    let resp = client.open_response(&s.pending, &out.response).unwrap();
    assert_eq!(
        resp.status,
        Status::Rejected(RejectReason::MalformedMessage)
    );
}

/// OUT-5: a sealed hub layer longer than the largest padded message is
/// refused before any attempt to open it.
#[test]
fn oversized_sealed_layer_is_refused() {
    use mimi_onion::wire::{OuterHeader, MAX_SEALED_HUB_LAYER_LEN};
    let header = OuterHeader {
        token: mimi_onion::token::RoutingToken([0; 17]),
        key_id: 1,
        suite: HpkeSuite::MANDATORY,
    };
    let big = vec![0u8; MAX_SEALED_HUB_LAYER_LEN + 1];
    let env = Envelope::encode(&header, &[1; 32], &big).unwrap();
    assert!(matches!(Envelope::parse(&env), Err(Error::TooLarge(_))));
    let ok = Envelope::encode(&header, &[1; 32], &big[1..]).unwrap();
    assert!(Envelope::parse(&ok).is_ok());
}

/// HUB-11: a member-sent message whose membership proof does not verify
/// under the F pinned for its epoch is refused; the proof binds the
/// envelope's header and enc, so it cannot be lifted to another envelope.
#[test]
fn membership_proof_is_checked() {
    let (mut world, mut client) = provisioned(GROUP, 4);
    let m = private_message(GROUP, 4, ContentType::Application, 5);
    let failed = Status::Rejected(RejectReason::MembershipProofFailed);
    // A non-member: keys of another F.
    let outsider =
        mimi_onion::fanout::EpochKeys::derive(&mimi_onion::secret::Secret::from_slice(&[9; 32]), 4)
            .unwrap();
    let s = client
        .seal(
            &m,
            SealOptions {
                membership: Some(&outsider),
                ..SealOptions::default()
            },
        )
        .unwrap();
    assert_eq!(world.hub.handle(&s.bytes, NOW).view.unwrap().status, failed);
    // The keys of the previous epoch's F (never pinned here).
    let stale = common::keys_of(GROUP, 3);
    let s = client
        .seal(
            &m,
            SealOptions {
                membership: Some(&stale),
                ..SealOptions::default()
            },
        )
        .unwrap();
    assert_eq!(world.hub.handle(&s.bytes, NOW).view.unwrap().status, failed);
    // The right keys.
    let s = seal(
        &world,
        &mut client,
        &m,
        ContentType::Application,
        HpkeSuite::MANDATORY,
    );
    assert_eq!(
        world.hub.handle(&s.bytes, NOW).view.unwrap().status,
        Status::Accepted
    );
}
