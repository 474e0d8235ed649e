// Package control owns the daemon's local control plane: the unix control
// socket (server side in the daemon, client side for the drain, resume and
// status commands), the JSON messages on it, and the drain state file that
// keeps a site drain across restarts. It decides nothing about health or
// weights: drain and resume go to the site poller, which owns site state,
// and status answers with the daemon's status document (internal/status).
package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spdu/spdu-haproxy/internal/site"
)

// stateVersion is the version of the state file format.
const stateVersion = 1

// stateFile is the JSON document of the state file.
type stateFile struct {
	Version int       `json:"version"`
	Drained bool      `json:"drained"`
	Reason  string    `json:"reason,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	// Servers are the servers our agent drained (see site.Drain.Servers).
	Servers []string `json:"servers_drained_by_agent,omitempty"`
}

// Store reads and writes the drain state file (key control.state_file).
type Store struct {
	path string
	read func(string) ([]byte, error)
}

// NewStore returns a Store for the state file at path, read with read: the
// daemon passes a reader that opens the file once and checks its owner and
// mode on the descriptor (config.ReadSafe); nil means os.ReadFile.
func NewStore(path string, read func(string) ([]byte, error)) *Store {
	if read == nil {
		read = os.ReadFile
	}
	return &Store{path: path, read: read}
}

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// Load reads the state file. A missing file is the state of a site that was
// never drained. An unreadable or invalid file is an error: the daemon must
// not guess whether the site is in maintenance.
func (s *Store) Load() (site.Drain, error) {
	b, err := s.read(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return site.Drain{}, nil
	}
	if err != nil {
		return site.Drain{}, fmt.Errorf("read state file: %w", err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return site.Drain{}, fmt.Errorf("state file %s: %w", s.path, err)
	}
	if f.Version != stateVersion {
		return site.Drain{}, fmt.Errorf("state file %s: version %d, want %d", s.path, f.Version, stateVersion)
	}
	d := site.Drain{Active: f.Drained, Reason: site.CleanReason(f.Reason), Since: f.Since, Servers: slices.Clone(f.Servers)}
	slices.Sort(d.Servers)
	return d, nil
}

// Save writes d to the state file atomically: a temporary file in the same
// directory is written, synced and renamed over the state file, then the
// directory is synced, so a crash leaves either the old or the new state,
// never a torn one. The file has mode 0600.
func (s *Store) Save(d site.Drain) error {
	b, err := json.MarshalIndent(stateFile{Version: stateVersion, Drained: d.Active, Reason: d.Reason, Since: d.Since, Servers: d.Servers}, "", "  ")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("save state %s: %w", s.path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("save state %s: %w", s.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save state %s: %w", s.path, err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	ok = true
	d2, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save state: sync directory: %w", err)
	}
	defer d2.Close()
	if err := d2.Sync(); err != nil {
		return fmt.Errorf("save state: sync directory %s: %w", dir, err)
	}
	return nil
}
