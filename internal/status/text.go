package status

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText prints the document for people, as `spdu-haproxy status`
// shows it: the state, reason and counts, the drain, the agent mode and a
// table of the servers. Write errors are left to the terminal.
func (st Document) WriteText(w io.Writer) {
	if st.Detail == nil {
		st.Detail = &Detail{}
	}
	fmt.Fprintf(w, "site %s: %s since %s\n  reason: %s\n", st.Site, map[bool]string{true: "SERVING", false: "WITHDRAWN"}[st.Serving],
		st.Since.Format(time.RFC3339), st.Reason)
	switch k := st.DNSSEC; {
	case k != nil && k.Failing:
		fmt.Fprintf(w, "  dns: WITHDRAWN, the zone cannot be signed: %s\n", k.LastError)
	case st.DNSServing != st.Serving:
		fmt.Fprintf(w, "  dns: serving=%v (dry-run)\n", st.DNSServing)
	}
	if k := st.DNSSEC; k != nil && !k.Failing {
		fmt.Fprintf(w, "  dnssec: signed, %d signatures made, earliest expiry %s", k.Signatures, k.Expires.Format(time.RFC3339))
		if k.LastError != "" {
			fmt.Fprintf(w, "; re-signing failed: %s", k.LastError)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  servers: %d of %d usable, %d needed; capacity offered to peers %.2f\n", st.Usable, st.Total, st.Required, st.Capacity)
	if st.LastError != "" {
		fmt.Fprintf(w, "  last poll error: %s\n", st.LastError)
	}
	if d := st.Drain; d.Active {
		fmt.Fprintf(w, "  drain: ACTIVE since %s, reason %q\n", d.Since.Format(time.RFC3339), d.Reason)
	} else {
		fmt.Fprintf(w, "  drain: none\n")
	}
	if sh := st.Shed; sh.Fraction > 0 || sh.Signal != "" {
		fmt.Fprintf(w, "  load: utilization %.2f (%s), average %.2f; shedding %.0f%% of new clients (controller %.0f%%, manual %.0f%%)\n",
			sh.Utilization, sh.Signal, sh.Average, 100*sh.Fraction, 100*sh.Auto, 100*sh.Manual)
		if sh.Manual > 0 {
			until := "until shed off"
			if !sh.ManualUntil.IsZero() {
				until = "until " + sh.ManualUntil.Format(time.RFC3339)
			}
			fmt.Fprintf(w, "  manual shed: %.0f%% %s, reason %q\n", 100*sh.Manual, until, sh.ManualReason)
		}
	}
	if len(st.Drain.Servers) > 0 {
		fmt.Fprintf(w, "  servers drained by our agent: %s\n", strings.Join(st.Drain.Servers, " "))
	}
	algo := st.Algo
	if st.StaticAlgo {
		algo += " (static: weights ignored)"
	}
	fmt.Fprintf(w, "  agent: %s, balance %s\n\n", st.AgentMode, algo)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tSTATUS\tUSABLE\tADVERTISED\tAPPLIED\tAGENT REPLY")
	for _, s := range st.Servers {
		adv, name := fmt.Sprintf("%d%%", s.Advertised), s.Name
		if s.Backup {
			adv, name = "-", s.Name+" (backup)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%d\t%q\n", name, s.Status, s.Usable, adv, s.Applied, s.AgentReply)
	}
	tw.Flush()
}
