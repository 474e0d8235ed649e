package packaging

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// TestDashboardModel checks that the Grafana dashboard imports anywhere: a
// datasource variable that every panel and query uses (no data source
// baked in), a multi-value "site" variable that every spdu query filters
// on, unique panel ids, and panels that fit the 24-column grid without
// overlapping.
func TestDashboardModel(t *testing.T) {
	d := readDashboard(t)
	if d.Title == "" || d.UID == "" {
		t.Errorf("title %q, uid %q: want both", d.Title, d.UID)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		switch v.Name {
		case "datasource":
			if v.Type != "datasource" || string(v.Query) != `"prometheus"` {
				t.Errorf("variable datasource: type %q, query %s; want a Prometheus datasource variable", v.Type, v.Query)
			}
		case "site":
			if v.Type != "query" || v.Datasource == nil || v.Datasource.UID != "${datasource}" || !v.IncludeAll || !v.Multi {
				t.Errorf("variable site: want a multi-value query variable with All, on ${datasource}")
			}
		}
	}
	if !vars["datasource"] || !vars["site"] {
		t.Fatalf("variables %v: want datasource and site", vars)
	}

	ids := map[int]string{}
	type rect struct {
		title      string
		x, y, w, h int
	}
	var placed []rect
	for _, p := range d.allPanels() {
		if other, ok := ids[p.ID]; ok || p.ID == 0 {
			t.Errorf("panel %q: id %d is not unique (also %q)", p.Title, p.ID, other)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W < 1 || g.X < 0 || g.X+g.W > 24 || g.H < 1 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for _, q := range placed {
			if g.X < q.x+q.w && q.x < g.X+g.W && g.Y < q.y+q.h && q.y < g.Y+g.H {
				t.Errorf("panel %q overlaps panel %q", p.Title, q.title)
			}
		}
		placed = append(placed, rect{p.Title, g.X, g.Y, g.W, g.H})
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want uid ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q query %s: datasource %+v, want uid ${datasource}", p.Title, tg.RefID, tg.Datasource)
			}
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: refId %q empty or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			for _, m := range selector.FindAllStringSubmatch(tg.Expr, -1) {
				if !strings.Contains(m[2], `site=~"$site"`) {
					t.Errorf("panel %q query %s: %s does not filter on site=~\"$site\"", p.Title, tg.RefID, m[0])
				}
			}
			for _, name := range metricNames(tg.Expr) {
				if !regexp.MustCompile(regexp.QuoteMeta(name) + `\{`).MatchString(tg.Expr) {
					t.Errorf("panel %q query %s: %s has no {site=~\"$site\"} selector", p.Title, tg.RefID, name)
				}
			}
		}
	}
}

// TestPromQL checks that every dashboard query (with Grafana's variables
// replaced by values) and every rule is valid PromQL, with promtool, and
// runs the rules' unit tests (spdu-haproxy-rules.test.yml), which must
// test every alert.
func TestPromQL(t *testing.T) {
	promtool := testenv.RequireTool(t, "promtool", "prometheus")
	// The dashboard's queries as recording rules, so that promtool parses
	// them.
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	exprs := readDashboard(t).exprs(t)
	keys := make([]string, 0, len(exprs))
	for k := range exprs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	grafanaVars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$site", ".*")
	for i, k := range keys {
		fmt.Fprintf(&b, "      # %s\n      - record: dashboard_query_%d\n        expr: %q\n", k, i, grafanaVars.Replace(exprs[k]))
	}
	dashRules := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(dashRules, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, stderr, err := run(t, time.Minute, "", nil, promtool, "check", "rules", dashRules); err != nil {
		t.Errorf("promtool check rules (the dashboard's queries): %v\n%s%s\n%s", err, out, stderr, b.String())
	}

	dir := filepath.Join(repoRoot, "examples/prometheus")
	for _, args := range [][]string{
		{"check", "rules", filepath.Base(rulesFile)},
		{"test", "rules", filepath.Base(rulesTestFile)},
	} {
		out, stderr, err := run(t, time.Minute, dir, nil, promtool, args...)
		if err != nil {
			t.Errorf("promtool %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		} else {
			t.Logf("promtool %s:\n%s%s", strings.Join(args, " "), out, stderr)
		}
	}
}

// TestAlertRules checks what promtool does not: every alert has a severity,
// a summary, and a description that tells the operator a command to run,
// and is tested in spdu-haproxy-rules.test.yml where it fires.
func TestAlertRules(t *testing.T) {
	var tests ruleTestFile
	readYAML(t, rulesTestFile, &tests)
	// fires: the alerts with a test case that expects them to fire.
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, at := range tc.AlertRuleTest {
			if len(at.ExpAlerts) > 0 {
				fires[at.AlertName] = true
			}
		}
	}
	alerts := 0
	for _, r := range readRules(t) {
		if r.Alert == "" {
			continue
		}
		alerts++
		name := r.Alert
		if r.Labels["severity"] == "" {
			t.Errorf("alert %s: no severity label", name)
		}
		for _, want := range []string{"summary", "description"} {
			if strings.TrimSpace(r.Annotations[want]) == "" {
				t.Errorf("alert %s: no %s annotation", name, want)
			}
		}
		if !strings.Contains(r.Annotations["description"], "`") {
			t.Errorf("alert %s: the description names no command (in backquotes) for the operator to run", name)
		}
		if !fires[name] {
			t.Errorf("alert %s: no test case in %s where it fires (an alert_rule_test with non-empty exp_alerts)", name, rulesTestFile)
		}
	}
	if alerts < 9 {
		t.Errorf("%d alerts in %s, want at least 9", alerts, rulesFile)
	}
}
