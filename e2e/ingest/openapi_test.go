package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"marquee/cdn"
	"marquee/ingest"
	"marquee/internal/app"
	"marquee/internal/testenv"
	"marquee/openapi"
	"marquee/segmenter"
)

func init() {
	// Bodies that are text to the description: kept as strings.
	text := func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(body)
		return string(b), err
	}
	for _, ct := range []string{"text/event-stream", "text/html", "text/javascript", "text/css", "image/svg+xml"} {
		openapi3filter.RegisterBodyDecoder(ct, text)
	}
}

// loadDoc loads and validates the description that the binary embeds.
func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.JSON())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("the description is not valid OpenAPI 3: %v", err)
	}
	return doc
}

// TestOpenAPIPathsMatchRouteTable: the description has a path for every
// route of cdn.PublicRoutes and no other, except the ingest route, which
// names its own server (the ingest listener).
func TestOpenAPIPathsMatchRouteTable(t *testing.T) {
	doc := loadDoc(t)
	want := []string{"/v1/ingest/{feed}"}
	for _, r := range cdn.PublicRoutes {
		want = append(want, strings.TrimSuffix(r.Pattern, "{$}"))
	}
	got := doc.Paths.InMatchingOrder()
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("paths of the description:\n  %v\nwant (cdn.PublicRoutes and the ingest route):\n  %v", got, want)
	}
	for p, item := range doc.Paths.Map() {
		ops := item.Operations()
		if p == "/v1/ingest/{feed}" {
			if len(item.Servers) == 0 || ops["POST"] == nil || len(ops) != 1 {
				t.Errorf("%s: want a POST only, on its own server", p)
			}
			continue
		}
		if ops["GET"] == nil || len(ops) != 1 || len(item.Servers) != 0 {
			t.Errorf("%s: want a GET only, on the public listener", p)
		}
	}
}

// TestOpenAPIServed: the origin serves the description as a static,
// cacheable asset, the ingest listener the same bytes.
func TestOpenAPIServed(t *testing.T) {
	_, o := start(t, nil, nil)
	for _, base := range []string{o.URL, o.IngestURL} {
		resp, err := http.Get(base + "/v1/openapi.json")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(b, openapi.JSON()) || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s/v1/openapi.json: %d %s, %d bytes", base, resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
		}
	}
}

// validator checks real requests and responses against the description.
type validator struct {
	t      *testing.T
	router routers.Router
	seen   map[string]bool // "path status" validated
}

func newValidator(t *testing.T) *validator {
	doc := loadDoc(t)
	// Route by path alone: the public and the ingest listener have
	// loopback addresses of their own in the test.
	doc.Servers = nil
	for _, item := range doc.Paths.Map() {
		item.Servers = nil
	}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &validator{t: t, router: r, seen: map[string]bool{}}
}

