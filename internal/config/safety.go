package config

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// CheckFileSafety refuses a file that someone other than root or the running
// user could change, as the original spdu did: the configuration decides what
// the world is told about the site. The file must be a regular file owned by
// uid 0 or by the effective uid, with neither group nor others allowed to
// write it, and so must every directory from "/" down to it (a sticky one,
// as /tmp, may be writable by others): OpenSafe's rules. The returned error
// says exactly which rule failed; the same check serves the drain state file
// and the DNS cookie secret.
//
// It only checks: a file read after it may have been swapped in between by
// root or the running user. Read the file with ReadSafe (or LoadChecked) to
// decode the very bytes that were checked.
func CheckFileSafety(path string) error {
	f, err := OpenSafe(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// ErrForeignOwner is wrapped by the errors of CheckFileSafety, OpenSafe,
// ReadSafe and CheckExecutable when the only fault is an owner (neither root
// nor the running user) of the file, of a directory on the way to it, or of
// a symbolic link in a sticky directory, as when root runs `check` on a state
// file the service user wrote in its own directory.
var ErrForeignOwner = errors.New("owned by another user")

func checkMode(path string, fi fs.FileInfo, euid int) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%s: mode %04o lets group or others write it; run chmod go-w %s"+insecureHint, path, perm, path)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot read the file's owner", path)
	}
	if !trustedUID(st.Uid, euid) {
		return fmt.Errorf("%s: %w: uid %d, not root or the running user (uid %d); run chown root %s"+insecureHint, path, ErrForeignOwner, st.Uid, euid, path)
	}
	return nil
}
