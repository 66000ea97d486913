//! Opening the files native nodes read and write: regular files only.
//!
//! A FIFO, socket or device path would block a node's thread in `open` or `read` past its
//! timeout (and keep the process from exiting), so such paths are refused. The path is
//! checked before opening, and the file is opened with `O_NONBLOCK` and checked again
//! (`fstat`), so a FIFO swapped in between cannot block either; the flag is then cleared.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::path::Path;

use crate::node::{codes, NodeFailure};

/// What a non-regular file is, for messages.
fn kind(meta: &Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let ty = meta.file_type();
        if ty.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ty.is_socket() {
            return "a socket";
        }
        if ty.is_char_device() || ty.is_block_device() {
            return "a device";
        }
    }
    if meta.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

fn not_regular(path: &Path, meta: &Metadata, field: &str) -> NodeFailure {
    let what = kind(meta);
    NodeFailure::new(
        codes::INVALID_PATH,
        format!(
            "`{field}`: {} is {what}; native nodes read and write regular files only",
            path.display()
        ),
    )
    .with_field(field)
}

/// `Err` unless `meta` is a regular file's.
fn require_regular(path: &Path, meta: &Metadata, field: &str) -> Result<(), NodeFailure> {
    if meta.is_file() {
        Ok(())
    } else {
        Err(not_regular(path, meta, field))
    }
}

/// Opens with `O_NONBLOCK`, checks the open file, and clears the flag.
fn open_checked(
    path: &Path,
    options: &mut OpenOptions,
    field: &str,
    doing: &str,
) -> Result<File, NodeFailure> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| {
        // A FIFO opened for writing with no reader fails with ENXIO rather than blocking.
        match std::fs::metadata(path) {
            Ok(meta) if !meta.is_file() => not_regular(path, &meta, field),
            _ => NodeFailure::io(doing, path, &e).with_field(field),
        }
    })?;
    let meta = file
        .metadata()
        .map_err(|e| NodeFailure::io(doing, path, &e).with_field(field))?;
    require_regular(path, &meta, field)?;
    clear_nonblocking(&file).map_err(|e| NodeFailure::io(doing, path, &e).with_field(field))?;
    Ok(file)
}

#[cfg(unix)]
fn clear_nonblocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is an open descriptor owned by `file` for the duration of both calls.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above; only the status flags change.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(unix))]
fn clear_nonblocking(_file: &File) -> io::Result<()> {
    Ok(())
}

/// Opens `path` (the parameter `field`) for reading; `Ok(None)` when it does not exist and
/// `missing_ok`.
///
/// # Errors
/// `invalid_path` for anything but a regular file, `io_error` when it cannot be opened.
pub fn open_read_opt(
    path: &Path,
    field: &str,
    missing_ok: bool,
) -> Result<Option<File>, NodeFailure> {
    match std::fs::metadata(path) {
        Err(e) if missing_ok && e.kind() == io::ErrorKind::NotFound => Ok(None),
        _ => open_read(path, field).map(Some),
    }
}

/// Opens `path` (the parameter `field`) for reading.
///
/// # Errors
/// `invalid_path` for anything but a regular file, `io_error` when it cannot be opened.
pub fn open_read(path: &Path, field: &str) -> Result<File, NodeFailure> {
    let meta =
        std::fs::metadata(path).map_err(|e| NodeFailure::io("open", path, &e).with_field(field))?;
    require_regular(path, &meta, field)?;
    open_checked(path, OpenOptions::new().read(true), field, "open")
}

/// Opens `path` (the parameter `field`) for appending, creating it if missing.
///
/// # Errors
/// `invalid_path` for anything but a regular file, `io_error` when it cannot be opened.
pub fn open_append(path: &Path, field: &str) -> Result<File, NodeFailure> {
    check_target(path, field)?;
    open_checked(
        path,
        OpenOptions::new().append(true).create(true),
        field,
        "open",
    )
}

/// Succeeds when `path` (the parameter `field`) does not exist or is a regular file: a
/// file about to be replaced must not be a FIFO, socket, device or folder.
///
/// # Errors
/// `invalid_path` otherwise.
pub fn check_target(path: &Path, field: &str) -> Result<(), NodeFailure> {
    match std::fs::metadata(path) {
        Ok(meta) => require_regular(path, &meta, field),
        Err(_) => Ok(()),
    }
}

/// Creates `path`, which must not exist (a temporary file), for writing.
///
/// # Errors
/// `io_error` when it cannot be created.
pub fn create_new(path: &Path, target: &Path, field: &str) -> Result<File, NodeFailure> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| NodeFailure::io("create", target, &e).with_field(field))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn fifos_and_folders_are_refused_without_blocking() {
        let dir = std::env::temp_dir().join(format!("polyhost-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("pipe");
        mkfifo(&fifo);
        for err in [
            open_read(&fifo, "path").unwrap_err(),
            open_append(&fifo, "path").unwrap_err(),
            check_target(&fifo, "path").unwrap_err(),
            open_read(&dir, "path").unwrap_err(),
        ] {
            assert_eq!(err.code, codes::INVALID_PATH, "{err}");
            assert_eq!(err.field.as_deref(), Some("path"));
        }
        assert!(open_read(&fifo, "path")
            .unwrap_err()
            .message
            .contains("FIFO"));
        let file = dir.join("a.txt");
        std::fs::write(&file, "x").unwrap();
        let mut f = open_read(&file, "path").unwrap();
        let mut text = String::new();
        io::Read::read_to_string(&mut f, &mut text).unwrap();
        assert_eq!(text, "x");
        assert!(open_read_opt(&dir.join("none"), "path", true)
            .unwrap()
            .is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
