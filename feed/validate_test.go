package feed

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	lim := DefaultConfig().Limits()
	big := `{"a":"` + strings.Repeat("x", 64<<10) + `"}`
	tests := []struct {
		name      string
		subject   string
		body      string
		lim       *Limits
		wantFeed  string
		wantKey   string
		wantValue string // "" means nil (delete)
		want      Reason
	}{
		{name: "object", subject: "feeds.prices.AAPL", body: `{"price": 1.5}`, wantFeed: "prices", wantKey: "AAPL", wantValue: `{"price":1.5}`},
		{name: "multi-token key", subject: "feeds.scores.nba.lal-bos", body: `{"a":1}`, wantFeed: "scores", wantKey: "nba.lal-bos", wantValue: `{"a":1}`},
		{name: "compacts to one line", subject: "feeds.f.k", body: " \n\t{\n  \"a\": [1, 2],\r\n  \"b\": {\"c\": \"d e\"}\n}\n", wantFeed: "f", wantKey: "k", wantValue: `{"a":[1,2],"b":{"c":"d e"}}`},
		{name: "empty body deletes", subject: "feeds.prices.AAPL", body: "", wantFeed: "prices", wantKey: "AAPL"},
		{name: "underscore and dash", subject: "feeds.my_feed-1.k_1-2.x", body: `{}`, wantFeed: "my_feed-1", wantKey: "k_1-2.x", wantValue: `{}`},
		{name: "max key length", subject: "feeds.f." + strings.Repeat("k", 128), body: `{}`, wantFeed: "f", wantKey: strings.Repeat("k", 128), wantValue: `{}`},
		{name: "max feed length", subject: "feeds." + strings.Repeat("f", 64) + ".k", body: `{}`, wantFeed: strings.Repeat("f", 64), wantKey: "k", wantValue: `{}`},
		{name: "prefix with dots", subject: "acme.feeds.f.k", body: `{}`, lim: &Limits{SubjectPrefix: "acme.feeds"}, wantFeed: "f", wantKey: "k", wantValue: `{}`},
		{name: "allow-listed feed", subject: "feeds.prices.k", body: `{}`, lim: &Limits{Feeds: []string{"scores", "prices"}}, wantFeed: "prices", wantKey: "k", wantValue: `{}`},

		{name: "too large", subject: "feeds.f.k", body: big, want: ReasonTooLarge},
		{name: "too large beats bad subject", subject: "x", body: big, want: ReasonTooLarge},
		{name: "custom size limit", subject: "feeds.f.k", body: `{"a":1}`, lim: &Limits{MaxMessageBytes: 4}, want: ReasonTooLarge},
		{name: "other prefix", subject: "other.f.k", body: `{}`, want: ReasonBadSubject},
		{name: "prefix as part of token", subject: "feedsx.f.k", body: `{}`, want: ReasonBadSubject},
		{name: "prefix only", subject: "feeds", body: `{}`, want: ReasonBadSubject},
		{name: "no key", subject: "feeds.f", body: `{}`, want: ReasonBadSubject},
		{name: "empty subject", subject: "", body: `{}`, want: ReasonBadSubject},
		{name: "empty feed", subject: "feeds..k", body: `{}`, want: ReasonBadFeed},
		{name: "bad feed char", subject: "feeds.b@d.k", body: `{}`, want: ReasonBadFeed},
		{name: "feed too long", subject: "feeds." + strings.Repeat("f", 65) + ".k", body: `{}`, want: ReasonBadFeed},
		{name: "unknown feed", subject: "feeds.weather.k", body: `{}`, lim: &Limits{Feeds: []string{"prices"}}, want: ReasonUnknownFeed},
		{name: "empty key", subject: "feeds.f.", body: `{}`, want: ReasonBadKey},
		{name: "empty key token", subject: "feeds.f.a..b", body: `{}`, want: ReasonBadKey},
		{name: "trailing dot", subject: "feeds.f.a.", body: `{}`, want: ReasonBadKey},
		{name: "bad key char", subject: "feeds.f.a+b", body: `{}`, want: ReasonBadKey},
		{name: "wildcard key", subject: "feeds.f.*", body: `{}`, want: ReasonBadKey},
		{name: "key too long", subject: "feeds.f." + strings.Repeat("k", 129), body: `{}`, want: ReasonBadKey},
		{name: "custom key limit", subject: "feeds.f.abc", body: `{}`, lim: &Limits{MaxKeyLen: 2}, want: ReasonBadKey},
		{name: "invalid json", subject: "feeds.f.k", body: `{"a":`, want: ReasonBadJSON},
		{name: "two values", subject: "feeds.f.k", body: `{} {}`, want: ReasonBadJSON},
		{name: "invalid utf-8", subject: "feeds.f.k", body: "{\"a\":\"\xff\"}", want: ReasonBadJSON},
		{name: "white space only", subject: "feeds.f.k", body: "  ", want: ReasonBadJSON},
		{name: "array", subject: "feeds.f.k", body: `[1,2]`, want: ReasonNotObject},
		{name: "string", subject: "feeds.f.k", body: ` "x"`, want: ReasonNotObject},
		{name: "null", subject: "feeds.f.k", body: `null`, want: ReasonNotObject},
		{name: "number", subject: "feeds.f.k", body: `42`, want: ReasonNotObject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := lim
			if tt.lim != nil {
				l = *tt.lim
			}
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			feed, u, reason := Parse(tt.subject, body, l)
			if reason != tt.want {
				t.Fatalf("reason = %s, want %s", reason, tt.want)
			}
			if tt.want != ReasonNone {
				if feed != "" || u.Key != "" || u.Value != nil {
					t.Fatalf("rejected message returned feed %q update %+v", feed, u)
				}
				return
			}
			if feed != tt.wantFeed || u.Key != tt.wantKey {
				t.Fatalf("feed, key = %q, %q, want %q, %q", feed, u.Key, tt.wantFeed, tt.wantKey)
			}
			if tt.wantValue == "" {
				if u.Value != nil {
					t.Fatalf("value = %s, want nil (delete)", u.Value)
				}
			} else if got := string(u.Value); got != tt.wantValue {
				t.Fatalf("value = %s, want %s", got, tt.wantValue)
			}
			if u.Seq != 0 || !u.Time.IsZero() {
				t.Fatalf("Parse set Seq/Time: %+v", u)
			}
		})
	}
}

