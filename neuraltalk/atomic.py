"""Every file the project writes is written atomically: a crash, Ctrl-C or SIGTERM never
leaves half a file where a good one was, and a new file gets the user's umask."""
import os
import secrets
import stat


def atomic_write(path, write, by_name=False):
    """Replace `path` with what `write(f)` writes to a binary file, atomically: a crash
    never leaves half a file there. A new file gets the mode open() would give it (0666
    less the umask); a rewritten one keeps its permissions. With `by_name`, `write` gets
    the temporary file's path instead, for libraries that open files themselves (h5py's
    file-object driver wants a readable file and is slower than its own)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    try:
        keep_mode = stat.S_IMODE(os.stat(path).st_mode) & 0o777
    except FileNotFoundError:
        keep_mode = None
    # Not tempfile.mkstemp: its files are 0600 and os.replace keeps that. A random name
    # opened with O_EXCL is as safe, and the kernel applies the umask to 0666.
    tmp = os.path.join(folder, ".tmp-" + secrets.token_hex(8))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if keep_mode is not None:
                os.chmod(tmp, keep_mode)
            write(tmp if by_name else f)
            f.flush()
            # fsync flushes the file, whichever descriptor wrote it
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # including KeyboardInterrupt: remove the partial file
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path, text):
    """Write a text file (JSON, HTML) atomically, as checkpoints are."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
