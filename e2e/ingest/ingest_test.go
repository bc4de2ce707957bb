// Package ingest_test checks the signed webhook ingest end to end: a real
// app (internal/app via testenv) on an embedded JetStream, signed HTTP
// requests in, segments and snapshots out.
package ingest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"marquee/ingest"
	"marquee/internal/app"
	"marquee/internal/testenv"
	"marquee/sse"
	"marquee/wire"
)

// Secrets of the tests: 32 bytes each.
var (
	secretA = "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("a"), 32))
	secretB = "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("b"), 32))
	secretC = "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("c"), 32))
)

// clock is an injected clock for the ingest listener.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// start runs an origin with the ingest listener on loopback, secret A,
// and edit applied to the ingest settings.
func start(t testing.TB, now func() time.Time, edit func(*app.Config)) (*testenv.NATS, *testenv.Origin) {
	t.Helper()
	n := testenv.StartNATS(t)
	o := testenv.StartOrigin(t, n, testenv.Options{
		IngestNow: now,
		Config: func(c *app.Config) {
			c.Ingest.ListenAddr = "127.0.0.1:0"
			c.Ingest.Secrets = []string{secretA}
			if edit != nil {
				edit(c)
			}
		},
	})
	if o.IngestURL == "" {
		t.Fatal("ingest listener not on")
	}
	return n, o
}

// signed is one request to the ingest listener.
type signed struct {
	feed    string
	body    string
	id      string
	ts      int64    // 0: now
	secrets []string // each adds a signature; nil: secret A
	header  map[string]string
	method  string
}

type answer struct {
	code int
	hdr  http.Header
	body []byte
}

func (a answer) ack(t *testing.T) ingest.Ack {
	t.Helper()
	var ack ingest.Ack
	if err := json.Unmarshal(a.body, &ack); err != nil {
		t.Fatalf("ack %s: %v", a.body, err)
	}
	return ack
}

func (a answer) errorBody(t *testing.T) wire.Error {
	t.Helper()
	var e wire.Error
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("error body %q: %v", a.body, err)
	}
	if e.Code != a.code || e.Message == "" {
		t.Errorf("error body %s for status %d", a.body, a.code)
	}
	return e
}

func send(t testing.TB, o *testenv.Origin, r signed) answer {
	t.Helper()
	if r.ts == 0 {
		r.ts = time.Now().Unix()
	}
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.secrets == nil {
		r.secrets = []string{secretA}
	}
	req, err := http.NewRequest(r.method, o.IngestURL+"/v1/ingest/"+r.feed, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	var sigs []string
	for _, s := range r.secrets {
		sig, err := ingest.Sign(s, r.id, r.ts, []byte(r.body))
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, sig)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ingest.HeaderID, r.id)
	req.Header.Set(ingest.HeaderTimestamp, strconv.FormatInt(r.ts, 10))
	req.Header.Set(ingest.HeaderSignature, strings.Join(sigs, " "))
	for k, v := range r.header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s ingest: %v", r.method, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{code: resp.StatusCode, hdr: resp.Header, body: b}
}

// updatesFrom reads, in the background, the segments of feed from n on,
// each to its next event, until stop returns true for the updates so far
// or segments segments were read, and returns a function that waits for
// the update events. The reading ends at the test's cleanup at the latest.
func updatesFrom(t *testing.T, o *testenv.Origin, feed string, n int64, segments int, stop func([]wire.Update) bool) func() []wire.Update {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	type result struct {
		us  []wire.Update
		err error
	}
	res := make(chan result, 1)
	t.Cleanup(func() { cancel(); <-res })
	go func() {
		us, err := readUpdates(ctx, o.URL, "/v1/feeds/"+feed+"/segments/"+strconv.FormatInt(n, 10), segments, stop)
		res <- result{us, err}
	}()
	return func() []wire.Update {
		t.Helper()
		r := <-res
		res <- r // for the cleanup
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.us
	}
}

