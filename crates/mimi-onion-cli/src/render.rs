//! The three commands that show parties' views: `demo`, `inspect`, `open`.
//! Text output fits in 80 columns; `--json` output is one object whose
//! field names are documented in this crate's README and stay stable.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use mimi_onion::balancer::Route;
use mimi_onion::hub::HubView;
use mimi_onion::mls::message::{ContentType, MessageInfo};
use mimi_onion::response::Status;
use mimi_onion::suite::HpkeSuite;
use mimi_onion::test_utils::{self, to_hex, DemoRecord, DemoWorld, Scene};
use mimi_onion::wire::Envelope;

use crate::files;
use crate::Failure;

/// The wall clock in Unix seconds: the CLI's clock for key expiry.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `hpke_suite` as every JSON output of this tool writes it.
fn suite_json(suite: HpkeSuite) -> Value {
    let (kem, kdf, aead) = suite.ids();
    json!({
        "name": suite.name(),
        "kem_id": format!("0x{kem:04x}"),
        "kdf_id": format!("0x{kdf:04x}"),
        "aead_id": format!("0x{aead:04x}"),
    })
}

fn route_json(route: Route) -> Value {
    match route {
        Route::Shard(s) => json!(s),
        Route::Unroutable => Value::Null,
    }
}

fn status_name(s: Status) -> String {
    match s {
        Status::Accepted => "accepted".into(),
        Status::Rejected(r) => format!("rejected ({})", r.name()),
    }
}

/// A short form of a long hex value: first and last four bytes.
fn short_hex(b: &[u8]) -> String {
    if b.len() <= 8 {
        return to_hex(b);
    }
    format!("{}..{}", to_hex(&b[..4]), to_hex(&b[b.len() - 4..]))
}

/// What a member read, quoted if it is text, cut to `max` characters.
fn quoted(b: &[u8], max: usize) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => {
            if s.chars().count() + 2 <= max {
                format!("\"{s}\"")
            } else {
                let cut: String = s.chars().take(max.saturating_sub(5)).collect();
                format!("\"{cut}...\"")
            }
        }
        _ => format!("{} bytes", b.len()),
    }
}

/// The front-end's view as JSON (the same fields in `open` and `demo`).
fn view_json(v: &HubView) -> Value {
    json!({
        "wire_format": v.wire_format.name(),
        "content_type": v.content_type.map(ContentType::name),
        "group_id": v.group_id.as_deref().map(to_hex),
        "epoch": v.epoch,
        "shard_id": v.token.map(|t| t.shard),
        "key_id": v.key_id,
        "key_layer_len": v.key_layer_len,
        "fanout_key": v.has_fanout_key,
        "message": to_hex(&v.message),
        "status": status_name(v.status),
    })
}

/// One demo message as JSON: the `manifest.json` of `--dump` and one entry
/// of `demo --json`.
fn record_json(rec: &DemoRecord) -> Result<Value, Failure> {
    let env = Envelope::parse(&rec.envelope)?;
    let info = MessageInfo::parse(&rec.message)?;
    Ok(json!({
        "name": rec.name,
        "wire_format": info.wire_format.name(),
        "content_type": info.content_type.map(ContentType::name),
        "group_id": info.group_id.map(to_hex),
        "epoch": info.epoch,
        "mls_suite": rec.mls_suite,
        "message_len": rec.message.len(),
        "envelope_len": rec.envelope.len(),
        "routing_token": to_hex(&env.header.token.0),
        "shard_id": route_json(rec.route),
        "key_id": env.header.key_id,
        "hpke_suite": suite_json(env.header.suite),
        "hub_view": rec.outcome.view.as_ref().map(|v| to_hex(&v.message)),
        "status": status_name(rec.status),
        "response_len": rec.outcome.response.len(),
        "token_pool_after": rec.pool_after,
        "policy_plaintext": rec.policy.as_ref().map(|a| to_hex(&a.content)),
        "sender_leaf": rec
            .policy
            .as_ref()
            .map(|a| a.sender_leaf)
            .or(rec.delivered.as_ref().map(|d| d.sender_leaf)),
        "followers": rec.fanouts.len(),
        "fanout_len": rec.fanouts.first().map(Vec::len),
        "member_plaintext": rec.delivered.as_ref().map(|d| to_hex(&d.content)),
    }))
}

