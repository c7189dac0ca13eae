//! Media types, paths and header names of the service's HTTP interface.

/// An envelope, POSTed to [`ENVELOPE_PATH`].
pub const ENVELOPE: &str = "application/mimi-onion-envelope";
/// The hub response to an envelope (fixed size per suite, RSP-1).
pub const RESPONSE: &str = "application/mimi-onion-response";
/// A serialized `SignedHubConfiguration`, from [`CONFIGURATION_PATH`].
pub const CONFIGURATION: &str = "application/mimi-onion-hub-config";
/// One fan-out message, POSTed to a follower's [`DELIVERIES_PATH`].
pub const FANOUT: &str = "application/mimi-onion-fanout";
/// Several fan-out deliveries in one POST, in order: a [`FANOUT_LIST`]
/// framing of items, each itself a [`FANOUT_LIST`] of three parts: the
/// idempotency key, the recipient queues (comma separated) and the fan-out
/// message.
pub const FANOUT_BATCH: &str = "application/mimi-onion-fanout-batch";
/// A recipient queue: fan-out messages, each as a 4-byte big-endian
/// length and its bytes.
pub const FANOUT_LIST: &str = "application/mimi-onion-fanout-list";

/// Where envelopes go (hub and balancer).
pub const ENVELOPE_PATH: &str = "/v1/envelope";
/// Where the signed configuration is served (hub; the balancer passes it on).
pub const CONFIGURATION_PATH: &str = "/v1/configuration";
/// Counters of a process, as JSON (every process).
pub const STATS_PATH: &str = "/v1/stats";
/// Where a follower takes fan-out deliveries.
pub const DELIVERIES_PATH: &str = "/v1/deliveries";
/// A follower's recipient queues: `/v1/queues/<queue>`.
pub const QUEUES_PREFIX: &str = "/v1/queues/";

/// The authenticated sending provider, as the provider's trusted gateway
/// (or the hub's balancer in front of it) names it (ADM-1). A hub reads it
/// only with `--trust-provider-header`.
pub const PROVIDER_HEADER: &str = "mimi-onion-provider";
/// Set by a hub front-end that forwards an envelope to the shard holding
/// its group: the receiver processes it without forwarding again.
pub const FORWARDED_HEADER: &str = "mimi-onion-forwarded";
/// The recipient queues of a fan-out delivery, comma separated.
pub const QUEUES_HEADER: &str = "mimi-onion-queues";
/// The idempotency key of a fan-out delivery: a retry carries the same
/// key and the follower keeps one copy.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// How long a client may cache the configuration (seconds), at most: the
/// `max-age` is the smaller of this and the time to the first key expiry.
pub const CONFIGURATION_MAX_AGE: u64 = 3600;

/// Frames messages as a [`FANOUT_LIST`] body.
pub fn encode_list<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        out.extend_from_slice(&(item.len() as u32).to_be_bytes());
        out.extend_from_slice(item);
    }
    out
}

/// Reads a [`FANOUT_LIST`] body; `None` if it is not one.
pub fn decode_list(mut bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let item = bytes.get(4..4usize.checked_add(len)?)?;
        out.push(item.to_vec());
        bytes = &bytes[4 + len..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn list_round_trip() {
        let items: Vec<&[u8]> = vec![b"a", b"", b"ccc"];
        let enc = super::encode_list(items.iter().copied());
        assert_eq!(
            super::decode_list(&enc).unwrap(),
            vec![b"a".to_vec(), vec![], b"ccc".to_vec()]
        );
        assert!(super::decode_list(&enc[..enc.len() - 1]).is_none());
    }
}
