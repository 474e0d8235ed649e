package packaging

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	dashboardFile = "examples/grafana/spdu-haproxy.json"
	rulesFile     = "examples/prometheus/spdu-haproxy-rules.yml"
	rulesTestFile = "examples/prometheus/spdu-haproxy-rules.test.yml"
)

// targetLabels are the labels Prometheus adds to every series it scrapes
// (site from the scrape configuration in the README), which /metrics itself
// does not carry.
var targetLabels = []string{"job", "instance", "site"}

// daemonMetric matches the names of metrics the daemon exports: its own
// (spdu_) and the Go and process collectors'. Other names in an expression
// are PromQL functions, keywords, labels, recording rules (level:name:op,
// with colons) or series Prometheus makes itself (up).
var daemonMetric = regexp.MustCompile(`(?:^|[^a-zA-Z0-9_:])((?:spdu|go|process)_[a-zA-Z0-9_]+)\b`)

// metricNames returns the daemon metric names used in expr, without the
// names of recording rules.
func metricNames(expr string) []string {
	var names []string
	for _, m := range daemonMetric.FindAllStringSubmatchIndex(expr, -1) {
		name := expr[m[2]:m[3]]
		if end := m[3]; end < len(expr) && expr[end] == ':' {
			continue // the middle of a recording rule name
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

var (
	selector      = regexp.MustCompile(`\b((?:spdu|go|process)_[a-zA-Z0-9_]+)\{([^}]*)\}`)
	matcherLabel  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	grouping      = regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\(([^)]*)\)`)
	quotedStrings = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

// labelUse is a label an expression relies on, and the metrics it may come
// from.
type labelUse struct {
	Label   string
	Metrics []string
}

// labelsUsed returns the labels that expr matches on a metric, and those it
// groups or joins by (which must come from one of expr's metrics).
func labelsUsed(expr string) []labelUse {
	var uses []labelUse
	for _, m := range selector.FindAllStringSubmatch(expr, -1) {
		for _, l := range matcherLabel.FindAllStringSubmatch(quotedStrings.ReplaceAllString(m[2], `""`), -1) {
			uses = append(uses, labelUse{l[1], []string{m[1]}})
		}
	}
	names := metricNames(expr)
	for _, m := range grouping.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				uses = append(uses, labelUse{l, names})
			}
		}
	}
	return uses
}

// dashboard is the part of the Grafana dashboard model the tests read.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Type       string          `json:"type"`
			Name       string          `json:"name"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
			IncludeAll bool            `json:"includeAll"`
			Multi      bool            `json:"multi"`
		} `json:"list"`
	} `json:"templating"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels returns the dashboard's panels, those of collapsed rows too.
func (d dashboard) allPanels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// exprs returns every query of the dashboard (panels and the site
// variable) by where it is.
func (d dashboard) exprs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out[p.Title+"/"+tg.RefID] = tg.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: query: %v", v.Name, err)
		}
		// label_values(METRIC, LABEL) is Grafana's, not PromQL: keep the
		// metric and the label it reads.
		if m := regexp.MustCompile(`^label_values\((.*),\s*(\w+)\)$`).FindStringSubmatch(q.Query); m != nil {
			out["variable "+v.Name] = "count by (" + m[2] + ") (" + m[1] + ")"
		} else {
			out["variable "+v.Name] = q.Query
		}
	}
	return out
}

// ruleFile is the part of a Prometheus rules file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// name is the rule's name: the alert's or the recording rule's.
func (r rule) name() string { return r.Alert + r.Record }

// ruleTestFile is the part of a promtool unit test file the tests read.
type ruleTestFile struct {
	Tests []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			AlertName string `yaml:"alertname"`
			EvalTime  string `yaml:"eval_time"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// readYAML unmarshals the repository's file name into v.
func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// readRules returns every rule of the rules file, alerts and recording
// rules, in order.
func readRules(t *testing.T) []rule {
	t.Helper()
	var f ruleFile
	readYAML(t, rulesFile, &f)
	var rules []rule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if (r.Alert == "") == (r.Record == "") || strings.TrimSpace(r.Expr) == "" {
				t.Fatalf("%s, group %s: a rule needs an expr and exactly one of alert and record: %+v", rulesFile, g.Name, r)
			}
			rules = append(rules, r)
		}
	}
	if len(rules) == 0 {
		t.Fatalf("%s: no rule found", rulesFile)
	}
	return rules
}

// ruleExprs returns the expr of every rule in the rules file by rule name.
func ruleExprs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range readRules(t) {
		if _, dup := out[r.name()]; dup {
			t.Fatalf("%s: two rules named %s", rulesFile, r.name())
		}
		out[r.name()] = strings.TrimSpace(r.Expr)
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (site) (rate(spdu_dns_queries_total{site=~"$site"}[5m]))`, []string{"spdu_dns_queries_total"}},
		{`site:spdu_dns_errors:ratio_rate5m > 0.05 and spdu_site_serving == 1`, []string{"spdu_site_serving"}},
		{`job:spdu_sites_serving:sum == 0`, nil},
		{`rate(process_cpu_seconds_total[1m]) + go_goroutines - up`, []string{"process_cpu_seconds_total", "go_goroutines"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}
