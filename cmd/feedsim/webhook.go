package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"marquee/feed/demogen"
	"marquee/ingest"
)

// webhookSim posts the demo's updates to a marquee ingest listener, signed
// per Standard Webhooks: one batch per feed per tick.
type webhookSim struct {
	base   string // e.g. http://127.0.0.1:8081
	secret string
	rate   float64
	log    *slog.Logger
	client *http.Client
	idBase string
	n      int // requests sent, for webhook-ids
}

func (s *webhookSim) run(ctx context.Context, gen *demogen.Generator) error {
	defer s.client.CloseIdleConnections()
	if err := s.post(ctx, gen.Initial(time.Now())); err != nil {
		return err
	}
	// Ten batches a second at most: each tick's updates go in one request
	// per feed.
	interval := max(time.Duration(float64(time.Second)/s.rate), 100*time.Millisecond)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	last, owed := time.Now(), 0.0
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-ticker.C:
			owed = min(owed+now.Sub(last).Seconds()*s.rate, s.rate+1)
			last = now
			var msgs []demogen.Message
			for ; owed >= 1; owed-- {
				msgs = append(msgs, gen.Step(now)...)
			}
			if err := s.post(ctx, msgs); err != nil {
				return err
			}
		}
	}
}

type simUpdate struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// post sends msgs as one batch per feed. A refusal other than 429 or 5xx
// ends the run (a wrong secret, say); those are retried with the same
// webhook-id, so nothing is stored twice.
func (s *webhookSim) post(ctx context.Context, msgs []demogen.Message) error {
	byFeed := map[string][]simUpdate{}
	var feeds []string
	for _, m := range msgs {
		f, key, _ := strings.Cut(m.Subject, ".")
		if _, ok := byFeed[f]; !ok {
			feeds = append(feeds, f)
		}
		v := json.RawMessage("null")
		if m.Body != nil {
			v = m.Body
		}
		byFeed[f] = append(byFeed[f], simUpdate{Key: key, Value: v})
	}
	for _, f := range feeds {
		body, err := json.Marshal(map[string][]simUpdate{"updates": byFeed[f]})
		if err != nil {
			return err
		}
		s.n++
		id := s.idBase + "_" + strconv.Itoa(s.n)
		for attempt := 1; ; attempt++ {
			code, wait, err := s.send(ctx, f, id, body)
			if ctx.Err() != nil {
				return nil
			}
			if err == nil && code == http.StatusOK {
				break
			}
			if err == nil && code != http.StatusTooManyRequests && code < 500 {
				return fmt.Errorf("webhook %s: refused with %d", f, code)
			}
			if attempt == 5 {
				return fmt.Errorf("webhook %s: %d attempts failed (last: %d %v)", f, attempt, code, err)
			}
			s.log.Warn("webhook failed; retrying with the same webhook-id", "feed", f, "code", code, "err", err, "wait", wait)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
	}
	return nil
}

func (s *webhookSim) send(ctx context.Context, feed, id string, body []byte) (int, time.Duration, error) {
	ts := time.Now().Unix()
	sig, err := ingest.Sign(s.secret, id, ts, body)
	if err != nil {
		return 0, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/v1/ingest/"+feed, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ingest.HeaderID, id)
	req.Header.Set(ingest.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(ingest.HeaderSignature, sig)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, time.Second, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	wait := time.Second
	if sec, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && sec > 0 && sec < 60 {
		wait = time.Duration(sec) * time.Second
	}
	return resp.StatusCode, wait, nil
}
