//! Property tests for the wire structures: round trips, and rejection of
//! altered encodings (spec requirements named per property).

use ed25519_dalek::SigningKey;
use mimi_onion::codec::put_vec;
use mimi_onion::codec::Opaque;
use mimi_onion::config::{
    HubConfiguration, HubSigningKey, KeyConfig, SignedHubConfiguration, SymmetricAlgorithm,
};
use mimi_onion::padding::padded_length;
use mimi_onion::response::{HubResponse, RejectReason, Status, RESPONSE_CONTENT_LEN};
use mimi_onion::secret::Secret;
use mimi_onion::suite::HpkeSuite;
use mimi_onion::token::{RoutingToken, TokenKey, TokenKeys};
use mimi_onion::wire::{
    Envelope, HubLayerContent, OuterHeader, FANOUT_KEY_SIGNATURE_MAX_LEN, KEY_LAYER_MAX_LEN,
};
use proptest::prelude::*;

fn suite() -> impl Strategy<Value = HpkeSuite> {
    prop::sample::select(HpkeSuite::ALL.to_vec())
}

prop_compose! {
    fn header()(token in any::<[u8; 17]>(), key_id in any::<u8>(), suite in suite()) -> OuterHeader {
        OuterHeader { token: RoutingToken(token), key_id, suite }
    }
}

prop_compose! {
    fn hub_layer_parts()(
        message in prop::collection::vec(any::<u8>(), 0..3000),
        proof in any::<[u8; 16]>(),
        key_layer in prop::collection::vec(any::<u8>(), 0..=KEY_LAYER_MAX_LEN),
        fanout in prop::option::of(any::<[u8; 32]>()),
        signature in prop::collection::vec(any::<u8>(), 0..=FANOUT_KEY_SIGNATURE_MAX_LEN),
    ) -> (Vec<u8>, [u8; 16], Vec<u8>, Option<[u8; 32]>, Vec<u8>) {
        // A key layer and an F signature never travel together (PRF-4).
        let signature = if key_layer.is_empty() { signature } else { Vec::new() };
        (message, proof, key_layer, fanout, signature)
    }
}

