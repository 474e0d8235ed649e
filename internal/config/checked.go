package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// LoadChecked loads the configuration at path. Unless allowInsecure, the
// file is opened once, checked on its descriptor with every directory
// above it (OpenSafe: owned by root or the running user, not writable by
// group or others) and read from that descriptor (ReadSafe), so it cannot
// be swapped between the check and the read. A missing file is reported
// as such. Errors name the file and the rule or key.
func LoadChecked(path string, allowInsecure bool) (*Config, error) {
	missing := func() error {
		return fmt.Errorf("configuration file %s does not exist (give another with -config)", path)
	}
	if allowInsecure {
		cfg, err := Load(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, missing()
		}
		return cfg, err
	}
	b, _, err := ReadSafe(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, missing()
	case err != nil:
		return nil, fmt.Errorf("unsafe configuration: %w", err)
	}
	cfg, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// SideFileReader returns how the daemon reads the files the configuration
// names that decide what the world is told (the DNS cookie secret, the
// drain state file, DNSSEC keys): once, checked on the descriptor as the
// configuration is (ReadSafe), or, with allowInsecure, plainly.
func SideFileReader(allowInsecure bool) func(path string) ([]byte, error) {
	if allowInsecure {
		return os.ReadFile
	}
	return func(path string) ([]byte, error) {
		b, _, err := ReadSafe(path)
		return b, err
	}
}

// LoadDaemon is LoadChecked plus the same check of the other files that
// decide what the world is told: the DNS cookie secret
// (dns.cookie_secret_file, when set), the drain state file
// (control.state_file, when it exists; a missing one is a site never
// drained) and the notification command (notify.exec: also its execute
// permission). run, check and every reload use it; the client commands
// (drain, resume, status) only need the socket path and use LoadChecked.
// When the only fault is the state file's owner, the error is a
// *StateOwnerWarning. Errors name the key.
func LoadDaemon(path string, allowInsecure bool) (*Config, error) {
	cfg, err := LoadChecked(path, allowInsecure)
	if err != nil || allowInsecure {
		return cfg, err
	}
	if f := cfg.DNS.CookieSecretFile; f != "" {
		if err := CheckFileSafety(f); err != nil {
			return nil, fmt.Errorf("unsafe dns.cookie_secret_file: %w", err)
		}
	}
	if len(cfg.Notify.Exec) > 0 {
		if err := CheckExecutable(cfg.Notify.Exec[0]); err != nil {
			return nil, fmt.Errorf("unsafe notify.exec: %w", err)
		}
	}
	if f := cfg.Control.StateFile; f != "" {
		if err := CheckFileSafety(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("unsafe control.state_file: %w", err)
			if errors.Is(err, ErrForeignOwner) {
				return nil, &StateOwnerWarning{Config: cfg, Err: err}
			}
			return nil, err
		}
	}
	return cfg, nil
}

// StateOwnerWarning is LoadDaemon's error when the only fault is the
// state file's owner (or its directory's). run and reload refuse it like
// any other; check only warns, because root running check sees the file
// the service user wrote.
type StateOwnerWarning struct {
	// Config is the configuration, valid but for the warning.
	Config *Config
	// Err says which file and owner.
	Err error
}

func (w *StateOwnerWarning) Error() string { return w.Err.Error() }
func (w *StateOwnerWarning) Unwrap() error { return w.Err }