func readUpdates(ctx context.Context, base, path string, segments int, stop func([]wire.Update) bool) ([]wire.Update, error) {
	var out []wire.Update
	for range segments {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", path, err)
		}
		if resp.StatusCode != 200 {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		d := sse.NewDecoder(resp.Body)
		next := ""
		for next == "" {
			ev, err := d.Next()
			if err != nil {
				resp.Body.Close()
				return nil, fmt.Errorf("read %s: %w", path, err)
			}
			switch ev.Type {
			case wire.EventUpdate:
				var u wire.Update
				if err := json.Unmarshal(ev.Data, &u); err != nil {
					resp.Body.Close()
					return nil, err
				}
				out = append(out, u)
				if stop(out) {
					resp.Body.Close()
					return out, nil
				}
			case wire.EventNext:
				var nx wire.Next
				if err := json.Unmarshal(ev.Data, &nx); err != nil {
					resp.Body.Close()
					return nil, err
				}
				next = nx.URL
			}
		}
		resp.Body.Close()
		path = next
	}
	return out, nil
}

func keyUpdates(us []wire.Update, key string) []wire.Update {
	var out []wire.Update
	for _, u := range us {
		if u.Key == key {
			out = append(out, u)
		}
	}
	return out
}

// storedOn returns how many messages the stream holds on the subjects
// subject (which may have wildcards) matches.
func storedOn(t *testing.T, n *testenv.NATS, subject string) uint64 {
	t.Helper()
	js, err := jetstream.New(n.Pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "FEEDS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	return total
}

func snapshot(t *testing.T, o *testenv.Origin, feed string) wire.Snapshot {
	t.Helper()
	var s wire.Snapshot
	testenv.GetJSON(t, o.URL+"/v1/feeds/"+feed+"/snapshot", &s)
	return s
}

// TestIngestIntoSegment: a signed update shows up as an update event in
// the feed's segment (read over HTTP) and in the snapshot; a batch with a
// delete deletes.
func TestIngestIntoSegment(t *testing.T) {
	_, o := start(t, nil, nil)
	// The feed exists once its first update is stored; read from the
	// segment in progress before it.
	first := send(t, o, signed{feed: "scores", id: "msg_1", body: `{"key":"nba.lal-bos","value":{"home_score":54, "away_score":51}}`})
	if first.code != 200 {
		t.Fatalf("POST: %d %s", first.code, first.body)
	}
	if ack := first.ack(t); ack != (ingest.Ack{Accepted: 1}) {
		t.Fatalf("ack %+v, want 1 accepted", ack)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		// Acknowledged by JetStream is not yet read by the origin: until
		// it is, the feed does not exist and its snapshot is 404.
		if _, ok := o.Hub.Feed("scores"); !ok {
			return fmt.Errorf("feed scores not made yet")
		}
		if v := string(snapshot(t, o, "scores").Entries["nba.lal-bos"]); v != `{"home_score":54,"away_score":51}` {
			return fmt.Errorf("snapshot entry %q", v)
		}
		return nil
	})
	seg := o.Descriptor("scores").Segment
	wait := updatesFrom(t, o, "scores", seg, 3, func(us []wire.Update) bool {
		ku := keyUpdates(us, "nba.lal-bos")
		return len(ku) > 0 && ku[len(ku)-1].Deleted()
	})
	batch := send(t, o, signed{feed: "scores", id: "msg_2", body: `{"updates":[
		{"key":"nba.lal-bos","value":{"home_score":56,"away_score":51}},
		{"key":"nhl.tor-mtl","value":{"home_score":1,"away_score":0}},
		{"key":"nba.lal-bos","value":null}]}`})
	if batch.code != 200 || batch.ack(t) != (ingest.Ack{Accepted: 3}) {
		t.Fatalf("batch: %d %s", batch.code, batch.body)
	}
	us := keyUpdates(wait(), "nba.lal-bos")
	if len(us) < 2 || string(us[len(us)-2].Value) != `{"home_score":56,"away_score":51}` || !us[len(us)-1].Deleted() {
		t.Fatalf("segment updates of nba.lal-bos: %+v", us)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		s := snapshot(t, o, "scores")
		if _, ok := s.Entries["nba.lal-bos"]; ok || string(s.Entries["nhl.tor-mtl"]) != `{"home_score":1,"away_score":0}` {
			return fmt.Errorf("snapshot %v", s.Entries)
		}
		return nil
	})
	if got := o.Metric("marquee_ingest_updates_accepted_total", nil); got != 4 {
		t.Errorf("updates accepted %v, want 4", got)
	}
	if got := o.Metric("marquee_ingest_requests_total", map[string]string{"result": "ok"}); got != 2 {
		t.Errorf("requests ok %v, want 2", got)
	}
}

