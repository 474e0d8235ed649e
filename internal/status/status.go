// Package status owns the status document: the one JSON description of a
// site's state, served by the daemon at GET /status (the full document, on
// the loopback metrics listener), printed by `spdu-haproxy status -json`
// (the same document, over the control socket), and, in its public form
// (Document.Public: version, site, serving and capacity only), served to
// peer sites and read by their probes in pool mode. It is the contract
// between sites, so its fields only ever grow, and Version says which
// fields a reader may rely on. The package builds and parses documents; it
// does not serve them and decides nothing.
package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/health"
	"github.com/spdu/spdu-haproxy/internal/site"
)

// Version is the version of the document this daemon writes. Version 1
// added "version" and "capacity"; a document without "version" (version 0,
// daemons before it) has only the detailed fields, and its capacity is
// usable / total while serving.
const Version = 1

// Document is the status document. The first four fields are the public
// part that peers read; Detail holds everything else and is nil in the
// public form (its fields are then left out of the JSON; when present they
// appear at the top level, not nested).
type Document struct {
	// Version is the document's version (Version when written by this
	// daemon).
	Version int `json:"version"`
	// Site is the site's name (key "site").
	Site string `json:"site"`
	// Serving is the site's state: the health policy's decision, false
	// while drained.
	Serving bool `json:"serving"`
	// Capacity is the spare capacity the site offers to new clients, from 0
	// to 1: usable / total servers while serving, lowered by the fraction
	// it sheds, 0 while withdrawn. Peers in pool mode order their answers
	// by it.
	Capacity float64 `json:"capacity"`

	*Detail
}

// Detail is the part of the document that stays on the site: it names
// internal paths and operator notes, so the public form leaves it out.
type Detail struct {
	// Zone is the pool zone's apex.
	Zone string `json:"zone"`
	// DNSServing is what the DNS server answers: differs from Serving in
	// dry-run mode.
	DNSServing bool `json:"dns_serving"`
	// Serial is the zone's SOA serial (RFC 1035 §3.3.13).
	Serial uint32 `json:"soa_serial"`
	// Reason and Since explain the state: why, and since when.
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	// Usable, Total and Required are the server counts of the last
	// successful poll and the quorum (health.min_up) they are judged by.
	Usable   int `json:"usable"`
	Total    int `json:"total"`
	Required int `json:"min_up"`
	// LastGood is when the last successful poll finished; nil before one.
	LastGood *time.Time `json:"last_good_poll,omitempty"`
	// LastError is the latest poll's error, or "".
	LastError string `json:"last_error,omitempty"`
	// Polls counts polls since start.
	Polls uint64 `json:"polls"`
	// Drain is the operator's site drain.
	Drain Drain `json:"drain"`
	// AgentMode is agent.mode.
	AgentMode config.AgentMode `json:"agent_mode"`
	// Algo is the backend's balance algorithm; StaticAlgo is true when
	// adaptive weights have no effect on it (static-rr, first).
	Algo       string `json:"algo,omitempty"`
	StaticAlgo bool   `json:"static_algo,omitempty"`
	// Shed is load shedding: the site's utilization and the fraction of
	// new clients it sends elsewhere.
	Shed Shed `json:"shed"`
	// DNSSEC is the zone's signing state; absent when it is unsigned.
	DNSSEC *DNSSEC `json:"dnssec,omitempty"`
	// Servers are the backend's servers at the last successful poll.
	Servers []Server `json:"servers"`
}

// DNSSEC is the signing state of the zone (dnsserve.DNSSECState).
type DNSSEC struct {
	// Expires is when the earliest signature served expires; absent while
	// none is served.
	Expires time.Time `json:"expires,omitzero"`
	// Signatures counts RRsets signed since start; Errors the signing
	// passes that failed, LastError the latest failure ("" once signing
	// works again).
	Signatures uint64 `json:"signatures"`
	Errors     uint64 `json:"errors"`
	LastError  string `json:"last_error,omitempty"`
	// Failing is true while the zone answers the withdraw rcode because it
	// cannot be signed.
	Failing bool `json:"failing"`
}

// Shed is site.Load in the document.
type Shed struct {
	// Utilization is the site's load, 1 = at capacity; Signal the HAProxy
	// counter it came from ("" when none applies).
	Utilization float64 `json:"utilization"`
	Signal      string  `json:"signal,omitempty"`
	// Average is the controller's moving average of it (over dns.ttl),
	// the value it acts on; 0 while automatic shedding is off.
	Average float64 `json:"average,omitempty"`
	// Fraction is the fraction in force, 0 to 1; Auto the controller's;
	// Manual the operator's floor, with its reason and end.
	Fraction     float64   `json:"fraction"`
	Auto         float64   `json:"auto"`
	Manual       float64   `json:"manual"`
	ManualReason string    `json:"manual_reason,omitempty"`
	ManualUntil  time.Time `json:"manual_until,omitzero"`
}

