package deploy

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"marquee/internal/app"
	"marquee/internal/testenv"
)

const (
	dashboardFile = "grafana/marquee.json"
	rulesFile     = "prometheus/marquee-rules.yml"
	ruleTestsFile = "prometheus/marquee-rules.test.yml"
)

// exposed is what a Prometheus scrape of a real origin stores: series
// names (histograms as _bucket, _sum and _count) mapped to the name of
// their metric family.
var exposed struct {
	once  sync.Once
	names map[string]string
	err   error
}

// exposition starts a real origin (embedded NATS with JetStream, the
// program's own App), publishes a message and asks for the feed so that
// per-feed series exist, gathers its registry once, and returns the series
// names of the exposition.
func exposition(t *testing.T) map[string]string {
	t.Helper()
	exposed.once.Do(func() {
		n := testenv.StartNATS(t)
		// With the ingest listener on, so that its series exist too.
		o := testenv.StartOrigin(t, n, testenv.Options{Config: func(c *app.Config) {
			c.Ingest.ListenAddr = "127.0.0.1:0"
			c.Ingest.Secrets = []string{"whsec_" + base64.StdEncoding.EncodeToString([]byte("deploy-metrics-test-secret-32by"))}
		}})
		n.Publish("feeds.prices.X", `{"p":1}`)
		testenv.Eventually(t, 10*time.Second, func() error {
			if o.Metric("marquee_feed_messages_accepted_total", map[string]string{"feed": "prices"}) < 1 {
				return fmt.Errorf("message not accepted yet")
			}
			return nil
		})
		resp, err := http.Get(o.URL + "/v1/feeds/prices")
		if err != nil {
			exposed.err = err
			return
		}
		resp.Body.Close()
		mfs, err := o.Registry.Gather()
		if err != nil {
			exposed.err = err
			return
		}
		exposed.names = map[string]string{}
		for _, mf := range mfs {
			name := mf.GetName()
			switch mf.GetType() {
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					exposed.names[name+s] = name
				}
			case dto.MetricType_SUMMARY:
				for _, s := range []string{"", "_sum", "_count"} {
					exposed.names[name+s] = name
				}
			default:
				exposed.names[name] = name
			}
		}
	})
	if exposed.err != nil {
		t.Fatalf("exposition: %v", exposed.err)
	}
	if exposed.names == nil {
		t.Fatal("exposition: the origin could not be started (see the first test that asked for it)")
	}
	return exposed.names
}

var promql = parser.NewParser(parser.Options{})

// grafanaIntervals are Grafana's interval variables; they stand where
// PromQL needs a duration, so they are replaced by one before parsing.
// Other variables ($job, $instance, $feed) only occur inside label
// values, where PromQL takes any string.
var grafanaIntervals = regexp.MustCompile(`\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}`)

// metricNames returns the metric names every selector of expr selects. A
// selector without a metric name is an error: it would select everything.
func metricNames(expr string) ([]string, error) {
	e, err := promql.ParseExpr(grafanaIntervals.ReplaceAllString(expr, "5m"))
	if err != nil {
		return nil, err
	}
	var names []string
	var bad error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
		}
		if name == "" {
			bad = fmt.Errorf("selector %s names no metric", vs)
			return nil
		}
		names = append(names, name)
		return nil
	})
	return names, bad
}

// checkExists fails the test for every metric of expr the exposition lacks.
func checkExists(t *testing.T, where, expr string, names map[string]string, used map[string]bool) {
	t.Helper()
	ms, err := metricNames(expr)
	if err != nil {
		t.Errorf("%s: %v\n\t%s", where, err, expr)
		return
	}
	if len(ms) == 0 {
		t.Errorf("%s: selects no metric: %s", where, expr)
	}
	for _, m := range ms {
		fam, ok := names[m]
		if !ok {
			t.Errorf("%s: metric %s is not in marquee's exposition\n\t%s", where, m, expr)
			continue
		}
		used[fam] = true
	}
}

