package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Opening a file that decides what the world is told (the configuration,
// the DNS cookie secret, the drain state file, DNSSEC keys) or that the
// daemon runs (notify.exec), the way OpenSSH's StrictModes checks
// authorized_keys (safe_path in misc.c): the file and every directory that
// leads to it, up to "/", must be owned by root or the running user and
// writable by nobody else. Two things go beyond safe_path:
//
//   - The check and the use cannot drift apart. The path is resolved one
//     component at a time with openat(2) from a descriptor of the directory
//     just checked, each directory is checked with fstat(2) on its own
//     descriptor, and the file is checked with fstat on the descriptor it is
//     then read from. Swapping a file or a directory after its check
//     changes nothing: the daemon already holds the one it checked.
//   - A directory that others may write is accepted when it is sticky
//     (mode 1000, as /tmp) and owned by root or the running user: there
//     only an entry's owner can rename or remove it (unlink(2), rename(2)
//     EPERM), so an entry that root or the running user owns cannot be
//     replaced. A symbolic link met in such a directory must then be owned
//     by root or the running user too (Linux's fs.protected_symlinks has the
//     same reason).

// MaxSafeFileSize is the largest file ReadSafe reads, in bytes (1 MiB):
// every file it serves is a few kilobytes, and a bound keeps a mistaken
// path (a log, a disk image) from being read into memory.
const MaxSafeFileSize = 1 << 20

// maxSymlinks bounds the symbolic links followed while resolving one path,
// as the kernel's own limit of 40 (path_resolution(7)); more is ELOOP.
const maxSymlinks = 40

// insecureHint ends every refusal: how to get past it while developing.
const insecureHint = " (or pass -allow-insecure-config for development)"

// OpenSafe opens the regular file at path for reading once it has checked,
// on the opened descriptor, that root or the running user (effective uid)
// owns it and that neither group nor others may write it, and, on the way
// to it, that every directory from "/" down is owned by root or the running
// user and writable by nobody else, or sticky. Symbolic links are followed
// (at most 40), each resolved from the directory that holds it. A relative
// path is taken from the working directory.
//
// Errors name the path, the file or directory at fault and the rule it
// breaks, and how to fix it. A fault that is only an owner (a file or
// directory owned by another user, mode otherwise fine) wraps
// ErrForeignOwner. A missing file wraps fs.ErrNotExist.
func OpenSafe(path string) (*os.File, error) {
	return openSafe(path, os.Geteuid(), false)
}

// ReadSafe reads the whole file at path through OpenSafe's checked
// descriptor and returns its contents and the FileInfo that was checked.
// A file larger than MaxSafeFileSize is an error. Errors are OpenSafe's, or
// name the path and the read that failed.
func ReadSafe(path string) ([]byte, fs.FileInfo, error) {
	f, err := OpenSafe(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("check %s: %w", path, err)
	}
	if fi.Size() > MaxSafeFileSize {
		return nil, nil, fmt.Errorf("%s: %d bytes, more than the %d a configuration, key or state file may have", path, fi.Size(), MaxSafeFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSafeFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > MaxSafeFileSize {
		return nil, nil, fmt.Errorf("%s: more than the %d bytes a configuration, key or state file may have", path, MaxSafeFileSize)
	}
	return b, fi, nil
}

// CheckExecutable applies OpenSafe's rules to a command the daemon runs
// (notify.exec): a regular file owned by root or the running user, that
// neither group nor others may write, in directories that only root or the
// running user can change (or sticky ones), and that its owner may
// execute. It does not need read permission: on Linux the file is opened
// with O_PATH. The command is run later by path; the directory rule is
// what keeps that path from being swapped in between. Errors are as
// OpenSafe's.
func CheckExecutable(path string) error {
	f, err := openSafe(path, os.Geteuid(), true)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o100 == 0 {
		return fmt.Errorf("%s: mode %04o: its owner may not execute it; run chmod u+x %s", path, fi.Mode().Perm(), path)
	}
	return nil
}

// dirEntry is a directory checked on the way to the file.
type dirEntry struct {
	fd   int
	name string // its path as resolved, for errors
	// shared is set for a sticky directory that others may write: an
	// entry there is safe only if root or the running user owns it.
	shared bool
}

// openSafe does OpenSafe's work for euid; exec opens the file with
// pathOpenFlags (no read permission needed) instead of for reading.
func openSafe(path string, euid int, exec bool) (*os.File, error) {
	if path == "" {
		return nil, errors.New("check: empty path")
	}
	full := path
	if !strings.HasPrefix(path, "/") {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("check %s: working directory: %w", path, err)
		}
		full = wd + "/" + path
	}
	rootFD, err := unix.Open("/", dirOpenFlags|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("check %s: open /: %w", path, err)
	}
	stack := []dirEntry{{fd: rootFD, name: "/"}}
	defer func() {
		for _, d := range stack {
			unix.Close(d.fd)
		}
	}()
	if stack[0].shared, err = checkDirFD(path, "/", rootFD, euid); err != nil {
		return nil, err
	}
	comps := splitPath(full)
	links := 0
	for len(comps) > 0 {
		name := comps[0]
		comps = comps[1:]
		top := stack[len(stack)-1]
		switch name {
		case ".":
			continue
		case "..":
			if len(stack) > 1 {
				unix.Close(top.fd)
				stack = stack[:len(stack)-1]
			}
			continue
		}
		at := joinPath(top.name, name)
		var lst unix.Stat_t
		if err := unix.Fstatat(top.fd, name, &lst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil, fmt.Errorf("check %s: %w", path, &fs.PathError{Op: "stat", Path: at, Err: err})
		}
		if lst.Mode&unix.S_IFMT == unix.S_IFLNK {
			if top.shared && !trustedUID(lst.Uid, euid) {
				return nil, fmt.Errorf("%s: symbolic link %s: %w: uid %d, in %s, which others may write; only a link owned by root or the running user (uid %d) is followed there"+insecureHint, path, at, ErrForeignOwner, lst.Uid, top.name, euid)
			}
			if links++; links > maxSymlinks {
				return nil, fmt.Errorf("check %s: %w", path, &fs.PathError{Op: "open", Path: at, Err: unix.ELOOP})
			}
			target, err := readlinkat(top.fd, name)
			if err != nil {
				return nil, fmt.Errorf("check %s: %w", path, &fs.PathError{Op: "readlink", Path: at, Err: err})
			}
			if strings.HasPrefix(target, "/") {
				for _, d := range stack[1:] {
					unix.Close(d.fd)
				}
				stack = stack[:1]
			}
			comps = append(splitPath(target), comps...)
			continue
		}
		if len(comps) > 0 { // a directory on the way
			fd, err := unix.Openat(top.fd, name, dirOpenFlags|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return nil, fmt.Errorf("check %s: %w", path, &fs.PathError{Op: "open", Path: at, Err: err})
			}
			stack = append(stack, dirEntry{fd: fd, name: at})
			if stack[len(stack)-1].shared, err = checkDirFD(path, at, fd, euid); err != nil {
				return nil, err
			}
			continue
		}
		flags := unix.O_RDONLY | unix.O_NONBLOCK // no hang on a FIFO put there
		if exec {
			flags = pathOpenFlags
		}
		fd, err := unix.Openat(top.fd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", path, &fs.PathError{Op: "open", Path: at, Err: err})
		}
		f := os.NewFile(uintptr(fd), path)
		fi, err := f.Stat()
		if err == nil {
			err = checkMode(path, fi, euid)
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	return nil, fmt.Errorf("%s: not a regular file", path) // "/" or a path ending in "/.."
}

// checkDirFD checks the directory open as fd, at name on the way to path:
// owned by root or euid, and writable by neither group nor others unless
// sticky. It reports whether the directory is sticky and writable by
// others, so that what is found in it must be owned by root or euid.
func checkDirFD(path, name string, fd, euid int) (shared bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, fmt.Errorf("check %s: %w", path, &fs.PathError{Op: "stat", Path: name, Err: err})
	}
	return checkDir(path, name, uint32(st.Mode), st.Uid, euid)
}

// checkDir is checkDirFD's rule on a directory's st_mode and owner.
func checkDir(path, name string, mode, uid uint32, euid int) (shared bool, err error) {
	perm := mode & 0o7777
	writable := perm&0o022 != 0
	sticky := perm&unix.S_ISVTX != 0
	switch {
	case mode&unix.S_IFMT != unix.S_IFDIR:
		return false, fmt.Errorf("%s: %s is not a directory", path, name)
	case writable && !sticky:
		return false, fmt.Errorf("%s: directory %s has mode %04o, which lets group or others replace what is in it; run chmod go-w %s"+insecureHint, path, name, perm, name)
	case !trustedUID(uid, euid):
		return false, fmt.Errorf("%s: directory %s is %w: uid %d, not root or the running user (uid %d); run chown root %s"+insecureHint, path, name, ErrForeignOwner, uid, euid, name)
	}
	return writable, nil
}

// trustedUID reports whether uid is root or euid.
func trustedUID(uid uint32, euid int) bool { return uid == 0 || int64(uid) == int64(euid) }

// splitPath returns the components of p, without empty ones.
func splitPath(p string) []string {
	var out []string
	for c := range strings.SplitSeq(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// joinPath appends name to the directory path dir, for messages.
func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// readlinkat returns the target of the symbolic link name in dirfd.
func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; size <= 1<<16; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
	return "", unix.ENAMETOOLONG
}
