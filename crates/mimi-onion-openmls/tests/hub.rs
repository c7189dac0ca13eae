//! The openmls-tracked hub (spec section "Group Tracking", TRK-1 to
//! TRK-5) on real openmls groups: every message is made by openmls
//! (`MlsGroup`, RustCrypto provider, basic credentials), sealed by the
//! core's `Sender` and judged by the core's `HubFrontEnd` with the
//! `PublicGroupTracker` installed.

use std::rc::Rc;

use mimi_onion::config::HubSigningKey;
use mimi_onion::fanout::{fanout_key_sign_content, EpochKeys};
use mimi_onion::hub::HubFrontEnd;
use mimi_onion::mls::group_info::{decode_ratchet_tree, tree_hash, GroupInfoIn, TreeNode};
use mimi_onion::mls::suite::MlsSuite;
use mimi_onion::profile::HandshakeProfile;
use mimi_onion::response::{RejectReason, Status};
use mimi_onion::secret::Secret;
use mimi_onion::sender::{SealOptions, Sender};
use mimi_onion::state::{HubStore, InMemoryHubStore};
use mimi_onion::test_utils::room::room_extensions;
use mimi_onion::test_utils::{DemoWorld, NOW};
use mimi_onion_openmls::hub::PublicGroupTracker;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::signatures::Signer as _;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
/// The GroupContext extension that holds the hub's component (RFC 9420
/// `app_data_dictionary`, see the core's `config` module).
const APP_DATA_DICTIONARY: u16 = 0x0006;
/// The exporter label of F (FAN-1).
const FANOUT_LABEL: &str = "mimi-onion v1 fanout key";

/// One openmls client: its provider, signature key pair and credential.
struct Party {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
}

fn party(name: &str) -> Party {
    let provider = OpenMlsRustCrypto::default();
    let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).expect("signature key");
    signer.store(provider.storage()).expect("store the key");
    let credential = CredentialWithKey {
        credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
        signature_key: signer.public().into(),
    };
    Party {
        provider,
        signer,
        credential,
    }
}

/// Leaf capabilities that list the `app_data_dictionary` extension
/// (RFC 9420 requires every member to support a GroupContext extension).
fn capabilities() -> Capabilities {
    Capabilities::new(
        None,
        None,
        Some(&[ExtensionType::Unknown(APP_DATA_DICTIONARY)]),
        None,
        None,
    )
}

fn key_package(p: &Party) -> KeyPackage {
    KeyPackage::builder()
        .leaf_node_capabilities(capabilities())
        .build(SUITE, &p.provider, &p.signer, p.credential.clone())
        .expect("key package")
        .key_package()
        .clone()
}

/// The `app_data_dictionary` extension with the hub's configuration-
/// signing key and the public handshake profile (PRF-1), decoded by
/// openmls from its wire form (whichever variant openmls's features give
/// it).
fn hub_extension<S: HubStore>(world: &DemoWorld<S>) -> Extension {
    let key = HubSigningKey::from_app_data_dictionary(&world.app_data_dictionary)
        .expect("the hub's component");
    let bytes = room_extensions(&key, HandshakeProfile::Public).expect("room extensions");
    Extension::tls_deserialize_exact(bytes).expect("app_data_dictionary extension")
}

fn create_config<S: HubStore>(world: &DemoWorld<S>) -> MlsGroupCreateConfig {
    create_config_with(world, hub_extension(world))
}

fn create_config_with<S: HubStore>(
    _world: &DemoWorld<S>,
    extension: Extension,
) -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(SUITE)
        // Public handshakes: the hub reads proposals and commits.
        .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(true)
        .capabilities(capabilities())
        .with_group_context_extensions(
            Extensions::single(extension).expect("group context extensions"),
        )
        .build()
}

/// F of the group's current epoch, from openmls's exporter (FAN-1).
fn fanout_key(p: &Party, group: &MlsGroup) -> Secret {
    Secret::new(
        group
            .export_secret(p.provider.crypto(), FANOUT_LABEL, b"", 32)
            .expect("exporter"),
    )
}

fn bytes(m: &MlsMessageOut) -> Vec<u8> {
    m.tls_serialize_detached().expect("serialize")
}

/// A hub with the openmls tracker, a client of it, and Alice's group.
struct Scene<S: HubStore = InMemoryHubStore> {
    world: DemoWorld<S>,
    client: Sender,
    alice: Rc<Party>,
    group: MlsGroup,
}

const GROUP_ID: &[u8] = b"openmls room tracked by the hub";

fn scene(tracked: bool) -> Scene {
    scene_on(InMemoryHubStore::new(), tracked)
}

/// [`scene`] on a hub over `store`.
fn scene_on<S: HubStore>(store: S, tracked: bool) -> Scene<S> {
    let mut world = DemoWorld::with_store(store).expect("demo hub");
    if tracked {
        world.hub.set_tracker(Box::new(PublicGroupTracker::new()));
    }
    let client = world.client().expect("client");
    let alice = Rc::new(party("alice"));
    let group = MlsGroup::new_with_group_id(
        &alice.provider,
        &alice.signer,
        &create_config(&world),
        GroupId::from_slice(GROUP_ID),
        alice.credential.clone(),
    )
    .expect("alice's group");
    Scene {
        world,
        client,
        alice,
        group,
    }
}

impl<S: HubStore> Scene<S> {
    /// Seals `message` with the hub layer's items and hands it to the hub;
    /// returns the status the client reads from the response.
    fn send(
        &mut self,
        message: &[u8],
        fanout_key: Option<Secret>,
        membership: Option<&EpochKeys>,
    ) -> Status {
        self.send_signed(message, fanout_key, membership, None)
    }