// The dashboard, as far as the checks need it.
type (
	dashboard struct {
		UID           string `json:"uid"`
		Title         string `json:"title"`
		SchemaVersion int    `json:"schemaVersion"`
		Panels        []panel
		Templating    struct{ List []variable }
		Annotations   struct{ List []annotation }
	}
	panel struct {
		ID          int
		Type        string
		Title       string
		Description string
		Datasource  *datasource
		GridPos     struct{ H, W, X, Y int }
		Targets     []target
		Panels      []panel // a collapsed row's panels
	}
	target struct {
		RefID      string `json:"refId"`
		Expr       string
		Datasource *datasource
	}
	datasource struct{ Type, UID string }
	variable   struct {
		Type, Name string
		Query      json.RawMessage
		Definition string
		Datasource *datasource
	}
	annotation struct {
		Name       string
		Expr       string
		Datasource *datasource
	}
)

// The data source every panel uses: the dashboard's own variable, so that
// it imports into any Grafana with any Prometheus.
const dsUID = "${datasource}"

var (
	labelValues = regexp.MustCompile(`^label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$`)
	dashVar     = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
)

func TestDashboardMetricsExist(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Errorf("dashboard needs uid, title and schemaVersion: %q %q %d", d.UID, d.Title, d.SchemaVersion)
	}
	names := exposition(t)
	used := map[string]bool{}

	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type != "query" {
			continue
		}
		if v.Datasource == nil || v.Datasource.UID != dsUID {
			t.Errorf("variable %s: datasource must be %s", v.Name, dsUID)
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: want label_values(<selector>, <label>), got %q", v.Name, v.Definition)
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil || q.Query != v.Definition {
			t.Errorf("variable %s: query %s differs from its definition %q", v.Name, v.Query, v.Definition)
		}
		checkExists(t, "variable "+v.Name, m[1], names, used)
	}
	if !vars["datasource"] {
		t.Error("dashboard has no datasource variable")
	}
	checkVars := func(where, expr string) {
		for _, m := range dashVar.FindAllStringSubmatch(expr, -1) {
			if !vars[m[1]] && !strings.HasPrefix(m[1], "__") {
				t.Errorf("%s: uses $%s, which is no variable of the dashboard", where, m[1])
			}
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr == "" {
			continue
		}
		where := "annotation " + a.Name
		if a.Datasource == nil || a.Datasource.UID != dsUID {
			t.Errorf("%s: datasource must be %s", where, dsUID)
		}
		checkVars(where, a.Expr)
		checkExists(t, where, a.Expr, names, used)
	}

	ids := map[int]string{}
	var grid [][24]string // occupied cells: grid[y][x] = panel title
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
			if prev, dup := ids[p.ID]; dup || p.ID == 0 {
				t.Errorf("%s: id taken by %q (ids must be unique and non-zero)", where, prev)
			}
			ids[p.ID] = p.Title
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
				t.Errorf("%s: gridPos %+v outside the 24-column grid", where, g)
			} else {
				for len(grid) < g.Y+g.H {
					grid = append(grid, [24]string{})
				}
				for y := g.Y; y < g.Y+g.H; y++ {
					for x := g.X; x < g.X+g.W; x++ {
						if other := grid[y][x]; other != "" {
							t.Errorf("%s overlaps %q at (%d,%d)", where, other, x, y)
						}
						grid[y][x] = p.Title
					}
				}
			}
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if p.Title == "" || p.Description == "" {
				t.Errorf("%s: needs a title and a description", where)
			}
			if p.Datasource == nil || p.Datasource.UID != dsUID {
				t.Errorf("%s: datasource must be %s", where, dsUID)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no queries", where)
			}
			refs := map[string]bool{}
			for _, q := range p.Targets {
				if refs[q.RefID] || q.RefID == "" {
					t.Errorf("%s: refId %q empty or repeated", where, q.RefID)
				}
				refs[q.RefID] = true
				if q.Datasource == nil || q.Datasource.UID != dsUID {
					t.Errorf("%s %s: datasource must be %s", where, q.RefID, dsUID)
				}
				checkVars(where, q.Expr)
				checkExists(t, where+" "+q.RefID, q.Expr, names, used)
			}
		}
	}
	walk(d.Panels)

	// Every metric of marquee's own is on the dashboard: a new metric
	// needs a panel (or a query in an existing one).
	var missing []string
	for series, fam := range names {
		if strings.HasPrefix(series, "marquee_") && !used[fam] && !slices.Contains(missing, fam) {
			missing = append(missing, fam)
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("metric %s is on no panel of %s", m, dashboardFile)
	}
}