// TestIngestDuplicates: the same webhook-id delivered three times is
// stored once and shows up once in the segment; the answers report the
// duplicates. A retried batch is deduplicated update by update.
func TestIngestDuplicates(t *testing.T) {
	n, o := start(t, nil, nil)
	send(t, o, signed{feed: "prices", id: "init", body: `{"key":"init","value":{}}`})
	testenv.Eventually(t, 10*time.Second, func() error {
		if _, ok := o.Hub.Feed("prices"); !ok {
			return fmt.Errorf("no feed yet")
		}
		return nil
	})
	seg := o.Descriptor("prices").Segment
	// Two whole segments after the one in progress: the update and any
	// copy of it would have shown up by then.
	wait := updatesFrom(t, o, "prices", seg, 3, func([]wire.Update) bool { return false })
	body := `{"key":"AAPL","value":{"price":189.23}}`
	ts := time.Now().Unix()
	for i, want := range []ingest.Ack{{Accepted: 1}, {Duplicates: 1}, {Duplicates: 1}} {
		a := send(t, o, signed{feed: "prices", id: "msg_dup", ts: ts, body: body})
		if a.code != 200 || a.ack(t) != want {
			t.Fatalf("delivery %d: %d %s, want %+v", i+1, a.code, a.body, want)
		}
	}
	batch := `{"updates":[{"key":"MSFT","value":{"price":1}},{"key":"GOOG","value":{"price":2}}]}`
	if a := send(t, o, signed{feed: "prices", id: "msg_batch", body: batch}); a.code != 200 || a.ack(t) != (ingest.Ack{Accepted: 2}) {
		t.Fatalf("batch: %d %s", a.code, a.body)
	}
	if a := send(t, o, signed{feed: "prices", id: "msg_batch", body: batch}); a.code != 200 || a.ack(t) != (ingest.Ack{Duplicates: 2}) {
		t.Fatalf("batch again: %d %s", a.code, a.body)
	}
	us := wait()
	if got := keyUpdates(us, "AAPL"); len(got) != 1 || string(got[0].Value) != `{"price":189.23}` {
		t.Errorf("AAPL updates in the segments: %+v, want exactly one", got)
	}
	if got := len(keyUpdates(us, "MSFT")); got != 1 {
		t.Errorf("MSFT updates in the segments: %d, want 1", got)
	}
	if got := storedOn(t, n, "feeds.prices.AAPL"); got != 1 {
		t.Errorf("stream holds %d messages on feeds.prices.AAPL, want 1", got)
	}
	if got := o.Metric("marquee_ingest_updates_duplicate_total", nil); got != 4 {
		t.Errorf("duplicates counted %v, want 4", got)
	}
}

// TestIngestDuplicateWindow: the stream marquee creates keeps message ids
// for twice the tolerance, so a replay within the tolerance is stored once.
func TestIngestDuplicateWindow(t *testing.T) {
	n, _ := start(t, nil, func(c *app.Config) { c.Ingest.Tolerance = 7 * time.Minute })
	js, _ := jetstream.New(n.Pub)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "FEEDS")
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Duplicates; got != 14*time.Minute {
		t.Errorf("stream duplicate window %s, want 14m", got)
	}
}