func TestReasons(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Reasons() {
		s := r.String()
		if s == "" || s == "none" || s == "unknown" || seen[s] {
			t.Fatalf("reason %d has bad or duplicate label %q", r, s)
		}
		seen[s] = true
	}
	for _, want := range []string{"too_large", "bad_subject", "bad_feed", "bad_key", "bad_json", "not_object",
		"too_many_feeds", "too_many_keys", "too_many_bytes", "no_feed", "duplicate", "bad_metadata", "unknown_feed", "slow_consumer"} {
		if !seen[want] {
			t.Errorf("missing reason %q", want)
		}
	}
	if got := Reason(200).String(); got != "unknown" {
		t.Errorf("Reason(200) = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("feeds.prices.AAPL", []byte(`{"price":1}`), 0, "")
	f.Add("feeds.scores.nba.lal-bos", []byte(" {\n\"a\" : [1, {\"b\": null}]}\n"), 0, "")
	f.Add("feeds.prices.AAPL", []byte(nil), 0, "")
	f.Add("feeds.x.y", []byte(`[1]`), 0, "x")
	f.Add("feeds..", []byte(`{`), 3, "")
	f.Add("feeds.a.b..c", []byte("{\"\xff\":1}"), 0, "a,b")
	f.Add("acme.feeds.a.b", []byte(`{"k":"\u2028"}`), 2, "")
	f.Fuzz(func(t *testing.T, subject string, data []byte, keyLen int, feeds string) {
		lim := Limits{MaxKeyLen: keyLen % 200}
		if feeds != "" {
			lim.Feeds = strings.Split(feeds, ",")
		}
		feed, u, reason := Parse(subject, data, lim)
		if reason >= numReasons {
			t.Fatalf("reason %d out of range", reason)
		}
		if reason != ReasonNone {
			return
		}
		maxKey := lim.withDefaults().MaxKeyLen
		if !ValidFeedName(feed) || !ValidKey(u.Key, maxKey) {
			t.Fatalf("accepted invalid feed %q or key %q", feed, u.Key)
		}
		if subject != "feeds."+feed+"."+u.Key {
			t.Fatalf("subject %q parsed as feed %q key %q", subject, feed, u.Key)
		}
		if len(lim.Feeds) > 0 && !strings.Contains(","+feeds+",", ","+feed+",") {
			t.Fatalf("feed %q not in allow-list %q", feed, feeds)
		}
		if len(data) == 0 {
			if u.Value != nil {
				t.Fatalf("empty body gave value %q", u.Value)
			}
			return
		}
		if u.Value == nil || u.Value[0] != '{' || !json.Valid(u.Value) {
			t.Fatalf("value %q is not a JSON object", u.Value)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, u.Value); err != nil || !bytes.Equal(compact.Bytes(), u.Value) {
			t.Fatalf("value %q is not compact", u.Value)
		}
		if bytes.ContainsAny(u.Value, "\r\n") {
			t.Fatalf("value %q has a line break", u.Value)
		}
		var obj map[string]any
		if err := json.Unmarshal(u.Value, &obj); err != nil {
			t.Fatalf("value %q does not decode to an object: %v", u.Value, err)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	lim := DefaultConfig().Limits()
	body := []byte(`{"symbol":"AAPL","name":"Apple","price":189.23,"open":187.1,"change":2.13,"time":"2025-01-02T15:04:05.123456789Z"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, r := Parse("feeds.prices.AAPL", body, lim); r != ReasonNone {
			b.Fatal(r)
		}
	}
}
