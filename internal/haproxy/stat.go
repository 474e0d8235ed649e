package haproxy

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrInconsistent reports that a `show stat` dump disagrees with itself: the
// number of usable servers counted from the server rows differs from the
// backend row's "act" (or "bck") column. On HAProxy 2.6 "act" counts exactly
// the servers HAProxy would give new traffic (see BackendStats.Active), so
// this means either a parse bug or a state change that landed while HAProxy
// was writing the dump (seen on HAProxy 2.6 during agent up/down changes:
// HAProxy's check threads run while the dump is written). Runtime.ShowStat
// reads the dump again before it returns this error.
var ErrInconsistent = errors.New("server rows disagree with backend row")

// Column names of `show stat` (management guide §9.1 "CSV format") that
// ParseStat reads. Columns are looked up by name, never by position.
const (
	colPxname      = "pxname" // "# pxname" in the header line
	colSvname      = "svname"
	colType        = "type" // 0=frontend 1=backend 2=server 3=listener
	colStatus      = "status"
	colWeight      = "weight"
	colAct         = "act"
	colBck         = "bck"
	colCheckStatus = "check_status"
	colAgentStatus = "agent_status"
	colScur        = "scur"
	colQcur        = "qcur"
	colRtime       = "rtime"
	colTtime       = "ttime"
	colHrsp5xx     = "hrsp_5xx"
	colEresp       = "eresp"
	colEcon        = "econ"
	colStot        = "stot"
	colAlgo        = "algo"     // backend row only; optional
	colRate        = "rate"     // sessions per second over the last second
	colReqRate     = "req_rate" // HTTP requests per second; empty in TCP mode
	colSlim        = "slim"     // session limit (maxconn); empty when none; optional
	colRateLim     = "rate_lim" // frontend session rate limit; empty when none; optional
)

// statTypeBackend and statTypeServer are values of the "type" column.
const (
	statTypeBackend = "1"
	statTypeServer  = "2"
)

var requiredColumns = []string{
	colPxname, colSvname, colType, colStatus, colWeight, colAct, colBck,
	colCheckStatus, colAgentStatus, colScur, colQcur, colRtime, colTtime,
	colHrsp5xx, colEresp, colEcon, colStot,
}

// Server is one server row of `show stat` (management guide §9.1 "CSV
// format").
type Server struct {
	// Name is the "svname" column.
	Name string
	// Status is the raw "status" column, e.g. "UP", "UP 1/3" (going down:
	// 1 more failed check to DOWN with fall 3), "DOWN", "DOWN 1/2" (going
	// up), "DOWN (agent)", "NOLB", "DRAIN", "DRAIN (agent)" (HAProxy 2.6
	// shows this for any drained server that has an agent check, also when
	// an operator drained it), "MAINT", "MAINT (via x/y)", "no check".
	Status string
	// Weight is the "weight" column: the effective weight now (0-256).
	// HAProxy 2.6 keeps showing the configured weight for DRAIN, MAINT and
	// DOWN servers, so Weight > 0 alone does not mean the server gets
	// traffic; see Usable.
	Weight int
	// Backup is true when the "bck" column is 1 (a `backup` server).
	Backup bool
	// CheckStatus is the "check_status" column (e.g. "L7OK", "L4CON",
	// "L7STS"); the "* " prefix HAProxy adds while a check is running is
	// removed. Empty when the server has no health check.
	CheckStatus string
	// AgentStatus is the "agent_status" column (e.g. "CHECKED" after an
	// agent reply that changed nothing, "L7OK" after "up", "L7STS" after
	// "down"), without the "* " prefix. Empty without an agent check.
	AgentStatus string
	// Usable is true when HAProxy would give the server NEW traffic: status
	// "UP", "UP n/m" or "no check", and Weight > 0. DRAIN, MAINT, NOLB and
	// DOWN in any form are not usable. For non-backup servers this is
	// exactly what the backend row's "act" column counts on HAProxy 2.6.
	Usable bool

	// Scur is the "scur" column: current sessions.
	Scur int
	// Qcur is the "qcur" column: requests queued for this server now.
	Qcur int
	// Rtime is the "rtime" column: average response time over the last
	// 1024 requests, in milliseconds (0 in TCP mode).
	Rtime int
	// Ttime is the "ttime" column: average total session time over the
	// last 1024 requests, in milliseconds.
	Ttime int
	// Hrsp5xx is the "hrsp_5xx" column: HTTP responses with a 5xx code
	// since start (0 in TCP mode, where the column is empty).
	Hrsp5xx int64
	// Eresp is the "eresp" column: response errors since start.
	Eresp int64
	// Econ is the "econ" column: failed connection attempts since start.
	Econ int64
	// Stot is the "stot" column: sessions sent to this server since start;
	// in HTTP mode every request routed to the server is one session.
	Stot int64
	// Slim is the "slim" column: the server's session limit (its
	// "maxconn"), 0 when it has none.
	Slim int
}