    /// [`Self::send`] with the committer's signature over F (PRF-4) for a
    /// PublicMessage commit.
    fn send_signed(
        &mut self,
        message: &[u8],
        fanout_key: Option<Secret>,
        membership: Option<&EpochKeys>,
        fanout_key_signature: Option<&[u8]>,
    ) -> Status {
        let sealed = self
            .client
            .seal(
                message,
                SealOptions {
                    fanout_key,
                    membership,
                    fanout_key_signature,
                    ..SealOptions::default()
                },
            )
            .expect("seal");
        let outcome = self.world.hub.handle(&sealed.bytes, NOW);
        self.client
            .open_response(&sealed.pending, &outcome.response)
            .expect("response")
            .status
    }

    /// Alice's GroupInfo, with its ratchet tree.
    fn group_info(&self) -> Vec<u8> {
        bytes(
            &self
                .group
                .export_group_info(self.alice.provider.crypto(), &self.alice.signer, true)
                .expect("group info"),
        )
    }

    /// openmls's GroupContext of Alice's current epoch, serialized (as
    /// her GroupInfo carries it).
    fn group_context(&self) -> Vec<u8> {
        let message = MlsMessageIn::tls_deserialize_exact(self.group_info()).expect("group info");
        let MlsMessageBodyIn::GroupInfo(info) = message.extract() else {
            panic!("a group info");
        };
        info.group_context()
            .tls_serialize_detached()
            .expect("group context")
    }

    fn register(&mut self) -> Status {
        let gi = self.group_info();
        let f = fanout_key(&self.alice, &self.group);
        self.send(&gi, Some(f), None)
    }

    fn hub(&self) -> &HubFrontEnd<S> {
        &self.world.hub
    }
}

/// TRK-2 (HUB-6 with a tracker): a valid openmls GroupInfo registers the
/// group, and the hub keeps the tracker's state and openmls's
/// GroupContext.
#[test]
fn a_valid_openmls_group_info_registers() {
    let mut s = scene(true);
    assert_eq!(s.register(), Status::Accepted);
    let record = s.hub().group(GROUP_ID).expect("store").expect("group held");
    assert_eq!(record.epoch, 0);
    assert_eq!(record.group_context, s.group_context());
    assert!(s.hub().tracker_state(GROUP_ID, 0).expect("store").is_some());
    assert_eq!(
        s.hub().leaf_signature_key(GROUP_ID, 0).expect("store"),
        Some(s.alice.signer.public().to_vec())
    );
}

/// Alice's GroupInfo with one flipped bit in her leaf's signature, the
/// GroupContext's `tree_hash` recomputed over the changed tree and the
/// GroupInfo signed again with Alice's key: everything the hub's own
/// HUB-6 checks look at holds; only the leaf signature is bad.
fn group_info_with_bad_leaf_signature<S: HubStore>(s: &Scene<S>) -> Vec<u8> {
    let mut gi = s.group_info();
    let parsed = GroupInfoIn::parse(&gi).expect("parse");
    let suite = MlsSuite::from_code(parsed.group_context.cipher_suite).expect("suite");
    let tree = decode_ratchet_tree(parsed.extension(0x0002).expect("ratchet tree")).expect("tree");
    let Some(Some(TreeNode::Leaf(leaf))) = tree.first() else {
        panic!("leaf 0 is alice's");
    };
    // The leaf's signature is its last field: flip a bit of its last byte
    // where the leaf lies in the message.
    let at = find(&gi, &leaf.raw) + leaf.raw.len() - 1;
    gi[at] ^= 0x01;
    let parsed = GroupInfoIn::parse(&gi).expect("parse the changed GroupInfo");
    let tree = decode_ratchet_tree(parsed.extension(0x0002).expect("ratchet tree")).expect("tree");
    let new_hash = tree_hash(suite, &tree).expect("tree hash");
    let old_hash = parsed.group_context.tree_hash.clone();
    let at = find(&gi, &old_hash);
    gi[at..at + old_hash.len()].copy_from_slice(&new_hash);
    // Sign again: the signature is the last field, after the TBS.
    let parsed = GroupInfoIn::parse(&gi).expect("parse the rehashed GroupInfo");
    let content = MlsSuite::sign_content("GroupInfoTBS", &parsed.tbs).expect("sign content");
    let signature = s.alice.signer.sign(&content).expect("sign");
    assert_eq!(signature.len(), parsed.signature.len());
    let end = gi.len();
    gi[end - signature.len()..].copy_from_slice(&signature);
    gi
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("found")
}

/// TRK-2: a GroupInfo whose tree holds a leaf with a bad signature is
/// refused by the tracked hub, though the hub's own checks (GroupInfo
/// signature, tree hash, component, F) pass, as the untracked hub shows.
#[test]
fn a_leaf_with_a_bad_signature_is_refused() {
    let mut s = scene(true);
    let gi = group_info_with_bad_leaf_signature(&s);
    let f = fanout_key(&s.alice, &s.group);
    assert_eq!(
        s.send(&gi, Some(f.clone()), None),
        Status::Rejected(RejectReason::RegistrationRefused)
    );
    assert_eq!(s.hub().group(GROUP_ID).expect("store"), None);
    assert_eq!(s.hub().tracker_state(GROUP_ID, 0).expect("store"), None);

    // The same bytes pass the hub's own checks when no tracker is
    // installed: the refusal above is the tracker's.
    let mut untracked = scene(false);
    untracked.alice = s.alice;
    untracked.group = s.group;
    assert_eq!(untracked.send(&gi, Some(f), None), Status::Accepted);
}

/// PRF-4: the committer's signature over F of the epoch its commit opens,
/// made by openmls's signer over the bytes the core defines.
fn sign_fanout_key(committer: &SignatureKeyPair, new_epoch: u64, f: &Secret) -> Vec<u8> {
    let suite = MlsSuite::from_code(1).expect("suite 1");
    let content = fanout_key_sign_content(suite, GROUP_ID, new_epoch, f).expect("sign content");
    committer.sign(&content).expect("sign F")
}

