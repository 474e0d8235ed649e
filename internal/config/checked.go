package config

import (
	"errors"
	"fmt"
	"os"
)

// LoadChecked checks who may change the file at path (CheckFileSafety),
// unless allowInsecure, then loads it (Load). Errors name the file and the
// rule or key.
func LoadChecked(path string, allowInsecure bool) (*Config, error) {
	if !allowInsecure {
		if err := CheckFileSafety(path); err != nil {
			return nil, fmt.Errorf("unsafe configuration: %w", err)
		}
	}
	return Load(path)
}

// LoadDaemon is LoadChecked plus the same check of the other files that
// decide what the world is told: the DNS cookie secret
// (dns.cookie_secret_file, when set) and the drain state file
// (control.state_file, when it exists; a missing one is a site never
// drained). run, check and every reload use it; the client commands
// (drain, resume, status) only need the socket path and use LoadChecked.
// When the only fault is the state file's owner, the error is a
// *StateOwnerWarning.
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
	if f := cfg.Control.StateFile; f != "" {
		if _, err := os.Stat(f); err == nil {
			if err := CheckFileSafety(f); err != nil {
				err = fmt.Errorf("unsafe control.state_file: %w", err)
				if errors.Is(err, ErrForeignOwner) {
					return nil, &StateOwnerWarning{Config: cfg, Err: err}
				}
				return nil, err
			}
		}
	}
	return cfg, nil
}

// StateOwnerWarning is LoadDaemon's error when the only fault is the
// state file's owner. run and reload refuse it like any other; check only
// warns, because root running check sees the file the service user wrote.
type StateOwnerWarning struct {
	// Config is the configuration, valid but for the warning.
	Config *Config
	// Err says which file and owner.
	Err error
}

func (w *StateOwnerWarning) Error() string { return w.Err.Error() }
func (w *StateOwnerWarning) Unwrap() error { return w.Err }
