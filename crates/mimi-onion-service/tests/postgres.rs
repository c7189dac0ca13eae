//! A hub shard whose state is in PostgreSQL (`--postgres`), against the
//! server of env `MIMI_ONION_PG_URL` (CI starts one; skipped without it):
//! a registration and a message, then a restart of the process, after
//! which the room is still there and usable.

mod common;

use common::*;
use mimi_onion::mls::message::ContentType;
use mimi_onion::response::Status;
use mimi_onion_service::client::{DemoRoom, HubClient};
use mimi_onion_service::keys::read_signing_key;

#[test]
fn hub_state_in_postgres_survives_a_restart() {
    let Some(url) = std::env::var("MIMI_ONION_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        println!("skipped: MIMI_ONION_PG_URL is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    make_keys(dir.path());
    let d = dir.path();
    let schema = format!("svc_test_{}", std::process::id());
    let start = |name: &str| {
        spawn(
            name,
            d,
            &[
                "hub".into(),
                "--keys".into(),
                path(&d.join("keys/hub-keys.json")),
                "--shard".into(),
                "0".into(),
                "--data".into(),
                path(&d.join("data")),
                "--postgres".into(),
                url.clone(),
                "--postgres-schema".into(),
                schema.clone(),
                "--trust-provider-header".into(),
            ],
        )
    };
    let key = read_signing_key(&d.join("keys/hub-signing-key.hex")).unwrap();
    // A room on shard 0, so that this one shard holds it.
    let keys = mimi_onion_service::keys::HubKeys::read(&d.join("keys/hub-keys.json")).unwrap();
    let room = rooms_on_both_shards(&keys, "pg.example", "room-", 1).remove(0);
    let gid = format!("pg.example/{room}").into_bytes();
    let mut room = DemoRoom::new(&gid, &key).unwrap();
    {
        let hub = start("pg-hub-1");
        let mut client = HubClient::connect(&hub.url, &key, Some("pg.example")).unwrap();
        assert_eq!(room.register(&mut client).unwrap(), Status::Accepted);
        assert_eq!(
            room.send(&mut client, 0, ContentType::Application, b"before")
                .unwrap(),
            Status::Accepted
        );
        let stats = get_json(&hub.url, "/v1/stats");
        assert_eq!(stats["store"]["groups"], 1, "{stats}");
    }
    let hub = start("pg-hub-2");
    let stats = get_json(&hub.url, "/v1/stats");
    assert_eq!(stats["store"]["groups"], 1, "{stats}");
    let mut client = HubClient::connect(&hub.url, &key, Some("pg.example")).unwrap();
    assert_eq!(
        room.send(&mut client, 0, ContentType::Application, b"after")
            .unwrap(),
        Status::Accepted
    );
}