/// Whether the hub layer of `message` carries a membership proof (the
/// types members send, HUB-11).
fn member_sent(message: &[u8]) -> bool {
    mimi_onion::mls::message::MessageInfo::parse(message)
        .expect("classify")
        .is_member_sent()
}

impl<S: HubStore> Scene<S> {
    /// Sends a handshake message of the group's current epoch (as the
    /// hub holds it): the membership proof under that epoch's F when the
    /// type is member-sent; for a commit, F of the next epoch with the
    /// committer's signature over it (`next`: F and the committer's key).
    fn send_handshake(
        &mut self,
        message: &[u8],
        epoch_f: &Secret,
        next: Option<(Secret, &SignatureKeyPair)>,
    ) -> Status {
        let epoch = self.epoch();
        self.send_handshake_at(message, epoch_f, epoch, next)
    }

    /// [`Self::send_handshake`] for a group at `epoch` (when the hub
    /// cannot be asked).
    fn send_handshake_at(
        &mut self,
        message: &[u8],
        epoch_f: &Secret,
        epoch: u64,
        next: Option<(Secret, &SignatureKeyPair)>,
    ) -> Status {
        let keys = EpochKeys::derive(epoch_f, epoch).expect("epoch keys");
        let membership = member_sent(message).then_some(&keys);
        match next {
            Some((f, committer)) => {
                let signature = sign_fanout_key(committer, epoch + 1, &f);
                self.send_signed(message, Some(f), membership, Some(&signature))
            }
            None => self.send(message, None, membership),
        }
    }

    /// The group's epoch as the hub holds it.
    fn epoch(&self) -> u64 {
        self.hub()
            .group(GROUP_ID)
            .expect("store")
            .expect("group")
            .epoch
    }

    /// Alice proposes to add `who` (a PublicMessage proposal).
    fn propose_add(&mut self, who: &Party) -> Vec<u8> {
        let (proposal, _) = self
            .group
            .propose_add_member(&self.alice.provider, &self.alice.signer, &key_package(who))
            .expect("add proposal");
        bytes(&proposal)
    }

    /// Alice commits to her pending proposals; returns the commit and the
    /// Welcome, with her group moved to the new epoch.
    fn commit(&mut self) -> (Vec<u8>, Option<MlsMessageOut>) {
        let (commit, welcome, _) = self
            .group
            .commit_to_pending_proposals(&self.alice.provider, &self.alice.signer)
            .expect("commit");
        self.group
            .merge_pending_commit(&self.alice.provider)
            .expect("merge");
        (bytes(&commit), welcome)
    }

    /// The GroupInfo, parsed as openmls reads it (for joiners).
    fn verifiable_group_info(&self) -> openmls::messages::group_info::VerifiableGroupInfo {
        match MlsMessageIn::tls_deserialize_exact(self.group_info())
            .expect("group info")
            .extract()
        {
            MlsMessageBodyIn::GroupInfo(info) => info,
            _ => panic!("a group info"),
        }
    }
}

/// `who` joins from a Welcome.
fn join(who: &Party, welcome: &MlsMessageOut, config: &MlsGroupCreateConfig) -> MlsGroup {
    let MlsMessageBodyIn::Welcome(welcome) = MlsMessageIn::tls_deserialize_exact(bytes(welcome))
        .expect("welcome")
        .extract()
    else {
        panic!("a welcome");
    };
    StagedWelcome::new_from_welcome(&who.provider, config.join_config(), welcome, None)
        .expect("staged welcome")
        .into_group(&who.provider)
        .expect("bob's group")
}

/// Flips one bit of the signature of a PublicMessage (its
/// `FramedContentAuthData.signature`, found where it lies in the bytes).
fn with_bad_signature(message: &[u8]) -> Vec<u8> {
    let pm = mimi_onion::mls::framing::PublicMessage::parse(message).expect("public message");
    let signature = pm.auth.signature.clone();
    let mut out = message.to_vec();
    let at = find(&out, &signature);
    out[at] ^= 0x01;
    out
}

/// TRK-3, TRK-4: a member's PublicMessage proposal and commit are
/// accepted through the tracker; the hub's GroupContext and leaf keys move
/// to the new epoch by themselves, so the next epoch's messages (from the
/// member the commit added) are accepted with nothing installed by hand.
#[test]
fn member_proposal_and_commit_move_the_tracked_epoch() {
    let mut s = scene(true);
    let alice = s.alice.clone();
    assert_eq!(s.register(), Status::Accepted);
    let bob = party("bob");
    let f0 = fanout_key(&s.alice, &s.group);
    let proposal = s.propose_add(&bob);
    assert_eq!(s.send_handshake(&proposal, &f0, None), Status::Accepted);
    let queued = s.hub().tracker_state(GROUP_ID, 0).expect("store");
    let (commit, welcome) = s.commit();
    let f1 = fanout_key(&s.alice, &s.group);
    assert_eq!(
        s.send_handshake(&commit, &f0, Some((f1.clone(), &alice.signer))),
        Status::Accepted
    );
    let record = s.hub().group(GROUP_ID).expect("store").expect("group");
    assert_eq!(record.epoch, 1);
    assert_eq!(record.group_context, s.group_context(), "openmls's epoch 1");
    assert!(s.hub().tracker_state(GROUP_ID, 1).expect("store").is_some());
    assert!(
        queued.is_some(),
        "the proposal was queued in epoch 0's state"
    );
    assert_eq!(
        s.hub().leaf_signature_key(GROUP_ID, 1).expect("store"),
        Some(bob.signer.public().to_vec()),
        "bob's key came from the tracked tree"
    );

    // Epoch 1: Bob, who joined by the Welcome, proposes an update and
    // Alice commits it; both accepted on the tracked state alone.
    let config = create_config(&s.world);
    let mut bob_group = join(&bob, &welcome.expect("welcome"), &config);
    let (update, _) = bob_group
        .propose_self_update(&bob.provider, &bob.signer, LeafNodeParameters::default())
        .expect("update proposal");
    let update = bytes(&update);
    assert_eq!(s.send_handshake(&update, &f1, None), Status::Accepted);
    let processed = s
        .group
        .process_message(
            &s.alice.provider,
            MlsMessageIn::tls_deserialize_exact(&update)
                .expect("update")
                .try_into_protocol_message()
                .expect("protocol message"),
        )
        .expect("alice reads bob's proposal");
    let ProcessedMessageContent::ProposalMessage(p) = processed.into_content() else {
        panic!("a proposal");
    };
    s.group
        .store_pending_proposal(s.alice.provider.storage(), *p)
        .expect("queue");
    let (commit, _) = s.commit();
    let f2 = fanout_key(&s.alice, &s.group);
    assert_eq!(
        s.send_handshake(&commit, &f1, Some((f2, &alice.signer))),
        Status::Accepted
    );
    let record = s.hub().group(GROUP_ID).expect("store").expect("group");
    assert_eq!(record.epoch, 2);
    assert_eq!(record.group_context, s.group_context());
    assert_eq!(
        s.hub().tracker_state(GROUP_ID, 0).expect("store"),
        None,
        "epoch 0's state is dropped once epoch 2 opens"
    );
}

