//! The `mimi-onion` command line: the demo, and tools to look at envelopes
//! as a provider, a load balancer or the demo hub sees them.

use std::path::PathBuf;
use std::process::ExitCode;

use mimi_onion::balancer::Route;
use mimi_onion::demo::{self, to_hex, DemoWorld};
use mimi_onion::mls::message::ContentType;
use mimi_onion::response::Status;
use mimi_onion::wire::Envelope;

const USAGE: &str = "\
usage:
  mimi-onion demo [--dump DIR]       run the flow on embedded defaults, party by party
  mimi-onion inspect FILE            what a provider or load balancer can read of an envelope
  mimi-onion open --demo-keys FILE   open an envelope as the demo hub
  mimi-onion vectors generate DIR    write the test vectors (feature `vectors`)
  mimi-onion vectors verify DIR      check the test vectors (feature `vectors`)
  mimi-onion help";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match argv.as_slice() {
        ["demo"] => cmd_demo(None),
        ["demo", "--dump", dir] => cmd_demo(Some(PathBuf::from(dir))),
        ["inspect", file] => cmd_inspect(file),
        ["open", "--demo-keys", file] => cmd_open(file),
        ["vectors", "generate", dir] => cmd_vectors(true, dir),
        ["vectors", "verify", dir] => cmd_vectors(false, dir),
        ["help"] | ["--help"] | ["-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unrecognised arguments\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cmd_demo(dump: Option<PathBuf>) -> Result<(), String> {
    let mut out = String::new();
    let records = demo::run(&mut out, dump.as_deref()).map_err(|e| e.to_string())?;
    print!("{out}");
    if let Some(dir) = dump {
        println!(
            "\nwrote {} message folders under {}",
            records.len(),
            dir.display()
        );
    }
    Ok(())
}

#[cfg(feature = "vectors")]
fn cmd_vectors(generate: bool, dir: &str) -> Result<(), String> {
    let dir = std::path::Path::new(dir);
    if generate {
        mimi_onion::vectors::generate(dir).map_err(|e| e.to_string())?;
        println!(
            "wrote {} files to {}",
            mimi_onion::vectors::FILES.len(),
            dir.display()
        );
    } else {
        let n = mimi_onion::vectors::verify(dir).map_err(|e| e.to_string())?;
        println!(
            "{n} checks passed: the files equal the regenerated vectors and every entry verifies"
        );
    }
    Ok(())
}

#[cfg(not(feature = "vectors"))]
fn cmd_vectors(_: bool, _: &str) -> Result<(), String> {
    Err("built without the `vectors` feature: cargo run --features vectors -- vectors ...".into())
}

fn read(file: &str) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|e| format!("cannot read {file}: {e}"))
}

fn cmd_inspect(file: &str) -> Result<(), String> {
    let bytes = read(file)?;
    let world = DemoWorld::new().map_err(|e| e.to_string())?;
    let route = match world.balancer.route(&bytes) {
        Route::Shard(s) => format!("shard {s} (under the demo token keys)"),
        Route::Unroutable => "unroutable".into(),
    };
    let env = Envelope::parse(&bytes).map_err(|e| format!("not an envelope: {e}"))?;
    let h = env.header;
    println!("envelope, {} bytes", bytes.len());
    println!("  version          1");
    println!(
        "  routing token    {} (codepoint {})",
        to_hex(&h.token.0),
        h.token.codepoint()
    );
    println!("  load balancer    {route}");
    println!("  hub key id       {}", h.key_id);
    let (kem, kdf, aead) = h.suite.ids();
    println!(
        "  hpke suite       {} (0x{kem:04x}, 0x{kdf:04x}, 0x{aead:04x})",
        h.suite.name()
    );
    println!("  enc              {}", to_hex(env.enc));
    println!(
        "  sealed hub layer {} bytes (padded size bucket)",
        env.sealed_hub_layer.len()
    );
    println!("  not visible      group_id, epoch, message type, sender, keys");
    Ok(())
}

fn cmd_open(file: &str) -> Result<(), String> {
    let bytes = read(file)?;
    let mut world = DemoWorld::new().map_err(|e| e.to_string())?;
    let mut client = world.client().map_err(|e| e.to_string())?;
    demo::provision(&mut world, &mut client).map_err(|e| e.to_string())?;
    let outcome = world.hub.handle(&bytes);
    let Some(v) = outcome.view else {
        return Err(format!(
            "the envelope could not be opened with the demo keys; the hub answers {} random bytes",
            outcome.response.len()
        ));
    };
    println!("hub front-end opened the envelope");
    println!("  wire format      {}", v.wire_format.name());
    println!(
        "  content type     {}",
        v.content_type.map_or("-", ContentType::name)
    );
    println!(
        "  group_id         {}",
        v.group_id.as_deref().map_or("-".into(), to_hex)
    );
    println!(
        "  epoch            {}",
        v.epoch.map_or("-".into(), |e| e.to_string())
    );
    println!(
        "  token            {}",
        v.token
            .map_or("unroutable".into(), |t| format!("shard {}", t.shard))
    );
    println!("  key layer        {} bytes", v.key_layer_len);
    println!(
        "  F                {}",
        if v.has_fanout_key {
            "present"
        } else {
            "absent"
        }
    );
    println!("  message          {}", to_hex(&v.message));
    if v.key_layer_len > 0 {
        // The policy engine's own log (not the front-end's view).
        match world.hub.policy().audit().last() {
            Some(a) => println!(
                "policy engine     opened the key layer: leaf {}, commitment and signatures verified; {} {}",
                a.sender_leaf,
                a.content_type.name(),
                to_hex(&a.content)
            ),
            None => println!("policy engine     rejected the key layer or the message"),
        }
    }
    match v.status {
        Status::Accepted => println!("  verdict          accepted"),
        Status::Rejected(r) => println!("  verdict          rejected ({})", r.name()),
    }
    Ok(())
}
