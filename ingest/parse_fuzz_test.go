package ingest

import (
	"strings"
	"testing"

	"marquee/feed"
)

// FuzzParse: parse never panics, refuses with a 4xx, and every message it
// accepts is one the consumer accepts too (feed.Parse on the same subject
// and body), so ingest never stores what the consumer would drop.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"key":"AAPL","value":{"price":1}}`,
		`{"key":"a.b","value":null}`,
		`{"updates":[{"key":"a","value":{}},{"key":"b","value":null}]}`,
		`{"updates":[]}`, `{"key":"a..b","value":{}}`, `{"key":"a","value":[1]}`, `[]`, `{`, `{"key":1}`,
		`{"key":"k","value":{"x":"\u2028"}}`, `{"updates":[{"key":"a","value":{}}],"key":"b"}`,
	} {
		f.Add("scores", s)
	}
	fcfg := feed.DefaultConfig()
	fcfg.MaxMessageBytes = 256
	fcfg.MaxKeyLen = 16
	cfg := Defaults()
	cfg.MaxUpdates = 8
	s := &Server{cfg: cfg, fcfg: fcfg, lim: fcfg.Limits()}
	f.Fuzz(func(t *testing.T, name, body string) {
		if !feed.ValidFeedName(name) {
			return // the handler refuses these before parse
		}
		msgs, res, code, msg := s.parse(name, []byte(body))
		if res != resultOK {
			if code < 400 || code >= 500 || msg == "" || msgs != nil {
				t.Fatalf("refusal %v %d %q with %d messages", res, code, msg, len(msgs))
			}
			return
		}
		if len(msgs) == 0 || len(msgs) > cfg.MaxUpdates {
			t.Fatalf("%d messages accepted", len(msgs))
		}
		for i, m := range msgs {
			if !strings.HasPrefix(m.subject, "feeds."+name+".") {
				t.Fatalf("message %d on subject %q", i, m.subject)
			}
			if _, _, r := feed.Parse(m.subject, m.data, s.lim); r != feed.ReasonNone {
				t.Fatalf("message %d (%s, %q) accepted here, dropped by the consumer as %s", i, m.subject, m.data, r)
			}
		}
	})
}