/// TRK-3: a proposal or commit whose signature does not verify under the
/// sender's leaf key is refused, and the tracked state does not move.
#[test]
fn a_member_handshake_with_a_bad_signature_is_refused() {
    let mut s = scene(true);
    let alice = s.alice.clone();
    assert_eq!(s.register(), Status::Accepted);
    let before = s.hub().tracker_state(GROUP_ID, 0).expect("store");
    let bob = party("bob");
    let f0 = fanout_key(&s.alice, &s.group);
    let proposal = s.propose_add(&bob);
    assert_eq!(
        s.send_handshake(&with_bad_signature(&proposal), &f0, None),
        Status::Rejected(RejectReason::PolicyRejected)
    );
    assert_eq!(s.hub().tracker_state(GROUP_ID, 0).expect("store"), before);
    assert_eq!(s.send_handshake(&proposal, &f0, None), Status::Accepted);
    let (commit, _) = s.commit();
    let f1 = fanout_key(&s.alice, &s.group);
    assert_eq!(
        s.send_handshake(
            &with_bad_signature(&commit),
            &f0,
            Some((f1.clone(), &alice.signer))
        ),
        Status::Rejected(RejectReason::PolicyRejected)
    );
    assert_eq!(
        s.hub()
            .group(GROUP_ID)
            .expect("store")
            .expect("group")
            .epoch,
        0
    );
    assert_eq!(
        s.send_handshake(&commit, &f0, Some((f1, &alice.signer))),
        Status::Accepted
    );
}

/// TRK-3: an external commit (`new_member_commit`, signed with the key of
/// its path leaf node) is verified and accepted, and moves the epoch; the
/// same commit with a bad signature is refused. The hub's own checks
/// refuse every external commit (their key is not in its state).
#[test]
fn external_commits_are_verified() {
    let mut s = scene(true);
    assert_eq!(s.register(), Status::Accepted);
    let carol = party("carol");
    let config = create_config(&s.world);
    let (carol_group, bundle) = ExternalCommitBuilder::new()
        .with_config(config.join_config().clone())
        .build_group(
            &carol.provider,
            s.verifiable_group_info(),
            carol.credential.clone(),
        )
        .expect("external commit builder")
        .leaf_node_parameters(
            LeafNodeParameters::builder()
                .with_capabilities(capabilities())
                .build(),
        )
        .load_psks(carol.provider.storage())
        .expect("psks")
        .build(
            carol.provider.rand(),
            carol.provider.crypto(),
            &carol.signer,
            |_| true,
        )
        .expect("external commit")
        .finalize(&carol.provider)
        .expect("finalize");
    let (commit, _, _) = bundle.into_contents();
    let commit = bytes(&commit);
    let f0 = fanout_key(&s.alice, &s.group);
    let f1 = fanout_key(&carol, &carol_group);
    assert!(!member_sent(&commit), "new_member_commit");

    // Without a tracker, the hub refuses it (HUB-12: non-member sender).
    let mut untracked = scene(false);
    untracked.alice = Rc::new(party("alice"));
    let gi = s.group_info();
    assert_eq!(
        untracked.send(&gi, Some(f0.clone()), None),
        Status::Accepted
    );
    assert_eq!(
        untracked.send_handshake(&commit, &f0, Some((f1.clone(), &carol.signer))),
        Status::Rejected(RejectReason::PolicyRejected)
    );

    assert_eq!(
        s.send_handshake(
            &with_bad_signature(&commit),
            &f0,
            Some((f1.clone(), &carol.signer))
        ),
        Status::Rejected(RejectReason::PolicyRejected)
    );
    assert_eq!(
        s.send_handshake(&commit, &f0, Some((f1, &carol.signer))),
        Status::Accepted
    );
    let record = s.hub().group(GROUP_ID).expect("store").expect("group");
    assert_eq!(record.epoch, 1);
    assert_eq!(
        s.hub().leaf_signature_key(GROUP_ID, 1).expect("store"),
        Some(carol.signer.public().to_vec()),
        "carol's key from her commit's path"
    );
}