proptest! {
    /// OUT-3: envelopes round trip; every proper prefix and any appended
    /// byte is rejected.
    #[test]
    fn envelope_round_trip(h in header(), sealed in prop::collection::vec(any::<u8>(), 0..600)) {
        let enc = vec![4u8; h.suite.n_enc()];
        let bytes = Envelope::encode(&h, &enc, &sealed).unwrap();
        let e = Envelope::parse(&bytes).unwrap();
        prop_assert_eq!(e.header, h);
        prop_assert_eq!(e.enc, &enc[..]);
        prop_assert_eq!(e.sealed_hub_layer, &sealed[..]);
        prop_assert_eq!(e.header_bytes, &h.to_bytes()[..]);
        let cut = bytes.len() / 2;
        prop_assert!(Envelope::parse(&bytes[..cut]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(Envelope::parse(&longer).is_err());
    }

    /// HUB-1, HUB-2, PAD-1: the hub layer round trips at exactly the padded
    /// length; a non-zero padding byte or a length change is rejected.
    #[test]
    fn hub_layer_round_trip((message, proof, key_layer, fanout, signature) in hub_layer_parts(), pos in any::<prop::sample::Index>()) {
        let content = HubLayerContent {
            message: &message,
            membership_proof: proof,
            key_layer: &key_layer,
            fanout_key: fanout.map(|f| Secret::from_slice(&f)),
            fanout_key_signature: &signature,
        };
        let pt = content.encode_padded().unwrap();
        prop_assert_eq!(pt.len(), padded_length(message.len()));
        prop_assert_eq!(&HubLayerContent::parse_padded(&pt).unwrap(), &content);
        // The encoded content's own length: every byte after it is padding.
        let used = {
            let mut v = Vec::new();
            put_vec(&mut v, &message).unwrap();
            v.extend_from_slice(&proof);
            put_vec(&mut v, &key_layer).unwrap();
            put_vec(&mut v, fanout.as_ref().map_or(&[][..], |f| &f[..])).unwrap();
            put_vec(&mut v, &signature).unwrap();
            v.len()
        };
        if used < pt.len() {
            let i = used + pos.index(pt.len() - used);
            let mut bad = pt.clone();
            bad[i] = 1;
            prop_assert!(HubLayerContent::parse_padded(&bad).is_err());
        }
        prop_assert!(HubLayerContent::parse_padded(&pt[..pt.len() - 1]).is_err());
        let mut longer = pt.clone();
        longer.push(0);
        prop_assert!(HubLayerContent::parse_padded(&longer).is_err());
    }

    /// Response content: every valid content round trips; decoding any 71
    /// bytes either fails or re-encodes to the same bytes.
    #[test]
    fn response_content(bytes in prop::collection::vec(any::<u8>(), RESPONSE_CONTENT_LEN), reason in 0usize..10) {
        if let Ok(r) = HubResponse::decode(&bytes) {
            prop_assert_eq!(&r.encode()[..], &bytes[..]);
        }
        let status = if reason == 0 { Status::Accepted } else { Status::Rejected(RejectReason::ALL[reason - 1]) };
        let mut tokens = [RoutingToken([0; 17]); 4];
        for (i, t) in tokens.iter_mut().enumerate() {
            t.0.copy_from_slice(&bytes[3 + i * 17..3 + (i + 1) * 17]);
        }
        let r = HubResponse { status, tokens };
        prop_assert_eq!(HubResponse::decode(&r.encode()).unwrap(), r);
    }

    /// TOK-1..TOK-3: a token decodes to the shard and nonce it was issued
    /// for, under its own codepoint only.
    #[test]
    fn token_round_trip(key in any::<[u8; 16]>(), cp in 0u8..7, shard in any::<u32>(), nonce in any::<[u8; 12]>(), r in any::<u8>()) {
        let k = TokenKey::new(cp, key, u64::MAX).unwrap();
        let t = k.issue_with(shard, nonce, r);
        prop_assert_eq!(t.codepoint(), cp);
        let keys = TokenKeys::new(vec![k]).unwrap();
        let d = keys.decode(&t.0).unwrap();
        prop_assert_eq!((d.shard, d.nonce, d.codepoint), (shard, nonce, cp));
        let other = TokenKeys::new(vec![TokenKey::new((cp + 1) % 7, key, u64::MAX).unwrap()]).unwrap();
        prop_assert!(other.decode(&t.0).is_none());
    }

    /// CFG-1: a signed configuration round trips; any single-byte change of
    /// its encoding fails to decode, fails to verify, or leaves it unchanged.
    #[test]
    fn signed_configuration(pk in any::<[u8; 32]>(), serial in any::<u64>(), key_id in any::<u8>(), pos in any::<prop::sample::Index>(), delta in 1u8..=255) {
        let config = HubConfiguration {
            serial,
            keys: vec![
                KeyConfig { key_id, key_use: 1, kem_id: 0x20, public_key: Opaque(pk.to_vec()),
                    symmetric: vec![SymmetricAlgorithm { kdf_id: 1, aead_id: 1 }], not_after: u64::MAX },
                KeyConfig { key_id, key_use: 2, kem_id: 0x20, public_key: Opaque(pk.to_vec()),
                    symmetric: vec![SymmetricAlgorithm { kdf_id: 1, aead_id: 3 }], not_after: u64::MAX },
            ],
        };
        let sk = SigningKey::from_bytes(&[9; 32]);
        let component = HubSigningKey::ed25519(&sk.verifying_key());
        let signed = config.clone().sign(&sk).unwrap();
        let bytes = signed.to_bytes().unwrap();
        let back = SignedHubConfiguration::from_bytes(&bytes).unwrap();
        let verified = back.verify(&component, 0).unwrap();
        prop_assert_eq!(verified.configuration(), &config);
        let mut bad = bytes.clone();
        let i = pos.index(bad.len());
        bad[i] = bad[i].wrapping_add(delta);
        if let Ok(changed) = SignedHubConfiguration::from_bytes(&bad) {
            prop_assert!(changed.verify(&component, 0).is_err());
        }
    }
}