// Drain is site.Drain in the document.
type Drain struct {
	Active bool      `json:"active"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	// Servers are those our agent drains (while Active) or is undraining.
	Servers []string `json:"servers_drained_by_agent,omitempty"`
}

// Server is one server of the backend.
type Server struct {
	Name string `json:"name"`
	// Status is HAProxy's status column ("UP", "DRAIN (agent)", ...).
	Status string `json:"status"`
	Backup bool   `json:"backup,omitempty"`
	// Usable is true when HAProxy would give the server new traffic.
	Usable bool `json:"usable"`
	// Advertised is the weight our agent replies, in percent of the
	// configured weight; 0 when the agent sends no weight (backup servers,
	// drained servers).
	Advertised int `json:"weight_advertised_pct"`
	// Applied is HAProxy's effective weight (the "weight" column).
	Applied int `json:"weight_applied"`
	// AgentStatus is HAProxy's agent_status column ("CHECKED", "L7OK"...).
	AgentStatus string `json:"agent_status,omitempty"`
	// AgentReply is the exact line our agent answers for this server now.
	AgentReply string `json:"agent_reply"`
}

// Input is what Build needs besides the site snapshot.
type Input struct {
	// Site and Zone are the site's name and the pool zone's apex.
	Site, Zone string
	// AgentMode is agent.mode.
	AgentMode config.AgentMode
	// DNSServing and Serial are the DNS server's state.
	DNSServing bool
	Serial     uint32
	// DNSSEC is the signing state; nil for an unsigned zone.
	DNSSEC *DNSSEC
}

// Build returns the full document of a site snapshot.
func Build(in Input, snap *site.Snapshot) Document {
	h := snap.Health
	d := &Detail{
		Zone: in.Zone, DNSServing: in.DNSServing, Serial: in.Serial,
		Reason: h.Reason, Since: h.Since, Usable: h.Usable, Total: h.Total, Required: h.Required,
		LastError: h.LastError, Polls: snap.Polls,
		Drain:     Drain{Active: snap.Drain.Active, Reason: snap.Drain.Reason, Since: snap.Drain.Since, Servers: snap.Drain.Servers},
		AgentMode: in.AgentMode, Algo: snap.Stats.Algo, StaticAlgo: snap.StaticAlgo, Servers: []Server{}, DNSSEC: in.DNSSEC,
		Shed: Shed{Utilization: snap.Load.Utilization, Signal: snap.Load.Signal, Average: snap.Load.Average, Fraction: snap.Load.Shed, Auto: snap.Load.Auto,
			Manual: snap.Load.Manual.Fraction, ManualReason: snap.Load.Manual.Reason, ManualUntil: snap.Load.Manual.Until},
	}
	if !h.LastGood.IsZero() {
		lg := h.LastGood
		d.LastGood = &lg
	}
	for _, s := range snap.Stats.Servers {
		reply := snap.AgentReply("", s.Name)
		d.Servers = append(d.Servers, Server{Name: s.Name, Status: s.Status, Backup: s.Backup, Usable: s.Usable,
			Advertised: haproxy.ReplyWeight(reply), Applied: s.Weight, AgentStatus: s.AgentStatus, AgentReply: reply})
	}
	return Document{Version: Version, Site: in.Site, Serving: h.Serving, Capacity: snap.Capacity(), Detail: d}
}

// Public returns the document as peers see it: without Detail.
func (d Document) Public() Document {
	d.Detail = nil
	return d
}

// PeerCapacity reads a peer's public or full status document and returns
// the spare capacity it offers, from 0 to 1: its "capacity" (version 1 and
// later), or usable / total while serving for a version-0 document; 0 when
// the peer says it is not serving. A document without the fields its
// version requires is an error.
func PeerCapacity(b []byte) (float64, error) {
	var raw struct {
		Version  *int     `json:"version"`
		Serving  *bool    `json:"serving"`
		Capacity *float64 `json:"capacity"`
		Usable   *int     `json:"usable"`
		Total    *int     `json:"total"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return 0, fmt.Errorf("peer status: %w", err)
	}
	if raw.Serving == nil {
		return 0, errors.New("peer status: lacks serving")
	}
	if !*raw.Serving {
		return 0, nil
	}
	if raw.Version != nil && *raw.Version >= 1 {
		if raw.Capacity == nil {
			return 0, fmt.Errorf("peer status: version %d lacks capacity", *raw.Version)
		}
		return min(1, max(0, *raw.Capacity)), nil
	}
	if raw.Usable == nil || raw.Total == nil {
		return 0, errors.New("peer status: lacks usable or total")
	}
	return health.Capacity(*raw.Usable, *raw.Total), nil
}