/// TRK-3: a new member's Add proposal (`new_member_proposal`, signed with
/// the KeyPackage leaf's key) is verified: accepted when valid, refused
/// with a bad signature; queued in the tracked state, so Alice's commit
/// that references it is accepted too.
#[test]
fn new_member_proposals_are_verified() {
    let mut s = scene(true);
    let alice = s.alice.clone();
    assert_eq!(s.register(), Status::Accepted);
    let dave = party("dave");
    let proposal = JoinProposal::new::<openmls_rust_crypto::MemoryStorage>(
        key_package(&dave),
        GroupId::from_slice(GROUP_ID),
        s.group.epoch(),
        &dave.signer,
    )
    .expect("join proposal");
    let proposal = bytes(&proposal);
    assert!(!member_sent(&proposal), "new_member_proposal");
    let f0 = fanout_key(&s.alice, &s.group);
    assert_eq!(
        s.send_handshake(&with_bad_signature(&proposal), &f0, None),
        Status::Rejected(RejectReason::PolicyRejected)
    );
    assert_eq!(s.send_handshake(&proposal, &f0, None), Status::Accepted);

    let processed = s
        .group
        .process_message(
            &s.alice.provider,
            MlsMessageIn::tls_deserialize_exact(&proposal)
                .expect("proposal")
                .try_into_protocol_message()
                .expect("protocol message"),
        )
        .expect("alice reads dave's proposal");
    let ProcessedMessageContent::ExternalJoinProposalMessage(p) = processed.into_content() else {
        panic!("an external join proposal");
    };
    s.group
        .store_pending_proposal(s.alice.provider.storage(), *p)
        .expect("queue");
    let (commit, _) = s.commit();
    let f1 = fanout_key(&s.alice, &s.group);
    assert_eq!(
        s.send_handshake(&commit, &f0, Some((f1, &alice.signer))),
        Status::Accepted
    );
    assert_eq!(
        s.hub().leaf_signature_key(GROUP_ID, 1).expect("store"),
        Some(dave.signer.public().to_vec())
    );
}

/// PRF-4 with TRK-3: a PublicMessage commit whose signature over F does
/// not verify under the committer's key (the leaf's for a member, the path
/// leaf node's for an external commit) is refused, though the commit
/// itself verifies; with the right signature it is accepted.
#[test]
fn a_commit_whose_f_signature_does_not_verify_is_refused() {
    let mut s = scene(true);
    let alice = s.alice.clone();
    assert_eq!(s.register(), Status::Accepted);
    let bob = party("bob");
    let f0 = fanout_key(&s.alice, &s.group);
    let proposal = s.propose_add(&bob);
    assert_eq!(s.send_handshake(&proposal, &f0, None), Status::Accepted);
    let (commit, _) = s.commit();
    let f1 = fanout_key(&s.alice, &s.group);
    let keys = EpochKeys::derive(&f0, 0).expect("epoch keys");
    // Signed by another key (Bob's, not yet a member).
    let by_bob = sign_fanout_key(&bob.signer, 1, &f1);
    assert_eq!(
        s.send_signed(&commit, Some(f1.clone()), Some(&keys), Some(&by_bob)),
        Status::Rejected(RejectReason::PolicyRejected)
    );
    // Alice's signature over another epoch's F.
    let other_f = sign_fanout_key(&alice.signer, 1, &f0);
    assert_eq!(
        s.send_signed(&commit, Some(f1.clone()), Some(&keys), Some(&other_f)),
        Status::Rejected(RejectReason::PolicyRejected)
    );
    // Alice's signature with one bit flipped.
    let mut flipped = sign_fanout_key(&alice.signer, 1, &f1);
    flipped[0] ^= 0x80;
    assert_eq!(
        s.send_signed(&commit, Some(f1.clone()), Some(&keys), Some(&flipped)),
        Status::Rejected(RejectReason::PolicyRejected)
    );
    assert_eq!(s.epoch(), 0, "nothing moved");
    assert_eq!(
        s.send_handshake(&commit, &f0, Some((f1, &alice.signer))),
        Status::Accepted
    );
    assert_eq!(s.epoch(), 1);

    // An external commit: F must be signed by the joiner's new leaf key.
    let carol = party("carol");
    let config = create_config(&s.world);
    let (carol_group, bundle) = ExternalCommitBuilder::new()
        .with_config(config.join_config().clone())
        .build_group(
            &carol.provider,
            s.verifiable_group_info(),
            carol.credential.clone(),
        )
        .expect("external commit builder")
        .leaf_node_parameters(
            LeafNodeParameters::builder()
                .with_capabilities(capabilities())
                .build(),
        )
        .load_psks(carol.provider.storage())
        .expect("psks")
        .build(
            carol.provider.rand(),
            carol.provider.crypto(),
            &carol.signer,
            |_| true,
        )
        .expect("external commit")
        .finalize(&carol.provider)
        .expect("finalize");
    let commit = bytes(&bundle.into_contents().0);
    let f1 = fanout_key(&s.alice, &s.group);
    let f2 = fanout_key(&carol, &carol_group);
    assert_eq!(
        s.send_handshake(&commit, &f1, Some((f2.clone(), &alice.signer))),
        Status::Rejected(RejectReason::PolicyRejected),
        "signed by a member, not by the committer"
    );
    assert_eq!(
        s.send_handshake(&commit, &f1, Some((f2, &carol.signer))),
        Status::Accepted
    );
    assert_eq!(s.epoch(), 2);
}

/// The room's extensions with `profile` (and the required capabilities
/// openmls asks for), as openmls takes them.
fn extensions_with<S: HubStore>(
    world: &DemoWorld<S>,
    profile: HandshakeProfile,
) -> Extensions<GroupContext> {
    let key = HubSigningKey::from_app_data_dictionary(&world.app_data_dictionary)
        .expect("the hub's component");
    let bytes = room_extensions(&key, profile).expect("room extensions");
    Extensions::from_vec(vec![
        Extension::tls_deserialize_exact(bytes).expect("extension"),
        // openmls requires a proposed GroupContext extension to be listed
        // in the required capabilities.
        Extension::RequiredCapabilities(RequiredCapabilitiesExtension::new(
            &[ExtensionType::Unknown(APP_DATA_DICTIONARY)],
            &[],
            &[],
        )),
    ])
    .expect("extensions")
}