/// Writes one message's files under `dir/<name>/`.
fn dump(dir: &Path, rec: &DemoRecord) -> Result<(), Failure> {
    let d = dir.join(&rec.name);
    files::create_dir(&d)?;
    files::write(&d.join("envelope.bin"), &rec.envelope)?;
    files::write(&d.join("response.bin"), &rec.outcome.response)?;
    if let Some(kl) = &rec.key_layer {
        files::write(&d.join("policy.bin"), kl)?;
    }
    for (i, f) in rec.fanouts.iter().enumerate() {
        files::write(&d.join(format!("fanout-{}.bin", i + 1)), f)?;
    }
    let text = serde_json::to_string_pretty(&record_json(rec)?)
        .map_err(|e| Failure::rejected(format!("manifest: {e}")))?;
    files::write(&d.join("manifest.json"), format!("{text}\n").as_bytes())
}

/// A line of a party's view: the party in a 19-column field, then text.
fn party(out: &mut String, who: &str, what: &str) {
    let _ = writeln!(out, "  {who:<18} {what}");
}

/// Checks the contract on one record: no group_id in the envelope or any
/// fan-out message (what the sender's provider, the load balancer and the
/// followers receive).
fn group_id_hidden(rec: &DemoRecord) -> bool {
    let Ok(info) = MessageInfo::parse(&rec.message) else {
        return false;
    };
    let Some(g) = info.group_id.filter(|g| !g.is_empty()) else {
        return true;
    };
    let contains = |hay: &[u8]| hay.windows(g.len()).any(|w| w == g);
    !contains(&rec.envelope) && !rec.fanouts.iter().any(|f| contains(f))
}

fn describe(out: &mut String, n: usize, total: usize, rec: &DemoRecord) -> Result<(), Failure> {
    let env = Envelope::parse(&rec.envelope)?;
    let info = MessageInfo::parse(&rec.message)?;
    let kind = match info.content_type {
        Some(c) => format!("{} {}", info.wire_format.name(), c.name()),
        None => info.wire_format.name().to_string(),
    };
    let _ = writeln!(
        out,
        "\n[{n}/{total}] {}: {kind}, {} bytes",
        rec.name,
        rec.message.len()
    );
    party(
        out,
        "sender's provider",
        &format!(
            "{}-byte envelope, token {}, key id {}",
            rec.envelope.len(),
            short_hex(&env.header.token.0),
            env.header.key_id
        ),
    );
    let route = match rec.route {
        Route::Shard(s) => format!("routes to shard {s} (one AES block)"),
        Route::Unroutable => "unroutable token: any front-end".into(),
    };
    party(out, "load balancer", &route);
    match &rec.outcome.view {
        Some(v) => {
            party(out, "hub front-end", &kind);
            let group = match (&v.group_id, v.epoch) {
                (Some(g), Some(e)) => format!("group {}, epoch {e}", short_hex(g)),
                _ => "names no group".into(),
            };
            party(out, "", &group);
            if v.key_layer_len > 0 {
                party(
                    out,
                    "",
                    &format!("+ a {}-byte key layer it cannot open", v.key_layer_len),
                );
            }
            party(out, "", &format!("-> {}", status_name(v.status)));
        }
        None => party(out, "hub front-end", "could not open the envelope"),
    }
    if let Some(a) = &rec.policy {
        party(
            out,
            "policy engine",
            &format!(
                "leaf {}: commitment and signatures verified,",
                a.sender_leaf
            ),
        );
        party(
            out,
            "",
            &format!(
                "read the {}-byte {}",
                a.content.len(),
                a.content_type.name()
            ),
        );
    }
    party(
        out,
        "sender",
        &format!(
            "{}-byte response: {}, pool {}",
            rec.outcome.response.len(),
            status_name(rec.status),
            rec.pool_after
        ),
    );
    if let Some(first) = rec.fanouts.first() {
        party(
            out,
            &format!("followers 1-{}", rec.fanouts.len()),
            &format!("a {}-byte fan-out message each", first.len()),
        );
    }
    if let Some(d) = &rec.delivered {
        party(
            out,
            "member (Bob)",
            &format!(
                "scanned {} epochs' hints; {} from leaf {}:",
                rec.member_held,
                d.content_type.name(),
                d.sender_leaf
            ),
        );
        party(out, "", &quoted(&d.content, 59));
    }
    Ok(())
}

fn scene_heading(scene: Scene) -> String {
    match scene {
        Scene::Official => "\n# Official RFC 9420 messages that name no room on the hub\n\
             #   (their GroupInfo lacks this hub's signing key: HUB-6 refuses it)"
            .into(),
        Scene::Registration => "\n# A new room registers itself with the hub".into(),
        Scene::Room {
            mls_suite,
            hpke_suite,
            members,
        } => format!(
            "\n# Room of MLS suite {mls_suite}, {members} members: Alice (leaf 1) sends\n\
             #   to Bob (leaf 0); envelopes under {}",
            hpke_suite.name()
        ),
    }
}