// TestIngestRefusals: every refusal has its status, a JSON error naming
// the problem, no-store, its own counted result, and stores nothing.
func TestIngestRefusals(t *testing.T) {
	n, o := start(t, nil, func(c *app.Config) {
		c.NATS.Feeds = []string{"scores"}
		c.Ingest.MaxBodyBytes = 2048
		c.Ingest.MaxUpdates = 3
		c.NATS.MaxMessageBytes = 512
		c.Ingest.SenderRate = 0 // limits are TestIngestRateLimit's
	})
	big := `{"key":"k","value":{"x":"` + strings.Repeat("x", 600) + `"}}`
	for _, tc := range []struct {
		name   string
		req    signed
		code   int
		result string
		msg    string // in the error message
	}{
		{"bad signature", signed{secrets: []string{secretB}}, 401, "bad_signature", "signature"},
		{"tampered body", signed{header: map[string]string{ingest.HeaderSignature: mustSign(t, secretA, "x", `{"key":"k","value":{"y":1}}`)}}, 401, "bad_signature", "signature"},
		{"missing signature", signed{header: map[string]string{ingest.HeaderSignature: ""}}, 401, "missing_headers", "required"},
		{"missing id", signed{header: map[string]string{ingest.HeaderID: ""}}, 401, "missing_headers", "required"},
		{"timestamp not a number", signed{header: map[string]string{ingest.HeaderTimestamp: "soon"}}, 401, "bad_headers", "webhook-timestamp"},
		{"stale timestamp", signed{ts: time.Now().Add(-time.Hour).Unix()}, 401, "stale_timestamp", "tolerance"},
		{"future timestamp", signed{ts: time.Now().Add(time.Hour).Unix()}, 401, "stale_timestamp", "tolerance"},
		{"bad JSON", signed{body: `{"key":"k","value":`}, 400, "bad_request", "JSON"},
		{"not an object", signed{body: `[1,2]`}, 400, "bad_request", "object"},
		{"unknown field", signed{body: `{"key":"k","value":{},"extra":1}`}, 400, "bad_request", "extra"},
		{"two objects", signed{body: `{"key":"k","value":{}} {}`}, 400, "bad_request", "more"},
		{"bad key", signed{body: `{"key":"a..b","value":{}}`}, 400, "bad_request", "key"},
		{"wildcard key", signed{body: `{"key":"a.>","value":{}}`}, 400, "bad_request", "key"},
		{"key not a string", signed{body: `{"key":7,"value":{}}`}, 400, "bad_request", "key"},
		{"missing value", signed{body: `{"key":"k"}`}, 400, "bad_request", "value"},
		{"value not an object", signed{body: `{"key":"k","value":[1]}`}, 400, "bad_request", "value"},
		{"both forms", signed{body: `{"key":"k","value":{},"updates":[]}`}, 400, "bad_request", "not both"},
		{"empty batch", signed{body: `{"updates":[]}`}, 400, "bad_request", "empty"},
		{"bad key in batch", signed{body: `{"updates":[{"key":"ok","value":{}},{"key":"","value":{}}]}`}, 400, "bad_request", "updates[1].key"},
		{"bad feed name", signed{feed: "sc%21ores"}, 400, "bad_request", "feed name"},
		{"unknown feed", signed{feed: "prices"}, 404, "unknown_feed", "MARQUEE_FEEDS"},
		{"body too large", signed{body: `{"key":"k","value":{"x":"` + strings.Repeat("x", 3000) + `"}}`}, 413, "too_large", "MARQUEE_INGEST_MAX_BODY"},
		{"too many updates", signed{body: `{"updates":[{"key":"a","value":{}},{"key":"b","value":{}},{"key":"c","value":{}},{"key":"d","value":{}}]}`}, 413, "too_large", "MARQUEE_INGEST_MAX_UPDATES"},
		{"value too large", signed{body: big}, 413, "too_large", "MARQUEE_NATS_MAX_MESSAGE_BYTES"},
		{"GET", signed{method: http.MethodGet}, 405, "method", "POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req
			if r.feed == "" {
				r.feed = "scores"
			}
			if r.body == "" {
				r.body = `{"key":"k","value":{"x":1}}`
			}
			r.id = "msg_" + strings.ReplaceAll(tc.name, " ", "_")
			before := o.Metric("marquee_ingest_requests_total", map[string]string{"result": tc.result})
			a := send(t, o, r)
			if a.code != tc.code {
				t.Fatalf("%d %s, want %d", a.code, a.body, tc.code)
			}
			if e := a.errorBody(t); !strings.Contains(e.Message, tc.msg) {
				t.Errorf("error %q does not mention %q", e.Message, tc.msg)
			}
			if cc := a.hdr.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			if got := o.Metric("marquee_ingest_requests_total", map[string]string{"result": tc.result}) - before; got != 1 {
				t.Errorf("result %s counted %v times, want 1", tc.result, got)
			}
		})
	}
	if got := o.Metric("marquee_ingest_updates_accepted_total", nil); got != 0 {
		t.Errorf("updates accepted %v after refusals only", got)
	}
	if got := storedOn(t, n, "feeds.>"); got != 0 {
		t.Errorf("stream holds %d messages after refusals only", got)
	}
	// The description is served on the ingest listener too.
	resp, err := http.Get(o.IngestURL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("ingest GET /v1/openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func mustSign(t *testing.T, secret, id, body string) string {
	t.Helper()
	s, err := ingest.Sign(secret, id, time.Now().Unix(), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestIngestSecretRotation: with two secrets, a request signed with either
// passes, and one signature of several matching is enough; a third secret
// is refused.
func TestIngestSecretRotation(t *testing.T) {
	_, o := start(t, nil, func(c *app.Config) { c.Ingest.Secrets = []string{secretA, secretB} })
	body := `{"key":"k","value":{"x":1}}`
	for i, tc := range []struct {
		secrets []string
		code    int
	}{
		{[]string{secretB}, 200},
		{[]string{secretA}, 200},
		{[]string{secretC, secretB}, 200},
		{[]string{secretC}, 401},
	} {
		if a := send(t, o, signed{feed: "scores", id: fmt.Sprintf("rot_%d", i), body: body, secrets: tc.secrets}); a.code != tc.code {
			t.Errorf("signed with secrets %d: %d %s, want %d", i, a.code, a.body, tc.code)
		}
	}
}

// TestIngestTimestampTolerance: with an injected clock, a timestamp exactly
// the tolerance away (either way) passes, one second further is refused.
func TestIngestTimestampTolerance(t *testing.T) {
	clk := &clock{t: time.Now().Truncate(time.Second)}
	_, o := start(t, clk.Now, func(c *app.Config) { c.Ingest.Tolerance = 2 * time.Minute })
	now := clk.Now().Unix()
	for _, tc := range []struct {
		ts   int64
		code int
	}{
		{now - 120, 200}, {now + 120, 200}, {now, 200},
		{now - 121, 401}, {now + 121, 401}, {0x7fffffffffffffff, 401},
	} {
		a := send(t, o, signed{feed: "scores", id: fmt.Sprintf("ts_%d", tc.ts), ts: tc.ts, body: `{"key":"k","value":{}}`})
		if a.code != tc.code {
			t.Errorf("timestamp now%+d: %d %s, want %d", tc.ts-now, a.code, a.body, tc.code)
		}
	}
	// The clock moves on: the request that was the oldest accepted is stale now.
	clk.Add(time.Second)
	if a := send(t, o, signed{feed: "scores", id: "ts_again", ts: now - 120, body: `{"key":"k","value":{}}`}); a.code != 401 {
		t.Errorf("after a second: %d %s, want 401", a.code, a.body)
	}
}

// TestIngestRateLimit: with an injected clock, a sender gets its burst,
// then 429 with Retry-After, then one more request per 1/rate.
func TestIngestRateLimit(t *testing.T) {
	clk := &clock{t: time.Now()}
	_, o := start(t, clk.Now, func(c *app.Config) {
		c.Ingest.SenderRate = 0.5 // one request per 2s
		c.Ingest.SenderBurst = 2
	})
	req := func(i int) answer {
		return send(t, o, signed{feed: "scores", id: fmt.Sprintf("rl_%d", i), ts: clk.Now().Unix(), body: `{"key":"k","value":{}}`})
	}
	for i := range 2 {
		if a := req(i); a.code != 200 {
			t.Fatalf("request %d of the burst: %d %s", i, a.code, a.body)
		}
	}
	a := req(2)
	if a.code != 429 || a.hdr.Get("Retry-After") != "2" {
		t.Fatalf("over the burst: %d, Retry-After %q, want 429 and 2", a.code, a.hdr.Get("Retry-After"))
	}
	a.errorBody(t)
	clk.Add(time.Second)
	if a := req(3); a.code != 429 || a.hdr.Get("Retry-After") != "1" {
		t.Fatalf("after 1s: %d, Retry-After %q, want 429 and 1", a.code, a.hdr.Get("Retry-After"))
	}
	clk.Add(time.Second)
	if a := req(4); a.code != 200 {
		t.Fatalf("after 2s: %d %s, want 200", a.code, a.body)
	}
	if got := o.Metric("marquee_ingest_requests_total", map[string]string{"result": "rate_limited"}); got != 2 {
		t.Errorf("rate_limited counted %v, want 2", got)
	}
}

// TestIngestStartupErrors: ingest on without secrets, or with core NATS,
// stops start-up with an error naming the variables.
func TestIngestStartupErrors(t *testing.T) {
	n := testenv.StartNATS(t)
	for _, tc := range []struct {
		name string
		opts testenv.Options
		edit func(*app.Config)
		want []string
	}{
		{"no secrets", testenv.Options{}, func(c *app.Config) { c.Ingest.Secrets = nil }, []string{"MARQUEE_INGEST_ADDR", "MARQUEE_INGEST_SECRETS"}},
		{"bad secret", testenv.Options{}, func(c *app.Config) { c.Ingest.Secrets = []string{"whsec_!!"} }, []string{"MARQUEE_INGEST_SECRETS"}},
		{"short secret", testenv.Options{}, func(c *app.Config) { c.Ingest.Secrets = []string{"whsec_YWJj"} }, []string{"MARQUEE_INGEST_SECRETS", "24"}},
		{"core nats", testenv.Options{Core: true}, nil, []string{"MARQUEE_INGEST_ADDR", "MARQUEE_NATS_JETSTREAM"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testenv.Config(n, tc.opts)
			cfg.Addr = "127.0.0.1:0"
			cfg.Ingest.ListenAddr = "127.0.0.1:0"
			cfg.Ingest.Secrets = []string{secretA}
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			a, err := app.New(cfg, app.Deps{Testing: app.Testing{ShortSegments: true}})
			if err == nil {
				a.Close(context.Background())
				t.Fatal("app.New succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
			if strings.Contains(err.Error(), "YWJj") || strings.Contains(err.Error(), "!!") {
				t.Errorf("error %q repeats the secret", err)
			}
		})
	}
}

// TestIngestJetStreamUnavailable: JetStream not acknowledging within the
// deadline is 504, and the retry with the same webhook-id finds the update
// stored once; NATS down is 503. Both say Retry-After.
func TestIngestJetStreamUnavailable(t *testing.T) {
	n := testenv.StartNATS(t)
	p := testenv.StartProxy(t, n.URL)
	o := testenv.StartOrigin(t, n, testenv.Options{Config: func(c *app.Config) {
		c.NATS.URL = p.URL()
		c.Ingest.ListenAddr = "127.0.0.1:0"
		c.Ingest.Secrets = []string{secretA}
		c.Ingest.RequestTimeout = 300 * time.Millisecond
	}})
	body := `{"key":"k","value":{"x":1}}`
	ts := time.Now().Unix()
	p.Pause(2 * time.Second)
	a := send(t, o, signed{feed: "scores", id: "stall", ts: ts, body: body})
	if a.code != 504 || a.hdr.Get("Retry-After") == "" {
		t.Fatalf("stalled JetStream: %d %s, Retry-After %q; want 504", a.code, a.body, a.hdr.Get("Retry-After"))
	}
	a.errorBody(t)
	testenv.Eventually(t, 10*time.Second, func() error {
		a := send(t, o, signed{feed: "scores", id: "stall", ts: ts, body: body})
		if a.code != 200 {
			return fmt.Errorf("retry: %d %s", a.code, a.body)
		}
		if ack := a.ack(t); ack != (ingest.Ack{Duplicates: 1}) {
			t.Fatalf("retry after the stall: %+v, want the first delivery's copy as a duplicate", ack)
		}
		return nil
	})
	if got := o.Metric("marquee_ingest_requests_total", map[string]string{"result": "timeout"}); got < 1 {
		t.Errorf("timeouts counted %v", got)
	}
	n.Stop()
	testenv.Eventually(t, 10*time.Second, func() error {
		a := send(t, o, signed{feed: "scores", id: "down", body: body})
		if a.code != 503 || a.hdr.Get("Retry-After") == "" {
			return fmt.Errorf("NATS down: %d %s", a.code, a.body)
		}
		return nil
	})
}

// TestIngestNoGoroutineLeak: the ingest listener's goroutines end with the
// app, also after a request that timed out.
func TestIngestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		n := testenv.StartNATS(t)
		p := testenv.StartProxy(t, n.URL)
		o := testenv.StartOrigin(t, n, testenv.Options{Config: func(c *app.Config) {
			c.NATS.URL = p.URL()
			c.Ingest.ListenAddr = "127.0.0.1:0"
			c.Ingest.Secrets = []string{secretA}
			c.Ingest.RequestTimeout = 200 * time.Millisecond
		}})
		for i := range 10 {
			send(t, o, signed{feed: "scores", id: fmt.Sprint("leak_", i), body: `{"key":"k","value":{}}`})
		}
		p.Pause(500 * time.Millisecond)
		send(t, o, signed{feed: "scores", id: "leak_stall", body: `{"key":"k","value":{}}`})
		o.Stop()
		p.Close()
		n.Stop()
	}()
	http.DefaultClient.CloseIdleConnections()
	testenv.Eventually(t, 10*time.Second, func() error {
		if got := runtime.NumGoroutine(); got > base+2 {
			return fmt.Errorf("%d goroutines, %d before", got, base)
		}
		return nil
	})
}

// TestIngestManagedStreamWindow: an existing stream with a shorter
// duplicate window is raised to twice the tolerance when marquee manages
// it, and left alone when it does not.
func TestIngestManagedStreamWindow(t *testing.T) {
	for _, manage := range []bool{true, false} {
		t.Run(fmt.Sprint("manage=", manage), func(t *testing.T) {
			n := testenv.StartNATS(t)
			js, _ := jetstream.New(n.Pub)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
				Name: "FEEDS", Subjects: []string{"feeds.>"}, MaxMsgsPerSubject: 16, Duplicates: time.Minute,
			}); err != nil {
				t.Fatal(err)
			}
			start := func(c *app.Config) {
				c.Ingest.ListenAddr = "127.0.0.1:0"
				c.Ingest.Secrets = []string{secretA}
				c.NATS.ManageStream = manage
			}
			testenv.StartOrigin(t, n, testenv.Options{Config: start})
			want := time.Minute
			if manage {
				want = 10 * time.Minute
			}
			st, err := js.Stream(ctx, "FEEDS")
			if err != nil {
				t.Fatal(err)
			}
			if got := st.CachedInfo().Config.Duplicates; got != want {
				t.Errorf("duplicate window %s, want %s", got, want)
			}
		})
	}
}