/// PRF-3 with TRK-3: a GroupContextExtensions proposal that would switch
/// the room to private handshakes is refused, and so is a commit whose
/// next GroupContext (as the tracker computes it) carries another
/// profile; one that keeps the components is accepted.
#[test]
fn a_change_of_the_profile_is_refused() {
    let mut s = scene(true);
    let alice = s.alice.clone();
    assert_eq!(s.register(), Status::Accepted);
    let f0 = fanout_key(&s.alice, &s.group);
    let private = extensions_with(&s.world, HandshakeProfile::Private);
    let (proposal, _) = s
        .group
        .propose_group_context_extensions(&alice.provider, private.clone(), &alice.signer)
        .expect("proposal");
    assert_eq!(
        s.send_handshake(&bytes(&proposal), &f0, None),
        Status::Rejected(RejectReason::PolicyRejected)
    );
    // The commit that applies it (by value, in the commit itself).
    s.group
        .clear_pending_proposals(alice.provider.storage())
        .expect("clear");
    let (commit, f1) = extensions_commit(&mut s, private);
    assert_eq!(
        s.send_handshake(&commit, &f0, Some((f1, &alice.signer))),
        Status::Rejected(RejectReason::PolicyRejected)
    );
    assert_eq!(s.epoch(), 0);

    // The same commit keeping the profile (it only adds the required
    // capabilities) is accepted: the refusals above are PRF-3's.
    let mut s = scene(true);
    let alice = s.alice.clone();
    assert_eq!(s.register(), Status::Accepted);
    let f0 = fanout_key(&s.alice, &s.group);
    let public = extensions_with(&s.world, HandshakeProfile::Public);
    let (commit, f1) = extensions_commit(&mut s, public);
    assert_eq!(
        s.send_handshake(&commit, &f0, Some((f1, &alice.signer))),
        Status::Accepted
    );
    assert_eq!(s.epoch(), 1);
}

/// Alice commits a GroupContextExtensions proposal (by value) and merges
/// it; returns the commit and F of the epoch it opens.
fn extensions_commit<S: HubStore>(
    s: &mut Scene<S>,
    extensions: Extensions<GroupContext>,
) -> (Vec<u8>, Secret) {
    let alice = s.alice.clone();
    let bundle = s
        .group
        .commit_builder()
        .propose_group_context_extensions(extensions)
        .expect("propose")
        .load_psks(alice.provider.storage())
        .expect("psks")
        .build(
            alice.provider.rand(),
            alice.provider.crypto(),
            &alice.signer,
            |_| true,
        )
        .expect("commit")
        .stage_commit(&alice.provider)
        .expect("stage");
    let commit = bytes(bundle.commit());
    s.group
        .merge_pending_commit(&alice.provider)
        .expect("merge");
    (commit, fanout_key(&alice, &s.group))
}