/// `mimi-onion demo [--dump DIR] [--json]`.
pub fn demo(dump_dir: Option<&Path>, as_json: bool) -> Result<(), Failure> {
    if let Some(dir) = dump_dir {
        files::prepare_dump_dir(dir)?;
    }
    let world = DemoWorld::new()?;
    let records = test_utils::run(now())?;
    if let Some(dir) = dump_dir {
        for rec in &records {
            dump(dir, rec)?;
        }
    }
    let accepted = records
        .iter()
        .filter(|r| r.status == Status::Accepted)
        .count();
    let hidden = records.iter().filter(|r| group_id_hidden(r)).count();
    let delivered = records.iter().filter(|r| r.delivered.is_some()).count();
    let to_members = records.iter().filter(|r| !r.fanouts.is_empty()).count();
    let exact = records
        .iter()
        .filter(|r| r.delivered.as_ref().is_some_and(|d| d.message == r.message))
        .count();
    if as_json {
        let messages = records
            .iter()
            .map(record_json)
            .collect::<Result<Vec<_>, _>>()?;
        let doc = json!({
            "hub_configuration_serial": world.signed_config.configuration.serial,
            "messages": messages,
            "summary": {
                "messages": records.len(),
                "accepted": accepted,
                "group_id_hidden": hidden,
                "fanned_out": to_members,
                "delivered": delivered,
                "delivered_byte_for_byte": exact,
            },
            "dump": dump_dir.map(|d| d.display().to_string()),
        });
        println!("{doc}");
    } else {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "mimi-onion demo: one hub, its load balancer, two follower providers.\n\
             The hub's keys are fixed demo keys; the MLS messages are the official\n\
             RFC 9420 test vectors and rooms built from them with real signatures.\n\
             \n\
             The client accepted the hub's configuration (serial {}, {} keys) only\n\
             because its signature verifies under the key the group names (CFG-1).",
            world.signed_config.configuration.serial,
            world.signed_config.configuration.keys.len(),
        );
        let mut scene = None;
        for (i, rec) in records.iter().enumerate() {
            if scene != Some(rec.scene) {
                scene = Some(rec.scene);
                out.push_str(&scene_heading(rec.scene));
                out.push('\n');
            }
            describe(&mut out, i + 1, records.len(), rec)?;
        }
        let _ = write!(
            out,
            "\nSummary: {} messages, {accepted} accepted by the hub.\n\
             - Sender's provider and load balancer saw a token, a key id and a\n\
             \x20 padded size: no group_id, epoch, message type or key\n\
             \x20 (group_id absent from {hidden} of {} envelopes and fan-out sets).\n\
             - Hub front-end saw group, epoch and type, never a message key;\n\
             \x20 the policy engine alone read the proposal and the commit.\n\
             - Followers saw {to_members} sets of fan-out messages: nonce, hint,\n\
             \x20 ciphertext.\n\
             - Bob opened {delivered} of them, {exact} byte for byte as Alice sent them.\n",
            records.len(),
            records.len(),
        );
        if let Some(dir) = dump_dir {
            let _ = writeln!(
                out,
                "\nWrote {} message folders under {}",
                records.len(),
                dir.display()
            );
        }
        print!("{out}");
    }
    if hidden != records.len() || exact != delivered || delivered != to_members {
        return Err(Failure::rejected(
            "the demo broke the contract (see the summary)",
        ));
    }
    Ok(())
}

