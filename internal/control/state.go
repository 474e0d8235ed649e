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
	"sync"
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
	// Shed is the operator's manual shed (site.Shed), absent when none.
	Shed *shedState `json:"shed,omitempty"`
}

// shedState is site.Shed in the state file.
type shedState struct {
	Fraction float64   `json:"fraction"`
	Reason   string    `json:"reason,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	Until    time.Time `json:"until,omitzero"`
}

// Store reads and writes the state file (key control.state_file): the
// site drain and the operator's manual shed. Each save writes both, the
// other part as last loaded or saved. It is safe for concurrent use.
type Store struct {
	path string
	read func(string) ([]byte, error)

	mu    sync.Mutex
	drain site.Drain
	shed  site.Shed
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
func (s *Store) Load() (site.Drain, site.Shed, error) {
	b, err := s.read(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return site.Drain{}, site.Shed{}, nil
	}
	if err != nil {
		return site.Drain{}, site.Shed{}, fmt.Errorf("read state file: %w", err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return site.Drain{}, site.Shed{}, fmt.Errorf("state file %s: %w", s.path, err)
	}
	if f.Version != stateVersion {
		return site.Drain{}, site.Shed{}, fmt.Errorf("state file %s: version %d, want %d", s.path, f.Version, stateVersion)
	}
	d := site.Drain{Active: f.Drained, Reason: site.CleanReason(f.Reason), Since: f.Since, Servers: slices.Clone(f.Servers)}
	slices.Sort(d.Servers)
	var sh site.Shed
	if f.Shed != nil {
		if f.Shed.Fraction < 0 || f.Shed.Fraction > 1 {
			return site.Drain{}, site.Shed{}, fmt.Errorf("state file %s: shed fraction %g out of 0 to 1", s.path, f.Shed.Fraction)
		}
		sh = site.Shed{Fraction: f.Shed.Fraction, Reason: site.CleanReason(f.Shed.Reason), Since: f.Shed.Since, Until: f.Shed.Until}
	}
	s.mu.Lock()
	s.drain, s.shed = d, sh
	s.mu.Unlock()
	return d, sh, nil
}

// Save writes d to the state file atomically: a temporary file in the same
// directory is written, synced and renamed over the state file, then the
// directory is synced, so a crash leaves either the old or the new state,
// never a torn one. The file has mode 0600.
func (s *Store) Save(d site.Drain) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writeLocked(d, s.shed); err != nil {
		return err
	}
	s.drain = d
	return nil
}

// SaveShed writes the manual shed sh (zero: none) with the drain, as Save.
func (s *Store) SaveShed(sh site.Shed) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writeLocked(s.drain, sh); err != nil {
		return err
	}
	s.shed = sh
	return nil
}

// writeLocked writes the state file; s.mu is held.
func (s *Store) writeLocked(d site.Drain, sh site.Shed) error {
	f := stateFile{Version: stateVersion, Drained: d.Active, Reason: d.Reason, Since: d.Since, Servers: d.Servers}
	if sh.Fraction > 0 {
		f.Shed = &shedState{Fraction: sh.Fraction, Reason: sh.Reason, Since: sh.Since, Until: sh.Until}
	}
	b, err := json.MarshalIndent(f, "", "  ")
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
