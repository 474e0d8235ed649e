package haproxy

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
)

// statTypeFrontend is the "type" column value of a FRONTEND row.
const statTypeFrontend = "0"

// FrontendStats is the FRONTEND row of one frontend (or listen section) in
// `show stat` (management guide §9.1 "CSV format").
type FrontendStats struct {
	// Frontend is the proxy name, the "pxname" column.
	Frontend string
	// Status is the "status" column: "OPEN", "STOP" or "FULL".
	Status string
	// Scur is the "scur" column: client sessions open now.
	Scur int
	// Rate is the "rate" column: new client sessions (connections) in the
	// last second, per second.
	Rate int
	// ReqRate is the "req_rate" column: HTTP requests in the last second,
	// per second (0 in TCP mode, where the column is empty). With HTTP
	// keep-alive, requests keep coming on old sessions while Rate is 0.
	ReqRate int
	// Stot is the "stot" column: client sessions since start.
	Stot int64
	// Slim is the "slim" column: the frontend's session limit (maxconn),
	// 0 when none is shown.
	Slim int
	// RateLim is the "rate_lim" column: the frontend's session rate limit
	// ("rate-limit sessions"), per second, 0 when none.
	RateLim int
}

// Quiet reports whether no new session and no HTTP request arrived in the
// last second.
func (f FrontendStats) Quiet() bool { return f.Rate == 0 && f.ReqRate == 0 }

// ParseFrontend parses `show stat` CSV output (management guide §9.1) and
// returns the FRONTEND row of the named proxy; it is meant for the output of
// `show stat <frontend> 1 -1`. An error reply, a missing column, a row with
// the wrong number of fields or no FRONTEND row for the name is an error.
func ParseFrontend(data []byte, frontend string) (FrontendStats, error) {
	if frontend == "" {
		return FrontendStats{}, errors.New("parse show stat: empty frontend name")
	}
	data = bytes.TrimLeft(data, "\r\n")
	if !bytes.HasPrefix(data, []byte("# ")) {
		return FrontendStats{}, fmt.Errorf("parse show stat %s: haproxy replied %q", frontend, firstLine(data))
	}
	r := csv.NewReader(bytes.NewReader(data[len("# "):]))
	header, err := r.Read()
	if err != nil {
		return FrontendStats{}, fmt.Errorf("parse show stat %s: header: %w", frontend, err)
	}
	cols, err := columnIndex(header)
	if err != nil {
		return FrontendStats{}, fmt.Errorf("parse show stat %s: %w", frontend, err)
	}
	for _, c := range []string{colRate, colReqRate} {
		if _, ok := cols[c]; !ok {
			return FrontendStats{}, fmt.Errorf("parse show stat %s: header lacks column %s", frontend, c)
		}
	}
	r.FieldsPerRecord = len(header)
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return FrontendStats{}, fmt.Errorf("parse show stat %s: no FRONTEND row (unknown frontend or truncated output)", frontend)
		}
		if err != nil {
			return FrontendStats{}, fmt.Errorf("parse show stat %s: %w", frontend, err)
		}
		row := statRow{rec: rec, cols: cols}
		if row.get(colPxname) != frontend || row.get(colType) != statTypeFrontend {
			continue
		}
		f, err := row.frontend()
		if err != nil {
			return FrontendStats{}, fmt.Errorf("parse show stat %s: %w", frontend, err)
		}
		return f, nil
	}
}

func (r statRow) frontend() (FrontendStats, error) {
	f := FrontendStats{Frontend: r.get(colPxname), Status: r.get(colStatus)}
	var n [4]int64
	for i, col := range []string{colScur, colRate, colReqRate, colStot} {
		var err error
		if n[i], err = r.counter(col); err != nil {
			return FrontendStats{}, err
		}
	}
	f.Scur, f.Rate, f.ReqRate, f.Stot = int(n[0]), int(n[1]), int(n[2]), n[3]
	var err error
	if f.Slim, err = r.optional(colSlim); err != nil {
		return FrontendStats{}, err
	}
	if f.RateLim, err = r.optional(colRateLim); err != nil {
		return FrontendStats{}, err
	}
	return f, nil
}