/// `mimi-onion inspect [--json] FILE`.
pub fn inspect(file: &Path, as_json: bool) -> Result<(), Failure> {
    let bytes = files::read_envelope(file)?;
    let world = DemoWorld::new()?;
    let route = world.balancer.route(&bytes);
    let env = Envelope::parse(&bytes)
        .map_err(|e| Failure::rejected(format!("{}: not an envelope: {e}", file.display())))?;
    let h = env.header;
    if as_json {
        let doc = json!({
            "file": file.display().to_string(),
            "envelope_len": bytes.len(),
            "version": mimi_onion::wire::VERSION,
            "routing_token": to_hex(&h.token.0),
            "codepoint": h.token.codepoint(),
            "shard_id": route_json(route),
            "key_id": h.key_id,
            "hpke_suite": suite_json(h.suite),
            "enc": to_hex(env.enc),
            "sealed_hub_layer_len": env.sealed_hub_layer.len(),
        });
        println!("{doc}");
        return Ok(());
    }
    let route = match route {
        Route::Shard(s) => format!("shard {s} (under the demo token keys)"),
        Route::Unroutable => "unroutable".into(),
    };
    let (kem, kdf, aead) = h.suite.ids();
    let mut out = String::new();
    let _ = writeln!(out, "envelope, {} bytes: {}", bytes.len(), file.display());
    party(&mut out, "version", &mimi_onion::wire::VERSION.to_string());
    party(&mut out, "routing token", &to_hex(&h.token.0));
    party(&mut out, "codepoint", &h.token.codepoint().to_string());
    party(&mut out, "load balancer", &route);
    party(&mut out, "hub key id", &h.key_id.to_string());
    party(
        &mut out,
        "hpke suite",
        &format!(
            "{} (0x{kem:04x}, 0x{kdf:04x}, 0x{aead:04x})",
            h.suite.name()
        ),
    );
    party(&mut out, "enc", &short_hex(env.enc));
    party(
        &mut out,
        "sealed hub layer",
        &format!("{} bytes (a padded size)", env.sealed_hub_layer.len()),
    );
    party(
        &mut out,
        "not visible",
        "group_id, epoch, message type, sender, keys",
    );
    print!("{out}");
    Ok(())
}

/// `mimi-onion open --demo-keys [--json] FILE`.
pub fn open(file: &Path, as_json: bool) -> Result<(), Failure> {
    let bytes = files::read_envelope(file)?;
    let mut world = DemoWorld::new()?;
    let mut client = world.client()?;
    test_utils::provision(&mut world, &mut client)?;
    let outcome = world.hub.handle(&bytes, now());
    let Some(v) = outcome.view else {
        return Err(Failure::rejected(format!(
            "{}: the demo hub cannot open this envelope (it answers {} random bytes)",
            file.display(),
            outcome.response.len()
        )));
    };
    // The policy engine's own log, not the front-end's view.
    let policy = (v.key_layer_len > 0).then(|| world.hub.policy().audit().last().cloned());
    if as_json {
        let policy_json = match &policy {
            None => Value::Null,
            Some(None) => json!({ "accepted": false }),
            Some(Some(a)) => json!({
                "accepted": true,
                "sender_leaf": a.sender_leaf,
                "content_type": a.content_type.name(),
                "plaintext": to_hex(&a.content),
            }),
        };
        let doc = json!({
            "file": file.display().to_string(),
            "envelope_len": bytes.len(),
            "hub_view": view_json(&v),
            "policy": policy_json,
            "response_len": outcome.response.len(),
        });
        println!("{doc}");
        return Ok(());
    }
    let mut out = String::new();
    let _ = writeln!(out, "the demo hub opened {}", file.display());
    party(&mut out, "wire format", v.wire_format.name());
    party(
        &mut out,
        "content type",
        v.content_type.map_or("-", ContentType::name),
    );
    party(
        &mut out,
        "group_id",
        &v.group_id.as_deref().map_or("-".into(), to_hex),
    );
    party(
        &mut out,
        "epoch",
        &v.epoch.map_or("-".into(), |e| e.to_string()),
    );
    party(
        &mut out,
        "token",
        &v.token
            .map_or("unroutable".into(), |t| format!("shard {}", t.shard)),
    );
    party(&mut out, "key layer", &format!("{} bytes", v.key_layer_len));
    party(
        &mut out,
        "F",
        if v.has_fanout_key {
            "present"
        } else {
            "absent"
        },
    );
    party(&mut out, "verdict", &status_name(v.status));
    party(
        &mut out,
        "message",
        &format!("{} bytes, hex:", v.message.len()),
    );
    for chunk in to_hex(&v.message).as_bytes().chunks(64) {
        let _ = writeln!(out, "    {}", String::from_utf8_lossy(chunk));
    }
    match policy {
        None => {}
        Some(None) => {
            let _ = writeln!(out, "policy engine: rejected the key layer or the message");
        }
        Some(Some(a)) => {
            let _ = writeln!(
                out,
                "policy engine: opened the key layer of leaf {}; commitment and\n\
                 signatures verified; the {}-byte {}, hex:",
                a.sender_leaf,
                a.content.len(),
                a.content_type.name()
            );
            for chunk in to_hex(&a.content).as_bytes().chunks(64) {
                let _ = writeln!(out, "    {}", String::from_utf8_lossy(chunk));
            }
        }
    }
    print!("{out}");
    Ok(())
}
