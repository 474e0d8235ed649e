package control

import (
	"time"

	"github.com/spdu/spdu-haproxy/internal/status"
)

// Commands of the control protocol: one JSON Request per connection, one
// JSON Response back, each on one line.
const (
	CmdDrain  = "drain"
	CmdResume = "resume"
	CmdStatus = "status"
	CmdShed   = "shed"
	CmdZone   = "zone"
)

// Request is what the CLI sends on the control socket.
type Request struct {
	// Cmd is CmdDrain, CmdResume, CmdStatus, CmdShed or CmdZone.
	Cmd string `json:"cmd"`
	// Fraction, for a shed, is the floor of the fraction of new clients
	// sent elsewhere, 0 (off) to 1.
	Fraction float64 `json:"fraction,omitempty"`
	// For, for a shed, ends it after this long; 0 keeps it until "shed
	// off".
	For time.Duration `json:"for,omitempty"`
	// Reason is the operator's reason for a drain or a shed.
	Reason string `json:"reason,omitempty"`
	// Wait, for a drain, makes the daemon reply only once the frontend's
	// session and request rates have stayed at zero for the quiet period,
	// or fail once Wait has passed; 0 replies at once.
	Wait time.Duration `json:"wait,omitempty"`
}

// Response is the daemon's reply. Status is filled even when Error is set:
// a drain whose state could not be saved still withdrew the site.
type Response struct {
	// Error says why the command failed, or is "".
	Error string `json:"error,omitempty"`
	// Waited is how long a drain -wait waited for the frontend to go quiet.
	Waited time.Duration `json:"waited,omitempty"`
	// Status is the site's full status document after the command.
	Status status.Document `json:"status"`
	// Zone, for CmdZone, is the zone as the DNS server serves it, in
	// master-file format, signed when DNSSEC is on.
	Zone string `json:"zone,omitempty"`
}