// do sends req and checks the request (unless it is meant to be invalid)
// and the response, whose status must be want and documented. With
// headOnly the body is not read (an endless stream).
func (v *validator) do(req *http.Request, body []byte, want int, validRequest, headOnly bool) {
	t := v.t
	t.Helper()
	lookup := req
	if req.Method != http.MethodPost && strings.HasPrefix(req.URL.Path, "/v1/ingest/") {
		// A 405 is documented on the route's one operation.
		lookup = req.Clone(context.Background())
		lookup.Method = http.MethodPost
	}
	route, params, err := v.router.FindRoute(lookup)
	if err != nil {
		t.Errorf("%s %s: no route in the description: %v", req.Method, req.URL.Path, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	if validRequest {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s %s: request does not match the description: %v", req.Method, req.URL.Path, err)
		}
		if body != nil {
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Errorf("%s %s: %v", req.Method, req.URL.Path, err)
		return
	}
	defer resp.Body.Close()
	var rb []byte
	if !headOnly {
		rb, _ = io.ReadAll(resp.Body)
	}
	if resp.StatusCode != want {
		t.Errorf("%s %s: %d %s, want %d", req.Method, req.URL.Path, resp.StatusCode, rb, want)
		return
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body:    io.NopCloser(bytes.NewReader(rb)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: headOnly},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s %s: %d response does not match the description: %v\n%s", req.Method, req.URL.Path, resp.StatusCode, err, rb)
	}
	v.seen[route.Path+" "+strconv.Itoa(want)] = true
}

func (v *validator) get(url string, want int) { v.t.Helper(); v.getStream(url, want, false) }

func (v *validator) getStream(url string, want int, headOnly bool) {
	v.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	v.do(req, nil, want, true, headOnly)
}

func (v *validator) post(o *testenv.Origin, r signed, want int, validRequest bool) {
	v.t.Helper()
	if r.ts == 0 {
		r.ts = time.Now().Unix()
	}
	if r.secrets == nil {
		r.secrets = []string{secretA}
	}
	req, _ := http.NewRequest(http.MethodPost, o.IngestURL+"/v1/ingest/"+r.feed, nil)
	sig := mustSignAt(v.t, r.secrets[0], r.id, r.ts, r.body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", r.id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(r.ts, 10))
	req.Header.Set("webhook-signature", sig)
	v.do(req, []byte(r.body), want, validRequest, false)
}

func mustSignAt(t *testing.T, secret, id string, ts int64, body string) string {
	t.Helper()
	s, err := ingest.Sign(secret, id, ts, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOpenAPIMatchesResponses: real answers of a running app — feed list,
// descriptor, snapshot, segments, parts, direct mode, health, assets, the
// errors (400, 404, 410), and every ingest answer (200, 400, 401, 404,
// 405, 413, 429) — match the description, status codes included.
func TestOpenAPIMatchesResponses(t *testing.T) {
	clk := &clock{t: time.Now()}
	_, o := start(t, clk.Now, func(c *app.Config) {
		c.NATS.Feeds = []string{"scores", "vault"}
		testenv.Protect(0, "vault")(c)
		c.Segmenter.Conflate = segmenter.Conflation{Feeds: []segmenter.FeedInterval{{Feed: "scores", Interval: 500 * time.Millisecond}}}
		c.Ingest.MaxBodyBytes = 2048
		c.Ingest.SenderRate = 1
		c.Ingest.SenderBurst = 30
	})
	v := newValidator(t)
	ts := clk.Now().Unix()

	// Ingest first, so that the feed has state.
	v.post(o, signed{feed: "scores", id: "oa_1", ts: ts, body: `{"key":"nba.lal-bos","value":{"home_score":54,"away_score":51}}`}, 200, true)
	v.post(o, signed{feed: "scores", id: "oa_2", ts: ts, body: `{"updates":[{"key":"nba.a","value":{"x":1}},{"key":"nba.b","value":null}]}`}, 200, true)
	v.post(o, signed{feed: "vault", id: "oa_v", ts: ts, body: `{"key":"gold","value":{"p":1}}`}, 200, true)
	v.post(o, signed{feed: "scores", id: "oa_3", ts: ts, body: `{"key":"k","value":{}}`, secrets: []string{secretB}}, 401, true)
	v.post(o, signed{feed: "scores", id: "oa_4", ts: ts - 3600, body: `{"key":"k","value":{}}`}, 401, true)
	v.post(o, signed{feed: "scores", id: "oa_5", ts: ts, body: `{"key":"a..b","value":{}}`}, 400, false)
	v.post(o, signed{feed: "scores", id: "oa_6", ts: ts, body: `{"key":`}, 400, false)
	v.post(o, signed{feed: "prices", id: "oa_7", ts: ts, body: `{"key":"k","value":{}}`}, 404, true)
	v.post(o, signed{feed: "scores", id: "oa_8", ts: ts, body: `{"key":"k","value":{"x":"` + strings.Repeat("x", 3000) + `"}}`}, 413, true)
	req, _ := http.NewRequest(http.MethodGet, o.IngestURL+"/v1/ingest/scores", nil)
	v.do(req, nil, 405, false, false)
	for i := 0; ; i++ {
		a := send(t, o, signed{feed: "scores", id: fmt.Sprint("oa_burst_", i), ts: ts, body: `{"key":"k","value":{}}`})
		if a.code == 429 {
			break
		}
		if i > 40 {
			t.Fatal("no 429 after the burst")
		}
	}
	v.post(o, signed{feed: "scores", id: "oa_9", ts: ts, body: `{"key":"k","value":{}}`}, 429, true)

	testenv.Eventually(t, 10*time.Second, func() error {
		if d := o.Descriptor("scores"); d.Keys < 2 {
			return fmt.Errorf("%d keys", d.Keys)
		}
		return nil
	})
	d := o.Descriptor("scores")
	if d.Conflate != 0.5 {
		t.Errorf("descriptor conflate %v, want 0.5 (MARQUEE_CONFLATE=scores=500ms)", d.Conflate)
	}
	v.get(o.URL+"/v1/feeds", 200)
	v.get(o.URL+"/v1/feeds/scores", 200)
	v.get(o.URL+"/v1/feeds/scores/snapshot", 200)
	v.get(o.URL+"/v1/feeds/nope", 404)
	v.get(o.URL+"/v1/feeds/nope/snapshot", 404)
	v.get(o.URL+"/v1/feeds/scores/segments/01", 400)
	v.get(o.URL+"/v1/feeds/scores/segments/1", 410)
	v.get(o.URL+fmt.Sprintf("/v1/feeds/scores/segments/%d", d.Segment+100), 404)
	v.get(o.URL+fmt.Sprintf("/v1/feeds/scores/segments/%d", d.Segment), 200) // to its end
	n, k := d.Segment, d.Part
	if k == d.Parts { // this origin opened segment n in its last part
		n, k = n+1, 0
	}
	v.get(o.URL+d.PartPath(n, k), 200) // finished by now, or held to its end
	v.get(o.URL+d.UptoPath(n, k), 200)
	v.get(o.URL+fmt.Sprintf("/v1/feeds/scores/segments/%d/parts/999", d.Segment), 404)
	v.getStream(o.URL+"/v1/feeds/scores/events", 200, true)
	// A protected feed: refused without its token, served with it; a
	// public feed's tokened routes are not found.
	testenv.Eventually(t, 10*time.Second, func() error {
		if _, ok := o.Hub.Feed("vault"); !ok {
			return errors.New("feed vault not there")
		}
		return nil
	})
	tok, pub := o.Token("vault"), o.Token("scores")
	v.get(o.URL+"/v1/feeds/vault", 403)
	v.get(o.URL+"/v1/feeds/vault/snapshot", 403)
	v.get(o.URL+"/v1/feeds/vault/segments/1", 403)
	v.get(o.URL+"/v1/feeds/vault/t/"+tok, 200)
	v.get(o.URL+"/v1/feeds/vault/t/"+tok+"/snapshot", 200)
	v.getStream(o.URL+"/v1/feeds/vault/t/"+tok+"/events", 200, true)
	v.get(o.URL+"/v1/feeds/vault/t/"+pub, 403) // another feed's token
	v.get(o.URL+"/v1/feeds/scores/t/"+pub, 404)
	v.get(o.URL+"/v1/feeds", 200) // lists vault as protected, without a url
	v.get(o.URL+"/healthz", 200)
	v.get(o.URL+"/readyz", 200)
	v.get(o.URL+"/", 200)
	v.get(o.URL+"/v1/client.js", 200)
	v.get(o.URL+"/v1/board.js", 200)
	v.get(o.URL+"/assets/dashboard.css", 200)
	v.get(o.URL+"/assets/nope.css", 404)
	v.get(o.URL+"/v1/openapi.json", 200)
	v.get(o.IngestURL+"/v1/openapi.json", 200)

	for _, want := range []string{"/v1/ingest/{feed} 200", "/v1/ingest/{feed} 400", "/v1/ingest/{feed} 401", "/v1/ingest/{feed} 404",
		"/v1/ingest/{feed} 405", "/v1/ingest/{feed} 413", "/v1/ingest/{feed} 429", "/v1/feeds/{feed}/segments/{n} 200",
		"/v1/feeds/{feed}/segments/{n} 410", "/v1/feeds/{feed}/segments/{n} 400",
		"/v1/feeds/{feed} 403", "/v1/feeds/{feed}/t/{token} 200", "/v1/feeds/{feed}/t/{token} 403",
		"/v1/feeds/{feed}/t/{token} 404", "/v1/feeds/{feed}/t/{token}/snapshot 200", "/v1/feeds/{feed}/t/{token}/events 200"} {
		if !v.seen[want] {
			t.Errorf("%s was not validated", want)
		}
	}
}
