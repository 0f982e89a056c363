//! Durable file replacement, used for every file the project writes: the new content goes to a
//! temporary file next to the target, is flushed to disk (`fsync`), renamed over the target,
//! and the directory is flushed too, so that a crash, a kill or a full disk leaves either the
//! old file or the new one, never a mix, and a finished write survives a power loss.

use std::{
    fs::File,
    io::{self, Write},
    path::{Path, PathBuf},
};

/// The temporary sibling a write of `path` goes through (`dir/.name.tmp`).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp"))
}

/// Replaces `path` with `bytes` durably (see the module documentation). On failure the
/// temporary file is removed and `path` is untouched.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path);
    let written = File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    commit(&tmp, path)
}

/// Flushes the finished file `tmp` to disk, renames it over `path`, and flushes the directory.
/// For files that another writer produced (a recorder, say) at a temporary path.
pub fn commit(tmp: &Path, path: &Path) -> io::Result<()> {
    File::open(tmp)?.sync_all()?;
    std::fs::rename(tmp, path)?;
    sync_dir(path)
}

/// Flushes the directory holding `path`, so that a rename into it is on disk.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // Directories can be opened and synced on Unix; elsewhere this is best effort.
    match File::open(dir) {
        Ok(handle) => handle.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("blt-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        write_atomically(&path, b"old").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert!(!temp_path(&path).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = std::env::temp_dir().join(format!("blt-fs-fail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("summary.json");
        write_atomically(&path, b"kept").unwrap();
        // The temporary path is taken by a directory, so the write cannot start.
        std::fs::create_dir_all(temp_path(&path)).unwrap();
        assert!(write_atomically(&path, b"lost").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"kept");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