// BackendStats is one backend and its servers at one poll of `show stat`
// (management guide §9.1). It is a value: callers may keep it as a snapshot.
type BackendStats struct {
	// Backend is the backend (proxy) name, the "pxname" column.
	Backend string
	// Status is the backend row's "status" column ("UP" or "DOWN").
	Status string
	// Active is the backend row's "act" column. On HAProxy 2.6 it counts
	// the non-backup servers that would get new traffic: it excludes DRAIN,
	// MAINT, NOLB, DOWN and weight-0 servers (including weight 0 set by an
	// agent's "0%") and includes "UP n/m" (going down) and "no check".
	Active int
	// Backup is the backend row's "bck" column: the same count for backup
	// servers.
	Backup int
	// Algo is the backend row's "algo" column, the balance algorithm such
	// as "roundrobin", "leastconn", "static-rr" or "first"; "" when the
	// column is missing.
	Algo string
	// Servers are the backend's server rows in `show stat` order.
	Servers []Server
	// Usable counts usable servers among the NON-backup servers only
	// (backup servers are the other site).
	Usable int
	// Total counts the NON-backup servers.
	Total int
	// Qcur is the backend row's "qcur" column: requests queued in the
	// backend itself because every server is at its maxconn.
	Qcur int
	// Frontend is the FRONTEND row of the site's frontend when the poll
	// asked for it (Runtime.ShowSite), else nil.
	Frontend *FrontendStats
}

// ParseStat parses `show stat` CSV output (management guide §9.1) and
// returns the named backend and its servers. It is meant for the output of
// `show stat <backend> 6 -1`, where the BACKEND row comes last; rows of other
// proxies and FRONTEND rows are skipped, so a full `show stat` works too.
//
// Any doubt is an error, never "zero servers": empty input, an HAProxy error
// reply (such as "No such proxy."), missing required columns, a row with the
// wrong number of fields (a cut mid-row), no BACKEND row for the backend
// (unknown backend, or output cut before its last row), a server row of the
// backend after its BACKEND row, or an unparsable number. If the usable
// counts disagree with the backend row, the error wraps ErrInconsistent.
func ParseStat(data []byte, backend string) (BackendStats, error) {
	if backend == "" {
		return BackendStats{}, errors.New("parse show stat: empty backend name")
	}
	data = bytes.TrimLeft(data, "\r\n")
	if len(bytes.TrimSpace(data)) == 0 {
		return BackendStats{}, fmt.Errorf("parse show stat %s: empty input", backend)
	}
	if !bytes.HasPrefix(data, []byte("# ")) {
		return BackendStats{}, fmt.Errorf("parse show stat %s: haproxy replied %q", backend, firstLine(data))
	}
	r := csv.NewReader(bytes.NewReader(data[len("# "):]))
	// The record slice is reused row to row; the strings kept in a Server
	// are cloned so that one dump's lines are not pinned by the snapshot.
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return BackendStats{}, fmt.Errorf("parse show stat %s: header: %w", backend, err)
	}
	cols, err := columnIndex(header)
	if err != nil {
		return BackendStats{}, fmt.Errorf("parse show stat %s: %w", backend, err)
	}
	r.FieldsPerRecord = len(header)

	st := BackendStats{Backend: backend, Servers: make([]Server, 0, bytes.Count(data, []byte("\n")))}
	seenBackend := false
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return BackendStats{}, fmt.Errorf("parse show stat %s: %w", backend, err)
		}
		row := statRow{rec: rec, cols: cols}
		if row.get(colPxname) != backend {
			continue
		}
		line, _ := r.FieldPos(0)
		switch row.get(colType) {
		case statTypeServer:
			if seenBackend {
				return BackendStats{}, fmt.Errorf("parse show stat %s: line %d: server row after BACKEND row", backend, line)
			}
			srv, err := row.server()
			if err != nil {
				return BackendStats{}, fmt.Errorf("parse show stat %s: line %d: %w", backend, line, err)
			}
			st.Servers = append(st.Servers, srv)
		case statTypeBackend:
			if seenBackend {
				return BackendStats{}, fmt.Errorf("parse show stat %s: line %d: second BACKEND row", backend, line)
			}
			seenBackend = true
			if err := row.backend(&st); err != nil {
				return BackendStats{}, fmt.Errorf("parse show stat %s: line %d: %w", backend, line, err)
			}
		}
	}
	if !seenBackend {
		return BackendStats{}, fmt.Errorf("parse show stat %s: no BACKEND row (unknown backend or truncated output)", backend)
	}
	usableBackup := 0
	for _, s := range st.Servers {
		switch {
		case s.Backup && s.Usable:
			usableBackup++
		case !s.Backup:
			st.Total++
			if s.Usable {
				st.Usable++
			}
		}
	}
	if st.Usable != st.Active || usableBackup != st.Backup {
		return BackendStats{}, fmt.Errorf("parse show stat %s: %d usable active and %d usable backup servers, backend row act=%d bck=%d: %w",
			backend, st.Usable, usableBackup, st.Active, st.Backup, ErrInconsistent)
	}
	return st, nil
}