/// TRK-4 over a real store: the tracked state lives in the SQLite file,
/// not in the front-end. A front-end registers the group and accepts a
/// proposal, and is then gone (as after a restart); a second front-end,
/// with a tracker of its own, on another connection to the same file,
/// accepts the commit that references the proposal the first one queued,
/// and the next epoch's messages.
#[test]
fn the_tracked_state_survives_a_restart_in_sqlite() {
    let dir =
        std::env::temp_dir().join(format!("mimi-onion-openmls-{}-{}", std::process::id(), NOW));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary folder");
    let path = dir.join("hub.sqlite");
    let mut s = scene_on(
        mimi_onion_store_sqlite::SqliteHubStore::open(&path).expect("sqlite"),
        true,
    );
    let alice = s.alice.clone();
    assert_eq!(s.register(), Status::Accepted);
    let bob = party("bob");
    let f0 = fanout_key(&s.alice, &s.group);
    let proposal = s.propose_add(&bob);
    assert_eq!(s.send_handshake(&proposal, &f0, None), Status::Accepted);

    // The first front-end goes; the second opens the file anew.
    let mut world = DemoWorld::with_store(
        mimi_onion_store_sqlite::SqliteHubStore::open(&path).expect("sqlite again"),
    )
    .expect("second front-end");
    world.hub.set_tracker(Box::new(PublicGroupTracker::new()));
    drop(std::mem::replace(&mut s.world, world));

    let (commit, welcome) = s.commit();
    let f1 = fanout_key(&s.alice, &s.group);
    assert_eq!(
        s.send_handshake(&commit, &f0, Some((f1.clone(), &alice.signer))),
        Status::Accepted,
        "the queued proposal was in the store"
    );
    assert_eq!(s.epoch(), 1);
    let config = create_config(&s.world);
    let mut bob_group = join(&bob, &welcome.expect("welcome"), &config);
    let (update, _) = bob_group
        .propose_self_update(&bob.provider, &bob.signer, LeafNodeParameters::default())
        .expect("update proposal");
    assert_eq!(
        s.send_handshake(&bytes(&update), &f1, None),
        Status::Accepted
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// TRK-4 with STO-1: when the store fails during a commit, the sender
/// learns `unavailable` and nothing moved, the tracked state included;
/// once the store is back, the commit is accepted.
#[test]
fn a_failed_transaction_leaves_the_tracked_state() {
    let store = std::sync::Arc::new(InMemoryHubStore::new());
    let mut s = scene_on(store.clone(), true);
    let alice = s.alice.clone();
    assert_eq!(s.register(), Status::Accepted);
    let bob = party("bob");
    let f0 = fanout_key(&s.alice, &s.group);
    let proposal = s.propose_add(&bob);
    assert_eq!(s.send_handshake(&proposal, &f0, None), Status::Accepted);
    let before = s.hub().tracker_state(GROUP_ID, 0).expect("store");
    let (commit, _) = s.commit();
    let f1 = fanout_key(&s.alice, &s.group);
    store.set_available(false);
    assert_eq!(
        s.send_handshake_at(&commit, &f0, 0, Some((f1.clone(), &alice.signer))),
        Status::Rejected(RejectReason::Unavailable)
    );
    store.set_available(true);
    assert_eq!(s.epoch(), 0);
    assert_eq!(s.hub().tracker_state(GROUP_ID, 0).expect("store"), before);
    assert_eq!(s.hub().tracker_state(GROUP_ID, 1).expect("store"), None);
    assert_eq!(
        s.send_handshake(&commit, &f0, Some((f1, &alice.signer))),
        Status::Accepted
    );
    assert_eq!(s.epoch(), 1);
}

/// TRK-5: a room with private handshakes is checked at registration
/// (TRK-2) but not tracked: the hub keeps no tracked state for it, and
/// its leaf keys come from the registration, so its PrivateMessage
/// handshakes go to the policy engine as without a tracker.
#[test]
fn a_private_handshake_room_is_checked_but_not_tracked() {
    let mut s = scene(true);
    let key = HubSigningKey::from_app_data_dictionary(&s.world.app_data_dictionary)
        .expect("the hub's component");
    let private = Extension::tls_deserialize_exact(
        room_extensions(&key, HandshakeProfile::Private).expect("room extensions"),
    )
    .expect("extension");
    let config = create_config_with(&s.world, private);
    // A new Alice: the scene's has a group of this id already.
    s.alice = Rc::new(party("alice"));
    s.group = MlsGroup::new_with_group_id(
        &s.alice.provider,
        &s.alice.signer,
        &config,
        GroupId::from_slice(GROUP_ID),
        s.alice.credential.clone(),
    )
    .expect("a private-handshake room");
    assert_eq!(s.register(), Status::Accepted);
    assert_eq!(s.hub().tracker_state(GROUP_ID, 0).expect("store"), None);
    assert_eq!(
        s.hub().leaf_signature_key(GROUP_ID, 0).expect("store"),
        Some(s.alice.signer.public().to_vec())
    );
    // Its bad-leaf twin is refused all the same (TRK-2).
    let mut s2 = scene(true);
    s2.alice = Rc::new(party("alice"));
    s2.group = MlsGroup::new_with_group_id(
        &s2.alice.provider,
        &s2.alice.signer,
        &config,
        GroupId::from_slice(GROUP_ID),
        s2.alice.credential.clone(),
    )
    .expect("a private-handshake room");
    let gi = group_info_with_bad_leaf_signature(&s2);
    let f = fanout_key(&s2.alice, &s2.group);
    assert_eq!(
        s2.send(&gi, Some(f), None),
        Status::Rejected(RejectReason::RegistrationRefused)
    );
}

/// Bad input gets an error, never a panic: every prefix of a GroupInfo
/// and of a proposal, and every prefix and single-bit change of a
/// tracked state, is refused by the tracker with an error (a corrupt
/// state as [`TrackerError::CorruptState`] when it does not decode).
#[test]
fn the_tracker_refuses_truncated_and_corrupt_input() {
    use mimi_onion::tracker::{GroupTracker, TrackerError};
    let s = scene(true);
    let tracker = PublicGroupTracker::new();
    let gi = s.group_info();
    let tracked = tracker
        .register(&gi)
        .expect("the whole GroupInfo registers");
    for n in 0..gi.len() {
        assert!(tracker.register(&gi[..n]).is_err(), "GroupInfo prefix {n}");
    }
    let mut s = s;
    let bob = party("bob");
    let proposal = s.propose_add(&bob);
    assert!(tracker.verify_handshake(&tracked.state, &proposal).is_ok());
    for n in 0..proposal.len() {
        assert!(
            tracker
                .verify_handshake(&tracked.state, &proposal[..n])
                .is_err(),
            "proposal prefix {n}"
        );
    }
    let state = &tracked.state;
    for n in 0..state.len() {
        assert!(
            matches!(
                tracker.verify_handshake(&state[..n], &proposal),
                Err(TrackerError::CorruptState(_))
            ),
            "state prefix {n}"
        );
        assert!(tracker.epoch_of(&state[..n]).is_err());
    }
    let mut longer = state.clone();
    longer.push(0);
    assert!(matches!(
        tracker.epoch_of(&longer),
        Err(TrackerError::CorruptState(_))
    ));
    // Single-bit changes: an error or a valid (other) state, never a panic.
    for i in (0..state.len()).step_by(7) {
        let mut flipped = state.clone();
        flipped[i] ^= 1 << (i % 8);
        let _ = tracker.verify_handshake(&flipped, &proposal);
        let _ = tracker.epoch_of(&flipped);
    }
}

/// The PostgreSQL server of the store tests (`MIMI_ONION_PG_URL`, which
/// `.ci/run` sets); outside CI the test is skipped without it.
fn pg_url() -> Option<String> {
    match std::env::var("MIMI_ONION_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("MIMI_ONION_PG_URL is not set, and CI is: this test must run in CI")
        }
        _ => {
            eprintln!("skipped: MIMI_ONION_PG_URL not set");
            None
        }
    }
}

/// TRK-4 with STO-2, on PostgreSQL (READ COMMITTED) with two front-ends
/// on two connections: two proposals of one epoch, handled at the same
/// time, are both queued in the tracked state (the state's row is locked
/// from its read to the end of the transaction), so that Alice's commit
/// covering both is accepted. Without the lock one proposal would be
/// lost and the commit refused.
#[test]
fn two_proposals_at_once_on_postgres_are_both_queued() {
    use mimi_onion_store_postgres::PostgresHubStore;
    let Some(url) = pg_url() else { return };
    let trials = 5;
    for trial in 0..trials {
        let schema = format!("t_omls_hub_{}_{trial}", std::process::id());
        let connect = || PostgresHubStore::connect_with_schema(&url, &schema).expect("postgres");
        let mut s = scene_on(connect(), true);
        let alice = s.alice.clone();
        assert_eq!(s.register(), Status::Accepted);
        let mut other = DemoWorld::with_store(connect()).expect("second front-end");
        other.hub.set_tracker(Box::new(PublicGroupTracker::new()));
        let f0 = fanout_key(&s.alice, &s.group);
        let keys = EpochKeys::derive(&f0, 0).expect("epoch keys");
        let (bob, carol) = (party("bob"), party("carol"));
        let p1 = s.propose_add(&bob);
        let p2 = s.propose_add(&carol);
        let seal = |client: &mut Sender, m: &[u8]| {
            client
                .seal(
                    m,
                    SealOptions {
                        membership: Some(&keys),
                        ..SealOptions::default()
                    },
                )
                .expect("seal")
        };
        let e1 = seal(&mut s.client, &p1);
        let e2 = seal(&mut s.client, &p2);
        let barrier = std::sync::Barrier::new(2);
        let (r1, r2) = std::thread::scope(|scope| {
            let a = scope.spawn(|| {
                barrier.wait();
                s.world.hub.handle(&e1.bytes, NOW)
            });
            let b = scope.spawn(|| {
                barrier.wait();
                other.hub.handle(&e2.bytes, NOW)
            });
            (a.join().expect("thread"), b.join().expect("thread"))
        });
        for (sealed, outcome) in [(&e1, r1), (&e2, r2)] {
            let status = s
                .client
                .open_response(&sealed.pending, &outcome.response)
                .expect("response")
                .status;
            assert_eq!(status, Status::Accepted, "trial {trial}");
        }
        let (commit, _) = s.commit();
        let f1 = fanout_key(&s.alice, &s.group);
        assert_eq!(
            s.send_handshake(&commit, &f0, Some((f1, &alice.signer))),
            Status::Accepted,
            "trial {trial}: both proposals were queued"
        );
        assert_eq!(
            s.hub().leaf_signature_key(GROUP_ID, 2).expect("store"),
            Some(carol.signer.public().to_vec())
        );
        drop(s);
        drop(other);
        let mut raw = postgres::Client::connect(&url, postgres::NoTls).expect("raw connection");
        raw.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .expect("drop schema");
    }
}

/// TRK-4 with DSP-3 and DSP-6: Bob, whom Alice's commit removes, disputes
/// it (signed with his key of the closed epoch, which only the tracked
/// state of that epoch still holds); the hub reverts the group to the
/// closed epoch, Bob's key is back, the tracked state of the reverted
/// epoch is gone, and Bob's next message of the restored epoch is
/// accepted against the tracked state.
#[test]
fn a_reverted_commit_restores_the_tracked_epoch() {
    use mimi_onion::dispute::{Dispute, DisputeClaim, DisputeOutcome};
    let mut s = scene(true);
    let alice = s.alice.clone();
    assert_eq!(s.register(), Status::Accepted);
    let bob = party("bob");
    let f0 = fanout_key(&s.alice, &s.group);
    let proposal = s.propose_add(&bob);
    assert_eq!(s.send_handshake(&proposal, &f0, None), Status::Accepted);
    let (commit, welcome) = s.commit();
    let f1 = fanout_key(&s.alice, &s.group);
    assert_eq!(
        s.send_handshake(&commit, &f0, Some((f1.clone(), &alice.signer))),
        Status::Accepted
    );
    let mut bob_group = join(&bob, &welcome.expect("welcome"), &create_config(&s.world));

    // Epoch 1: Alice removes Bob.
    let (removal, _) = s
        .group
        .propose_remove_member(&alice.provider, &alice.signer, LeafNodeIndex::new(1))
        .expect("remove proposal");
    assert_eq!(
        s.send_handshake(&bytes(&removal), &f1, None),
        Status::Accepted
    );
    let (commit, _) = s.commit();
    let f2 = fanout_key(&s.alice, &s.group);
    assert_eq!(
        s.send_handshake(&commit, &f1, Some((f2, &alice.signer))),
        Status::Accepted
    );
    assert_eq!(s.epoch(), 2);
    assert_eq!(
        s.hub().leaf_signature_key(GROUP_ID, 1).expect("store"),
        None
    );

    let suite = MlsSuite::from_code(1).expect("suite 1");
    let dispute = Dispute::sign(
        suite,
        &Secret::new(bob.signer.private().to_vec()),
        &commit,
        1,
        DisputeClaim::Unprocessable,
    )
    .expect("dispute");
    let outcome = s
        .world
        .hub
        .handle_dispute(&dispute.encode().expect("encode"))
        .expect("store");
    assert_eq!(outcome, DisputeOutcome::Reverted);
    assert_eq!(s.epoch(), 1);
    assert_eq!(
        s.hub().leaf_signature_key(GROUP_ID, 1).expect("store"),
        Some(bob.signer.public().to_vec()),
        "bob's key of epoch 1 is back"
    );
    assert_eq!(s.hub().tracker_state(GROUP_ID, 2).expect("store"), None);
    let (update, _) = bob_group
        .propose_self_update(&bob.provider, &bob.signer, LeafNodeParameters::default())
        .expect("update proposal");
    assert_eq!(
        s.send_handshake(&bytes(&update), &f1, None),
        Status::Accepted
    );
}
