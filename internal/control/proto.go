package control

import (
	"time"

	"github.com/spdu/spdu-haproxy/internal/site"
)

// Commands of the control protocol: one JSON Request per connection, one
// JSON Response back, each on one line.
const (
	CmdDrain  = "drain"
	CmdResume = "resume"
	CmdStatus = "status"
)

// Request is what the CLI sends on the control socket.
type Request struct {
	// Cmd is CmdDrain, CmdResume or CmdStatus.
	Cmd string `json:"cmd"`
	// Reason is the operator's reason for a drain.
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
	// Status is the site after the command.
	Status Status `json:"status"`
}

// Status is the site as `spdu-haproxy status` prints it.
type Status struct {
	// Site is the site's name.
	Site string `json:"site"`
	// Serving is the site state: the health policy's decision, withdrawn
	// while drained.
	Serving bool `json:"serving"`
	// DNSServing is what the DNS server answers (differs from Serving in
	// dry-run mode).
	DNSServing bool `json:"dns_serving"`
	// Reason and Since explain the site state.
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	// Usable, Total and Required are the server counts of the last
	// successful poll and the quorum.
	Usable   int `json:"usable"`
	Total    int `json:"total"`
	Required int `json:"min_up"`
	// LastError is the latest poll's error, or "".
	LastError string `json:"last_error,omitempty"`
	// Drain is the site drain state.
	Drain DrainStatus `json:"drain"`
	// Mode is the agent mode, "static" or "adaptive".
	Mode string `json:"agent_mode"`
	// Algo is the backend's balance algorithm; StaticAlgo is true when
	// adaptive weights have no effect on it.
	Algo       string `json:"algo,omitempty"`
	StaticAlgo bool   `json:"static_algo,omitempty"`
	// Servers are the backend's servers at the last successful poll.
	Servers []ServerStatus `json:"servers"`
}

// DrainStatus is site.Drain on the wire.
type DrainStatus struct {
	Active bool      `json:"active"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	// Servers our agent drains (while Active) or is undraining.
	Servers []string `json:"servers_drained_by_agent,omitempty"`
}

// ServerStatus is one server of the backend.
type ServerStatus struct {
	Name string `json:"name"`
	// Status is HAProxy's status column ("UP", "DRAIN (agent)", ...).
	Status string `json:"status"`
	Backup bool   `json:"backup,omitempty"`
	Usable bool   `json:"usable"`
	// Advertised is the weight our agent replies, in percent of the
	// configured weight; 0 for backup servers, which get no weight.
	Advertised int `json:"weight_advertised_pct"`
	// Applied is HAProxy's effective weight (the "weight" column).
	Applied int `json:"weight_applied"`
	// AgentReply is the exact line our agent answers for this server now.
	AgentReply string `json:"agent_reply"`
}

// StatusOf builds the Status of a snapshot. mode is the agent mode; dns
// reports whether the DNS server serves the zone (nil: same as Serving).
func StatusOf(siteName, mode string, snap *site.Snapshot, dns func() bool) Status {
	h := snap.Health
	st := Status{
		Site: siteName, Serving: h.Serving, DNSServing: h.Serving, Reason: h.Reason, Since: h.Since,
		Usable: h.Usable, Total: h.Total, Required: h.Required, LastError: h.LastError,
		Drain: DrainStatus{Active: snap.Drain.Active, Reason: snap.Drain.Reason, Since: snap.Drain.Since, Servers: snap.Drain.Servers},
		Mode:  mode, Algo: snap.Stats.Algo, StaticAlgo: snap.StaticAlgo, Servers: []ServerStatus{},
	}
	if dns != nil {
		st.DNSServing = dns()
	}
	for _, s := range snap.Stats.Servers {
		ss := ServerStatus{Name: s.Name, Status: s.Status, Backup: s.Backup, Usable: s.Usable, Applied: s.Weight,
			AgentReply: snap.AgentReply("", s.Name)}
		if !s.Backup {
			ss.Advertised = snap.Weight(s.Name)
		}
		st.Servers = append(st.Servers, ss)
	}
	return st
}