// serverUsable reports whether HAProxy gives a server with this raw status
// column and effective weight new traffic (see Server.Usable).
func serverUsable(status string, weight int) bool {
	if weight <= 0 {
		return false
	}
	return status == "UP" || status == "no check" || strings.HasPrefix(status, "UP ")
}

// columnIndex maps each header name to its position and checks that every
// required column is present.
func columnIndex(header []string) (map[string]int, error) {
	cols := make(map[string]int, len(header))
	for i, name := range header {
		if _, dup := cols[name]; !dup {
			cols[name] = i
		}
	}
	var missing []string
	for _, name := range requiredColumns {
		if _, ok := cols[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("header lacks columns %s", strings.Join(missing, ","))
	}
	return cols, nil
}

// statRow is one CSV record with the header's column positions.
type statRow struct {
	rec  []string
	cols map[string]int
}

func (r statRow) get(col string) string { return r.rec[r.cols[col]] }

// int parses a column that must hold a number.
func (r statRow) int(col string) (int, error) {
	v := r.get(col)
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("column %s: bad number %q", col, v)
	}
	return n, nil
}

// counter parses a counter column; HAProxy leaves a counter empty where it
// does not apply (hrsp_5xx in TCP mode), which reads as 0.
func (r statRow) counter(col string) (int64, error) {
	v := r.get(col)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("column %s: bad number %q", col, v)
	}
	return n, nil
}

func (r statRow) server() (Server, error) {
	s := Server{
		Name:        strings.Clone(r.get(colSvname)),
		Status:      strings.Clone(r.get(colStatus)),
		CheckStatus: strings.Clone(strings.TrimPrefix(r.get(colCheckStatus), "* ")),
		AgentStatus: strings.Clone(strings.TrimPrefix(r.get(colAgentStatus), "* ")),
	}
	var err error
	if s.Weight, err = r.int(colWeight); err != nil {
		return Server{}, err
	}
	bck, err := r.int(colBck)
	if err != nil {
		return Server{}, err
	}
	s.Backup = bck == 1
	var counters [8]int64
	for i, col := range []string{colScur, colQcur, colRtime, colTtime, colHrsp5xx, colEresp, colEcon, colStot} {
		if counters[i], err = r.counter(col); err != nil {
			return Server{}, err
		}
	}
	s.Scur, s.Qcur, s.Rtime, s.Ttime = int(counters[0]), int(counters[1]), int(counters[2]), int(counters[3])
	s.Hrsp5xx, s.Eresp, s.Econ, s.Stot = counters[4], counters[5], counters[6], counters[7]
	s.Usable = serverUsable(s.Status, s.Weight)
	if s.Slim, err = r.optional(colSlim); err != nil {
		return Server{}, err
	}
	return s, nil
}

// optional parses a counter column that older HAProxy versions may lack;
// missing or empty reads as 0.
func (r statRow) optional(col string) (int, error) {
	if _, ok := r.cols[col]; !ok {
		return 0, nil
	}
	n, err := r.counter(col)
	return int(n), err
}

func (r statRow) backend(st *BackendStats) error {
	st.Status = strings.Clone(r.get(colStatus))
	if _, ok := r.cols[colAlgo]; ok {
		st.Algo = strings.Clone(r.get(colAlgo))
	}
	var err error
	if st.Active, err = r.int(colAct); err != nil {
		return err
	}
	if st.Backup, err = r.int(colBck); err != nil {
		return err
	}
	q, err := r.counter(colQcur)
	st.Qcur = int(q)
	return err
}

// firstLine returns the first non-empty line of an HAProxy reply, cut to
// 200 bytes, for error messages.
func firstLine(data []byte) string {
	line, _, _ := bytes.Cut(bytes.TrimSpace(data), []byte("\n"))
	if len(line) > 200 {
		line = line[:200]
	}
	return string(bytes.TrimSpace(line))
}