// The rule files, as far as the checks need them; decoded strictly, so a
// misspelt key (anotations, expr_) fails.
type (
	ruleFile struct {
		Groups []struct {
			Name     string `json:"name"`
			Interval string `json:"interval,omitempty"`
			Rules    []rule `json:"rules"`
		} `json:"groups"`
	}
	rule struct {
		Alert         string            `json:"alert,omitempty"`
		Record        string            `json:"record,omitempty"`
		Expr          string            `json:"expr"`
		For           string            `json:"for,omitempty"`
		KeepFiringFor string            `json:"keep_firing_for,omitempty"`
		Labels        map[string]string `json:"labels,omitempty"`
		Annotations   map[string]string `json:"annotations,omitempty"`
	}
	ruleTests struct {
		RuleFiles          []string `json:"rule_files"`
		EvaluationInterval string   `json:"evaluation_interval,omitempty"`
		Tests              []struct {
			Name        string            `json:"name,omitempty"`
			Interval    string            `json:"interval,omitempty"`
			InputSeries []json.RawMessage `json:"input_series"`
			AlertTests  []struct {
				EvalTime  string `json:"eval_time"`
				AlertName string `json:"alertname"`
				ExpAlerts []struct {
					ExpLabels      map[string]string `json:"exp_labels,omitempty"`
					ExpAnnotations map[string]string `json:"exp_annotations,omitempty"`
				} `json:"exp_alerts"`
			} `json:"alert_rule_test,omitempty"`
			PromQLTests []json.RawMessage `json:"promql_expr_test,omitempty"`
		} `json:"tests"`
	}
)

var severities = []string{"critical", "warning", "info"}

func TestRulesMetricsExist(t *testing.T) {
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(b, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	names := exposition(t)
	used := map[string]bool{}
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			where := "rule " + r.Alert + r.Record
			if (r.Alert == "") == (r.Record == "") {
				t.Errorf("%s: a rule is an alert or a recording rule", where)
				continue
			}
			checkExists(t, where, r.Expr, names, used)
			if r.Record != "" {
				continue
			}
			if alerts[r.Alert] {
				t.Errorf("%s: defined twice", where)
			}
			alerts[r.Alert] = true
			if !strings.HasPrefix(r.Alert, "Marquee") {
				t.Errorf("%s: alert names start with Marquee", where)
			}
			if !slices.Contains(severities, r.Labels["severity"]) {
				t.Errorf("%s: severity %q, want one of %v", where, r.Labels["severity"], severities)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description", where)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for: %v", where, err)
				}
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatal("no alerts")
	}

	// Every alert has a promtool unit test in which it fires.
	b, err = os.ReadFile(ruleTestsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rt ruleTests
	if err := yaml.UnmarshalStrict(b, &rt); err != nil {
		t.Fatalf("%s: %v", ruleTestsFile, err)
	}
	if !slices.Equal(rt.RuleFiles, []string{"marquee-rules.yml"}) {
		t.Errorf("%s: rule_files %v, want [marquee-rules.yml]", ruleTestsFile, rt.RuleFiles)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range rt.Tests {
		for _, at := range tc.AlertTests {
			if !alerts[at.AlertName] {
				t.Errorf("%s: test %q checks alert %s, which the rules do not define", ruleTestsFile, tc.Name, at.AlertName)
			}
			if len(at.ExpAlerts) > 0 {
				fires[at.AlertName] = true
			} else {
				silent[at.AlertName] = true
			}
		}
	}
	for a := range alerts {
		if !fires[a] {
			t.Errorf("%s: no test in which %s fires", ruleTestsFile, a)
		}
		if !silent[a] {
			t.Errorf("%s: no test in which %s must stay silent", ruleTestsFile, a)
		}
	}
}
