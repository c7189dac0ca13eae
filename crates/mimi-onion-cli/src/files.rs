//! File input and output with the errors a user can act on: every message
//! names the path and the operating system's error, every read is bounded.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use mimi_onion::wire::MAX_ENVELOPE_LEN;

use crate::Failure;

/// Reads an envelope file: at most [`MAX_ENVELOPE_LEN`] bytes (the largest
/// legal envelope), so `/dev/zero` or a huge file is refused after that
/// many bytes instead of read forever.
pub fn read_envelope(path: &Path) -> Result<Vec<u8>, Failure> {
    let file = File::open(path)
        .map_err(|e| Failure::rejected(format!("cannot open {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(MAX_ENVELOPE_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::rejected(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() > MAX_ENVELOPE_LEN {
        return Err(Failure::rejected(format!(
            "{}: larger than the largest legal envelope ({MAX_ENVELOPE_LEN} bytes)",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Prepares the `--dump` folder: it must not exist yet or be empty, so that
/// a dump never mixes with (or silently overwrites) other files.
pub fn prepare_dump_dir(dir: &Path) -> Result<(), Failure> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Failure::rejected(format!(
                    "{}: folder exists and is not empty; choose a new one",
                    dir.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(dir)
            .map_err(|e| Failure::rejected(format!("cannot create {}: {e}", dir.display()))),
        Err(e) => Err(Failure::rejected(format!(
            "cannot use {} as the dump folder: {e}",
            dir.display()
        ))),
    }
}

/// Writes one file, naming it in the error.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, bytes)
        .map_err(|e| Failure::rejected(format!("cannot write {}: {e}", path.display())))
}

/// Creates one folder, naming it in the error.
pub fn create_dir(path: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(path)
        .map_err(|e| Failure::rejected(format!("cannot create {}: {e}", path.display())))
}
