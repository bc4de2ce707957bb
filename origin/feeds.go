package origin

import (
	"net/http"

	"marquee/cdn"
	"marquee/segmenter"
)

// Descriptor is the JSON of GET /v1/feeds/{feed}.
type Descriptor struct {
	Feed          string   `json:"feed"`
	SegmentLength float64  `json:"segment_length"` // seconds
	PartLength    float64  `json:"part_length"`    // seconds
	Keepalive     float64  `json:"keepalive"`      // seconds
	Segment       int64    `json:"segment"`        // current segment index
	URL           string   `json:"url"`            // current segment URL
	SegmentStart  int64    `json:"segment_start"`  // unix ms
	SegmentEnd    int64    `json:"segment_end"`    // unix ms
	NextURL       string   `json:"next_url"`
	DirectURL     string   `json:"direct_url"`
	SnapshotURL   string   `json:"snapshot_url"`
	ServerTime    int64    `json:"server_time"` // unix ms
	Seq           uint64   `json:"seq"`         // highest sequence folded into the state
	Keys          int      `json:"keys"`
	Modes         []string `json:"modes"`
	Mode          string   `json:"mode"`     // the mode clients should use by default
	Parts         int      `json:"parts"`    // parts per segment
	Part          int      `json:"part"`     // part in progress of the current segment
	PartURL       string   `json:"part_url"` // template: {n} segment, {k} part
	UptoURL       string   `json:"upto_url"` // template: {n} segment, {k} part
}

func (s *Server) handleFeeds(w http.ResponseWriter, r *http.Request) {
	now := s.hub.Now()
	g := s.hub.Grid()
	type item struct {
		Feed string `json:"feed"`
		URL  string `json:"url"`
	}
	names := s.hub.Feeds()
	out := struct {
		Feeds      []item `json:"feeds"`
		ServerTime int64  `json:"server_time"`
	}{Feeds: make([]item, 0, len(names)), ServerTime: now.UnixMilli()}
	prefix := s.hub.Config().URLPrefix
	for _, n := range names {
		out.Feeds = append(out.Feeds, item{Feed: n, URL: prefix + "/" + n})
	}
	s.policy.Set(w.Header(), cdn.Descriptor, now, g.End(g.Index(now)))
	s.writeJSON(w, out)
}

func (s *Server) handleDescriptor(w http.ResponseWriter, r *http.Request) {
	f, ok := s.feed(w, r)
	if !ok {
		return
	}
	now := s.hub.Now()
	g := s.hub.Grid()
	cfg := s.hub.Config()
	n := g.Index(now)
	base := cfg.URLPrefix + "/" + f.Name()
	d := Descriptor{
		Feed:          f.Name(),
		SegmentLength: cfg.SegmentLength.Seconds(),
		PartLength:    cfg.PartLength.Seconds(),
		Keepalive:     cfg.Keepalive.Seconds(),
		Segment:       n,
		URL:           segmenter.SegmentURL(cfg.URLPrefix, f.Name(), n),
		SegmentStart:  g.Start(n).UnixMilli(),
		SegmentEnd:    g.End(n).UnixMilli(),
		NextURL:       segmenter.SegmentURL(cfg.URLPrefix, f.Name(), n+1),
		DirectURL:     base + "/events",
		SnapshotURL:   base + "/snapshot",
		ServerTime:    now.UnixMilli(),
		Seq:           f.Seq(),
		Keys:          f.Keys(),
		Modes:         []string{"stream", "parts", "direct"},
		Mode:          s.cfg.ClientMode,
		Parts:         cfg.Parts(),
		Part:          g.PartIndex(n, now),
		PartURL:       base + "/segments/{n}/parts/{k}",
		UptoURL:       base + "/segments/{n}/upto/{k}",
	}
	s.policy.Set(w.Header(), cdn.Descriptor, now, g.End(n))
	s.writeJSON(w, d)
}

func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	f, ok := s.feed(w, r)
	if !ok {
		return
	}
	now := s.hub.Now()
	g := s.hub.Grid()
	body, _ := f.Snapshot(now)
	s.policy.Set(w.Header(), cdn.Descriptor, now, g.End(g.Index(now)))
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(body, '\n'))
}
